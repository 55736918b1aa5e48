"""Read intermediate activations of any model by submodule name.

::

    feats = extract_features(model.eval(), clips, ["fc6", "fc7"])   # C3D's video descriptor layers
    feats["fc6"].shape  # (N, 4096)

Each name is a dotted submodule path (as in ``model.named_modules()``); the returned tensor is
that module's forward output. A model may declare ``feature_aliases``, a mapping from the
names a paper's code uses to the module whose output holds that blob. C3D uses it because
Caffe's ReLU runs in place: the blob the C3D feature extractor reads as ``fc6`` is the
**post-ReLU** activation, which in PyTorch is the output of the module ``relu6``, not of the
linear layer ``fc6``. Pass ``resolve_aliases=False`` to hook the module of that exact name
(the pre-ReLU linear output).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["extract_features", "resolve_feature_name"]


def resolve_feature_name(model: nn.Module, name: str, resolve_aliases: bool = True) -> str:
    """The submodule path that ``name`` refers to in ``model`` (after the model's aliases)."""
    aliases: dict[str, str] = getattr(model, "feature_aliases", {}) if resolve_aliases else {}
    return aliases.get(name, name)


@torch.no_grad()
def extract_features(
    model: nn.Module,
    x: torch.Tensor,
    layers: Sequence[str],
    resolve_aliases: bool = True,
) -> dict[str, torch.Tensor]:
    """Run ``model(x)`` once and return the outputs of the named submodules, keyed by the asked names.

    Runs without autograd (``torch.no_grad``). The model's train/eval mode is left as it is (call ``model.eval()`` for deterministic
    features: dropout follows fc6 and fc7 in C3D). Outputs are cloned, so a later in-place
    operation (e.g. ``ReLU(inplace=True)``) cannot change what was captured. A module that runs
    more than once in one forward pass (a shared activation, say) is refused, because its
    "output" would be ambiguous.
    """
    if isinstance(layers, str):
        raise TypeError("extract_features(layers=...): pass a list of names, e.g. ['fc6'], not a string")
    modules = dict(model.named_modules())
    targets: dict[str, str] = {}
    for name in layers:
        path = resolve_feature_name(model, name, resolve_aliases)
        if path not in modules or path == "":
            known = [n for n in modules if n][:40]
            raise KeyError(
                f"extract_features: {type(model).__name__} has no submodule {path!r}"
                f" (asked for {name!r}); some names: {', '.join(known)}"
            )
        targets[name] = path

    captured: dict[str, list[torch.Tensor]] = {name: [] for name in targets}

    def hook_for(name: str):
        def hook(_module: nn.Module, _inputs, output) -> None:
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"extract_features: {targets[name]!r} returns {type(output).__name__}, not a tensor")
            captured[name].append(output.detach().clone())

        return hook

    handles = [modules[path].register_forward_hook(hook_for(name)) for name, path in targets.items()]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()

    result: dict[str, torch.Tensor] = {}
    for name, outputs in captured.items():
        if len(outputs) != 1:
            raise RuntimeError(
                f"extract_features: {targets[name]!r} ran {len(outputs)} times in one forward pass;"
                " name a module that runs exactly once"
            )
        result[name] = outputs[0]
    return result
