"""Parameter and multiply-add counts, measured with PyTorch's own ``torch.utils.flop_counter``.

``FlopCounterMode`` reports FLOPs with 1 multiply-add = 2 FLOPs and counts only matrix
multiplications and convolutions (no BN, ReLU or pooling). :func:`complexity` divides by two and
reports **MACs**, the convention behind the "GFLOPs" of torchvision, mmaction2 and VMZ tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["Complexity", "complexity", "count_parameters"]


@dataclass(frozen=True)
class Complexity:
    params: int
    macs: int  # multiply-accumulates for one sample of ``input_shape``

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def flops(self) -> int:
        """FLOPs with the 1 MAC = 2 FLOPs convention."""
        return 2 * self.macs


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def complexity(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> Complexity:
    """Parameters and MACs of ``model`` for one input of ``input_shape`` (no batch dimension).

    ``input_shape`` defaults to the model's ``default_input``. The count runs on the meta device,
    so even large inputs cost no memory or time.
    """
    shape = tuple(input_shape or getattr(model, "default_input", ()))
    if not shape:
        raise ValueError("complexity(): pass input_shape; the model has no default_input")
    params = count_parameters(model)
    was_training = model.training
    model.eval()
    try:
        meta = _to_meta(model)
        counter = FlopCounterMode(display=False)
        with counter:
            meta(torch.empty((1, *shape), device="meta"))
        flops = counter.get_total_flops()
    finally:
        model.train(was_training)
    return Complexity(params=params, macs=flops // 2)


def _to_meta(model: nn.Module) -> nn.Module:
    import copy

    clone = copy.deepcopy(model) if any(p.device.type != "meta" for p in model.parameters()) else model
    return clone.to("meta")
