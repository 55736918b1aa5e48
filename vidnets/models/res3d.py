"""Res3D: the 3D ResNets of Tran et al., "ConvNet Architecture Search for Spatiotemporal Feature
Learning", arXiv:1708.05038 (papers.md §6; authors' code = C3D-v1.1 ``[C:C3D]``).

Layout of ``res3d18`` at its default 3×8×112×112 input (papers.md §6.1, fact 24)::

    conv1    3×7×7, 64, stride 1×2×2, pad 1×3×3      → 64×8×56×56      (no max-pooling)
    conv2_x  2 × basic[3×3×3, 64]                    → 64×8×56×56
    conv3_x  2 × basic[3×3×3, 128], first stride 2×2×2 → 128×4×28×28
    conv4_x  2 × basic[3×3×3, 256], first stride 2×2×2 → 256×2×14×14
    conv5_x  2 × basic[3×3×3, 512], first stride 2×2×2 → 512×1×7×7
    global average pool → dropout (0 by default) → fc

Choices where the sources are ambiguous (each is a parameter):

* ``res2_projection`` – the C3D-v1.1 prototxt has a 1×1×1 projection ``res2a_branch1`` (64→64)
  on the first conv2_x block; torchvision's ``r3d_18`` does not. Default **False**: it gives the
  published "33.2 M params" within rounding and the MAC count the 20.35 G figure refers to
  (20,348,379,136 MACs; 33,218,085 params at 101 classes; exactly torchvision's 33,371,472 at 400
  classes). ``True`` reproduces the prototxt (33,222,309 params at 101 classes, 20.45 G MACs).
* Block counts of the depth study (papers.md §6.4, **[UNVERIFIED]** beyond 10/18/34, which are the
  standard ResNet layouts): 10 = [1,1,1,1], 16 = [2,2,2,1], 18 = [2,2,2,2], 26 = [2,3,4,3],
  34 = [3,4,6,3]. 16 and 26 follow the depth table of the paper as we recall it; each depth counts
  conv1 + 2 × blocks + fc.
* ``conv_types`` – five entries for conv1, conv2_x … conv5_x, each ``"3d"`` or ``"2d"`` (a string
  applies to all five). A 2D stage uses 1×k×k kernels and never strides in time, which is the
  paper's 2D-vs-3D / mixed ablation (§6.4 finding 4). ``conv_types="2d"`` fed ``T=1`` is a
  single-frame 2D ResNet baseline.
* ``temporal_strides`` – temporal stride of the first block of conv2_x … conv5_x, default
  ``(1, 2, 2, 2)``. The paper's simplified 4-frame net uses ``(1, 2, 2, 1)`` (conv5_1 stride
  1×2×2), registered as ``res3d18_simplified`` (3×4×112×112 → 512×1×7×7; paper 10.3 "GFLOPs",
  10.78 G MACs by a MAC counter).
* ``width`` – channels of conv1/conv2_x (64 in the paper), doubled at each later stage; small values
  give nets that train on a CPU.

The paper's "19.3 GFLOPs" uses an undocumented convention about 5 % below a MAC counter
(papers.md §6.2); :func:`vidnets.models.complexity` reports the MAC count.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from vidnets.models.blocks import PooledLinearHead, conv3d, msra_init
from vidnets.models.registry import register_model

__all__ = ["Res3D", "BasicBlock3d", "res3d10", "res3d16", "res3d18", "res3d26", "res3d34", "res3d18_simplified"]

PAPER = "Tran et al., arXiv:1708.05038 (Res3D)"
STAGE_BLOCKS = {10: (1, 1, 1, 1), 16: (2, 2, 2, 1), 18: (2, 2, 2, 2), 26: (2, 3, 4, 3), 34: (3, 4, 6, 3)}


def _kernel(conv_type: str, size: int, temporal: int = 3) -> tuple[int, int, int]:
    """``temporal×size×size`` for a 3D layer, ``1×size×size`` for a 2D one."""
    return (temporal if conv_type == "3d" else 1, size, size)


class BasicBlock3d(nn.Module):
    """ResNet basic block with 3D (or 1×k×k) convolutions and an optional 1×1×1 projection."""

    def __init__(
        self, in_channels: int, channels: int, stride: tuple[int, int, int], conv_type: str, projection: bool
    ) -> None:
        super().__init__()
        self.conv1 = conv3d(in_channels, channels, _kernel(conv_type, 3), stride)
        self.bn1 = nn.BatchNorm3d(channels)
        self.conv2 = conv3d(channels, channels, _kernel(conv_type, 3))
        self.bn2 = nn.BatchNorm3d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(conv3d(in_channels, channels, 1, stride), nn.BatchNorm3d(channels)) if projection else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class Res3D(PooledLinearHead):
    """3D ResNet with basic blocks and no max-pooling (see the module docstring)."""

    first_conv = "conv1"

    def __init__(
        self,
        stage_blocks: Sequence[int],
        num_classes: int = 101,
        width: int = 64,
        conv_types: str | Sequence[str] = "3d",
        temporal_strides: Sequence[int] = (1, 2, 2, 2),
        res2_projection: bool = False,
        dropout: float = 0.0,
        in_channels: int = 3,
        default_input: tuple[int, ...] = (3, 8, 112, 112),
    ) -> None:
        super().__init__()
        types = (conv_types,) * 5 if isinstance(conv_types, str) else tuple(conv_types)
        if len(types) != 5 or any(t not in ("2d", "3d") for t in types):
            raise ValueError(
                f"conv_types: expected '2d'/'3d' or 5 of them (conv1, conv2_x..conv5_x), got {conv_types!r}"
            )
        if len(stage_blocks) != 4 or len(temporal_strides) != 4:
            raise ValueError("stage_blocks and temporal_strides need one entry per stage conv2_x..conv5_x")
        self.default_input = (in_channels, *default_input[1:])
        self.conv1 = conv3d(in_channels, width, _kernel(types[0], 7), (1, 2, 2))
        self.bn1 = nn.BatchNorm3d(width)
        self.relu = nn.ReLU(inplace=True)
        stages, channels = [], width
        for i, (blocks, t_stride, conv_type) in enumerate(zip(stage_blocks, temporal_strides, types[1:])):
            out_channels = width * 2**i
            spatial = 1 if i == 0 else 2
            stride = (t_stride if conv_type == "3d" else 1, spatial, spatial)
            layer = []
            for b in range(blocks):
                first = b == 0
                projection = first and (stride != (1, 1, 1) or channels != out_channels or (i == 0 and res2_projection))
                layer.append(
                    BasicBlock3d(channels, out_channels, stride if first else (1, 1, 1), conv_type, projection)
                )
                channels = out_channels
            stages.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        msra_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _res3d(depth: int, num_classes: int, **kwargs) -> Res3D:
    return Res3D(STAGE_BLOCKS[depth], num_classes=num_classes, **kwargs)


@register_model(family="res3d", paper=PAPER, default_input=(3, 8, 112, 112))
def res3d10(num_classes: int = 101, **kwargs) -> Res3D:
    """Res3D-10: blocks [1, 1, 1, 1]."""
    return _res3d(10, num_classes, **kwargs)


@register_model(family="res3d", paper=PAPER, default_input=(3, 8, 112, 112))
def res3d16(num_classes: int = 101, **kwargs) -> Res3D:
    """Res3D-16: blocks [2, 2, 2, 1] (depth-study layout, see module docstring)."""
    return _res3d(16, num_classes, **kwargs)


@register_model(family="res3d", paper=PAPER, default_input=(3, 8, 112, 112))
def res3d18(num_classes: int = 101, **kwargs) -> Res3D:
    """Res3D-18 ("SR18"; the released Res3D): blocks [2, 2, 2, 2]."""
    return _res3d(18, num_classes, **kwargs)


@register_model(family="res3d", paper=PAPER, default_input=(3, 8, 112, 112))
def res3d26(num_classes: int = 101, **kwargs) -> Res3D:
    """Res3D-26: blocks [2, 3, 4, 3] (depth-study layout, see module docstring)."""
    return _res3d(26, num_classes, **kwargs)


@register_model(family="res3d", paper=PAPER, default_input=(3, 8, 112, 112))
def res3d34(num_classes: int = 101, **kwargs) -> Res3D:
    """Res3D-34: blocks [3, 4, 6, 3]."""
    return _res3d(34, num_classes, **kwargs)


@register_model(family="res3d", paper=PAPER, default_input=(3, 4, 112, 112))
def res3d18_simplified(num_classes: int = 101, **kwargs) -> Res3D:
    """The paper's simplified Res3D-18: 4-frame input and conv5_1 stride 1×2×2 (ends at 512×1×7×7)."""
    kwargs.setdefault("temporal_strides", (1, 2, 2, 1))
    kwargs.setdefault("default_input", (3, 4, 112, 112))
    return _res3d(18, num_classes, **kwargs)
