"""Code habits the test command enforces: ruff's lint rules and its formatting (pyproject.toml
``[tool.ruff]``) over the package, tests and benchmarks, and a mypy check of the public Python
API's typed surface."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the modules users import first: the API facade, the API and the model registry
TYPED_API = ["vidnets/__init__.py", "vidnets/api.py", "vidnets/models/registry.py"]


def _tool(name: str) -> list[str]:
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if exe is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]' installs it)")
    return [exe]


def test_ruff_lint_is_clean():
    result = subprocess.run(
        [*_tool("ruff"), "check", "vidnets", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied():
    """``ruff format vidnets tests benchmarks`` leaves nothing to change."""
    result = subprocess.run(
        [*_tool("ruff"), "format", "--check", "vidnets", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_public_api_type_checks():
    result = subprocess.run(
        [*_tool("mypy"), "--no-error-summary", *TYPED_API], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
