"""The package's layers import one way: utils → data → flow → models → engine → methods → deploy → api → cli.

Every ``import vidnets.…`` / ``from vidnets… import`` in every module (at the top or inside a
function) is read with ``ast``; a module may import its own layer or a lower one, never a higher one.
The command-line modules (``cli.py``, ``__main__.py`` and every ``commands.py``) are the top layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import vidnets

PACKAGE = Path(vidnets.__file__).parent
LAYERS = ("utils", "data", "flow", "models", "engine", "methods", "deploy", "api", "cli")
CLI_FILES = {"cli.py", "__main__.py", "commands.py"}


def layer_of_module(parts: list[str]) -> int:
    """The layer of a module given as dotted parts below ``vidnets`` (``["engine", "train"]``)."""
    if not parts or parts[0] in ("__init__", "__version__"):
        return LAYERS.index("utils")  # the package root holds only the version
    if parts[-1] in {name.removesuffix(".py") for name in CLI_FILES} or parts[0] == "cli":
        return LAYERS.index("cli")
    return LAYERS.index(parts[0])


def imported_modules(tree: ast.AST, module_parts: list[str]) -> list[tuple[int, list[str]]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[1:]) for a in node.names if a.name.split(".")[0] == "vidnets"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the module's package
                base = module_parts[: -node.level]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "vidnets":
                target = node.module.split(".")[1:]
            else:
                continue
            if target:
                found.append((node.lineno, target))
            else:  # ``from vidnets import flow``: each name is a module
                found += [(node.lineno, [a.name]) for a in node.names]
    return found


def upward_imports() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        # the package root is the facade of the Python API: ``vidnets.train`` etc. load vidnets.api on use
        own = LAYERS.index("api") if parts == ["__init__"] else layer_of_module(parts)
        for line, target in imported_modules(ast.parse(path.read_text(), str(path)), parts):
            if layer_of_module(target) > own:
                problems.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line} ({LAYERS[own]}) imports "
                    f"vidnets.{'.'.join(target)} ({LAYERS[layer_of_module(target)]})"
                )
    return problems


def test_no_module_imports_a_higher_layer():
    assert upward_imports() == []


def test_the_checker_sees_upward_imports():
    tree = ast.parse("def f():\n    from vidnets.engine.build import build_model\nimport vidnets.methods.svm\n")
    targets = [layer_of_module(t) for _, t in imported_modules(tree, ["data", "presets"])]
    assert targets == [LAYERS.index("engine"), LAYERS.index("methods")] or sorted(targets) == [
        LAYERS.index("engine"),
        LAYERS.index("methods"),
    ]
    assert layer_of_module(["engine", "commands"]) == LAYERS.index("cli")


def test_every_package_docstring_lists_its_modules():
    for package in ("engine", "methods"):
        doc = (PACKAGE / package / "__init__.py").read_text()
        for module in sorted((PACKAGE / package).glob("*.py")):
            if module.stem != "__init__":
                assert f"vidnets.{package}.{module.stem}" in doc, f"{package}/__init__.py does not list {module.stem}"
