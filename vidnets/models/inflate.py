"""Load 2D (ImageNet) checkpoints into 3D models by inflating the kernels over time.

A 2D kernel ``(out, in, kh, kw)`` becomes a 3D kernel ``(out, in, kt, kh, kw)``:

* ``mode="average"`` (I3D, Carreira & Zisserman 2017): repeat it ``kt`` times and divide by ``kt``.
  On a clip whose frames are all the same image, the 3D convolution then returns the 2D
  convolution's output at every time step (away from zero-padded temporal borders).
* ``mode="center"``: the 2D kernel at the temporal centre ``kt // 2``, zeros elsewhere; the 3D net
  starts as the 2D net applied frame by frame, for any clip.

For ``kt = 1`` both modes are the same reshape. Tensors whose shapes already agree (BN, 2D layers,
a classifier with the same class count) are copied. ``key_map`` renames checkpoint keys to the
model's (return ``None`` to drop a key). Nothing is loaded silently: :class:`InflationReport`
lists loaded, inflated, missing, unexpected and shape-mismatched keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import nn

from vidnets.utils.io import load_checkpoint

__all__ = ["InflationReport", "inflate_weight", "inflate_state_dict", "read_state_dict"]


@dataclass
class InflationReport:
    loaded: list[str] = field(default_factory=list)  # model keys that received a value (copied or inflated)
    inflated: list[str] = field(default_factory=list)  # the subset that was inflated 2D → 3D
    missing: list[str] = field(default_factory=list)  # model keys the checkpoint did not provide
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys with no model counterpart
    shape_mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"loaded {len(self.loaded)} ({len(self.inflated)} inflated), missing {len(self.missing)}, "
            f"unexpected {len(self.unexpected)}, shape-mismatched {len(self.shape_mismatched)}"
        )


def inflate_weight(weight: torch.Tensor, time: int, mode: str = "average") -> torch.Tensor:
    """Inflate a 2D kernel ``(out, in, kh, kw)`` to ``(out, in, time, kh, kw)``."""
    if weight.dim() != 4:
        raise ValueError(f"inflate_weight: expected a 4-D 2D-conv kernel, got shape {tuple(weight.shape)}")
    if mode == "average":
        return weight.unsqueeze(2).repeat(1, 1, time, 1, 1) / time
    if mode == "center":
        out = weight.new_zeros(weight.shape[0], weight.shape[1], time, *weight.shape[2:])
        out[:, :, time // 2] = weight
        return out
    raise ValueError(f"inflate_weight: mode must be 'average' or 'center', got {mode!r}")


def read_state_dict(state_dict_or_path: Mapping[str, torch.Tensor] | str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict given as a mapping or a local file (weights-only), unwrapping ``state_dict``/``model``."""
    if isinstance(state_dict_or_path, (str, os.PathLike)):
        loaded = load_checkpoint(state_dict_or_path)
        source = str(state_dict_or_path)
    else:
        loaded, source = state_dict_or_path, "state dict"
    for key in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ValueError(f"{source}: expected a mapping of parameter names to tensors")
    return dict(loaded)


def _is_inflatable(src: torch.Tensor, dst: torch.Tensor) -> bool:
    return src.dim() == 4 and dst.dim() == 5 and src.shape[:2] == dst.shape[:2] and src.shape[2:] == dst.shape[3:]


@torch.no_grad()
def inflate_state_dict(
    model: nn.Module,
    state_dict_or_path: Mapping[str, torch.Tensor] | str | os.PathLike,
    key_map: Callable[[str], str | None] | None = None,
    mode: str = "average",
) -> InflationReport:
    """Copy or inflate every matching checkpoint tensor into ``model``; see the module docstring."""
    source = read_state_dict(state_dict_or_path)
    target = model.state_dict()
    report = InflationReport()
    for key, value in source.items():
        name = key_map(key) if key_map is not None else key
        if name is None or name not in target:
            report.unexpected.append(key)
            continue
        dst = target[name]
        if value.shape == dst.shape:
            dst.copy_(value)
        elif _is_inflatable(value, dst):
            dst.copy_(inflate_weight(value.to(dst.dtype), dst.shape[2], mode))
            report.inflated.append(name)
        else:
            report.shape_mismatched.append((name, tuple(value.shape), tuple(dst.shape)))
            continue
        report.loaded.append(name)
    done = set(report.loaded) | {name for name, _, _ in report.shape_mismatched}
    report.missing = [k for k in target if k not in done]
    return report
