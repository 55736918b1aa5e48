"""DenseNet3D and T3D: Diba et al., "Temporal 3D ConvNets: New Architecture and Transfer Learning
for Video Classification", arXiv:1711.08200 (papers.md §5; authors' code ``[C:T3D]``).

DenseNet3D follows the authors' ``models/DenseNet3D.py``. At the 3×32×224×224 input::

    conv0  3×7×7, 64, stride 2 in T, H and W, pad (1,3,3); BN; ReLU    64×16×112×112
    pool0  MaxPool3d(3, stride 2, pad 1)                                64×8×56×56
    dense block 1 (6 layers: BN-ReLU-1×1×1 (128)-BN-ReLU-3×3×3 (32), concatenated)  256×8×56×56
    transition 1  BN-ReLU-1×1×1 conv (÷2) + AvgPool3d(2, 2)             128×4×28×28
    dense block 2 (12) → transition 2                                   256×2×14×14
    dense block 3 (24; 169: 32) → transition 3                          512×1×7×7
    dense block 4 (16; 169: 32)                                         1024×1×7×7 (169: 1664)
    BN → ReLU → global average pool → dropout (0) → fc

T3D replaces each transition by a **Temporal Transition Layer** (TTL)::

         ┌ BN-ReLU-Conv3d k₁ (ttl_width) ┐
    x ───┼ BN-ReLU-Conv3d k₂ (ttl_width) ┼── concat ── BN-ReLU-1×1×1 conv (ttl_out_channels) ── AvgPool3d(2, 2)
         └ BN-ReLU-Conv3d k₃ (ttl_width) ┘

Choices (the paper's architecture table was not retrievable, papers.md §5.1/§8):

* The TTL is given by a named preset, ``ttl_preset`` (``T3D_TTL_PRESETS``); no two sources agree,
  so each sourced variant is available (T3D-121, 400 classes, 3×32×224×224; measured with
  ``vidnets models --family t3d --num-classes 400`` and asserted in the tests):

  ================ ============================================== ============== ========== =========
  preset           branch kernels (T×H×W), 128 filters each        TTL output     params     GMACs
  ================ ============================================== ============== ========== =========
  ``"authors"``    1×1×1, 3×3×3, 4×3×3 in every TTL               384            29,731,728 114.30
  ``"keras"``      1×3×3, 3×3×3, 4×3×3 in every TTL               full block     36,723,344 120.06
  ``"tf_keras"``   1×1×1, 3×3×3, 6×3×3 in TTL1; 1×1×1, 3×3×3,     192 (384 / 2)  25,577,232 120.27
                   4×3×3 in TTL2/TTL3
  ``"half_block"`` as ``"tf_keras"``                               half block     26,594,192 118.14
  ================ ============================================== ============== ========== =========

  Sources: ``"authors"`` — MohsenFayyaz89/T3D ``models/T3D.py``, the authors' draft (added in
  7f66a74, deleted in 1c8e143); ``"keras"`` — rekon/T3D-keras ``T3D_keras.py``; ``"tf_keras"`` — a
  tf.keras port (papers.md [S:T3D-keras]), whose 25.6 M is the figure often quoted for T3D-121;
  ``"half_block"`` — no source: DenseNet3D's transition widths (128/256/512), the default of earlier
  vidnets versions. T3D-169: 38,374,032 / 49,290,128 / 33,620,496 / 36,002,704 params in the same
  order. For comparison DenseNet3D-121 has 11,658,896 params and 34.11 GMACs.

  The default is ``"authors"``: the deleted draft is the only TTL the paper's authors wrote. It
  does not run as committed (syntax errors), but its intent is unambiguous: three BN-ReLU-Conv3d
  branches of 128 filters with temporal depths 1, 3 and 4, concatenated to 384 channels and kept at
  384 by the transition (``_Transition(384, 384)``). The third-party ports each change something
  (spatial 1×3×3 first branch and no channel reduction in rekon's port, a deeper 6×3×3 kernel in
  TTL1 and a halving transition in the tf.keras one); ``"half_block"`` keeps DenseNet3D's
  transition widths (128/256/512) so that T3D and DenseNet3D differ only by the TTL branches.
  ``ttl_kernels``, ``ttl_width`` and ``ttl_out_channels`` (an int, ``"half_block"`` or
  ``"full_block"``) override single fields of the preset.
* Even temporal kernels (4, 6) use "same" padding with the extra frame padded at the end (PyTorch's
  and Keras' convention), so every TTL branch keeps the temporal length and the branches concatenate.
* Pooling uses global average pooling instead of the authors' ``avg_pool3d((1, 7, 7))`` (which
  assumed T = 1 and 7×7 at the end, i.e. exactly a 32×224×224 input), and the transitions'
  average pooling is :class:`HalvingAvgPool3d`: identical to the authors' ``AvgPool3d(2, 2)`` at
  even sizes (all of them at 32×224×224) and valid for short or small clips (a size-1 axis stays 1).
* ``drop_rate`` (dropout after each dense layer): 0.0 by default, as the authors' ``DenseNet3D``
  class; their ``densenet121()`` factory used 0.2.
* ``memory_efficient=True`` recomputes each dense layer's bottleneck in the backward pass
  (``torch.utils.checkpoint``), trading compute for the activations of the concatenations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from vidnets.models.blocks import PooledLinearHead, bn_relu, msra_init, same_conv3d
from vidnets.models.registry import register_model

__all__ = [
    "T3D_TTL_PRESETS",
    "TTLPreset",
    "DEFAULT_TTL_PRESET",
    "DenseNet3D",
    "DenseLayer3d",
    "TemporalTransition",
    "HalvingAvgPool3d",
    "densenet3d121",
    "densenet3d169",
    "t3d121",
    "t3d169",
]

PAPER = "Diba et al., arXiv:1711.08200 (T3D)"
DENSENET_BLOCKS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32)}
_DEPTHS_134 = ((1, 1, 1), (3, 3, 3), (4, 3, 3))
_DEPTHS_136 = ((1, 1, 1), (3, 3, 3), (6, 3, 3))


@dataclass(frozen=True)
class TTLPreset:
    """One sourced reading of the Temporal Transition Layer (see the module docstring)."""

    kernels: tuple  # per TTL, the (T, H, W) kernel of each branch
    width: int  # filters per branch
    out_channels: int | str  # an int, "half_block" or "full_block"
    source: str


T3D_TTL_PRESETS = {
    "authors": TTLPreset(
        (_DEPTHS_134,) * 3, 128, 384, "MohsenFayyaz89/T3D models/T3D.py (authors' draft, deleted in 1c8e143)"
    ),
    "keras": TTLPreset((((1, 3, 3), (3, 3, 3), (4, 3, 3)),) * 3, 128, "full_block", "rekon/T3D-keras T3D_keras.py"),
    "tf_keras": TTLPreset(
        (_DEPTHS_136, _DEPTHS_134, _DEPTHS_134), 128, 192, "tf.keras T3D port (papers.md [S:T3D-keras])"
    ),
    "half_block": TTLPreset(
        (_DEPTHS_136, _DEPTHS_134, _DEPTHS_134), 128, "half_block", "none: DenseNet3D's transition widths"
    ),
}
DEFAULT_TTL_PRESET = "authors"


class DenseLayer3d(nn.Module):
    """BN-ReLU-1×1×1 conv (bn_size·k) → BN-ReLU-3×3×3 conv (k); output = input ⊕ new features."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float, memory_efficient: bool):
        super().__init__()
        self.bottleneck = nn.Sequential(
            *bn_relu(in_channels), nn.Conv3d(in_channels, bn_size * growth_rate, 1, bias=False)
        )
        self.conv = nn.Sequential(
            *bn_relu(bn_size * growth_rate), nn.Conv3d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        )
        self.drop_rate = drop_rate
        self.memory_efficient = memory_efficient

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.memory_efficient and self.training and x.requires_grad:
            hidden = cp.checkpoint(self.bottleneck, x, use_reentrant=False)
        else:
            hidden = self.bottleneck(x)
        new = self.conv(hidden)
        if self.drop_rate > 0:
            new = F.dropout(new, p=self.drop_rate, training=self.training)
        return torch.cat([x, new], dim=1)


class HalvingAvgPool3d(nn.Module):
    """AvgPool3d(2, stride 2) that also accepts odd sizes and size-1 axes.

    Equal to the authors' ``AvgPool3d(2, 2)`` on even sizes. An odd size keeps its last partial
    window (ceil rounding, averaging only real elements) and a size-1 axis stays 1, so short or
    small clips pass through all three transitions.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = tuple(min(2, size) for size in x.shape[2:])
        return F.avg_pool3d(x, kernel, stride=2, ceil_mode=True)


def _transition(in_channels: int, out_channels: int) -> nn.Sequential:
    """DenseNet transition: BN-ReLU-1×1×1 conv + 2×2×2 average pooling (see HalvingAvgPool3d)."""
    return nn.Sequential(*bn_relu(in_channels), nn.Conv3d(in_channels, out_channels, 1, bias=False), HalvingAvgPool3d())


class TemporalTransition(nn.Module):
    """T3D's TTL: parallel BN-ReLU-Conv3d branches of different temporal depth, concatenated, then a transition."""

    def __init__(self, in_channels: int, kernels: Sequence[Sequence[int]], width: int, out_channels: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*bn_relu(in_channels), same_conv3d(in_channels, width, k)) for k in kernels
        )
        self.transition = _transition(width * len(kernels), out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transition(torch.cat([branch(x) for branch in self.branches], dim=1))


class DenseNet3D(PooledLinearHead):
    """3D DenseNet-BC; with ``ttl_kernels`` set it is T3D (see the module docstring).

    The size knobs, all positive ints, default to the paper's net: ``growth_rate`` (32, channels
    each dense layer adds), ``bn_size`` (4, bottleneck width as a multiple of the growth rate),
    ``num_init_features`` (64, conv0's channels), ``ttl_width`` (128, filters per TTL branch) and
    an int ``ttl_out_channels`` (a TTL's output channels). Small values give tiny nets for CPU runs.
    """

    first_conv = "conv0"

    def __init__(
        self,
        block_config: Sequence[int],
        num_classes: int = 400,
        growth_rate: int = 32,
        bn_size: int = 4,
        num_init_features: int = 64,
        drop_rate: float = 0.0,
        ttl_kernels: Sequence[Sequence[Sequence[int]]] | None = None,
        ttl_width: int = 128,
        ttl_out_channels: int | str = "half_block",
        dropout: float = 0.0,
        memory_efficient: bool = False,
        in_channels: int = 3,
        default_input: tuple[int, ...] = (3, 32, 224, 224),
    ) -> None:
        super().__init__()
        sizes = {
            "growth_rate": growth_rate,
            "bn_size": bn_size,
            "num_init_features": num_init_features,
            "ttl_width": ttl_width,
        }
        if isinstance(ttl_out_channels, int):
            sizes["ttl_out_channels"] = ttl_out_channels
        for key, value in sizes.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"DenseNet3D {key}={value!r}: expected a positive int")
        if not (isinstance(ttl_out_channels, int) or ttl_out_channels in ("half_block", "full_block")):
            raise ValueError(
                f"ttl_out_channels: expected an int, 'half_block' or 'full_block', got {ttl_out_channels!r}"
            )
        if ttl_kernels is not None and len(ttl_kernels) != len(block_config) - 1:
            raise ValueError(
                f"ttl_kernels: expected {len(block_config) - 1} TTLs (one per transition), got {len(ttl_kernels)}"
            )
        self.default_input = (in_channels, *default_input[1:])
        self.conv0 = nn.Conv3d(in_channels, num_init_features, (3, 7, 7), stride=2, padding=(1, 3, 3), bias=False)
        self.stem = nn.Sequential(nn.BatchNorm3d(num_init_features), nn.ReLU(inplace=True), nn.MaxPool3d(3, 2, 1))
        stages: list[nn.Module] = []
        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            layers = [
                DenseLayer3d(channels + j * growth_rate, growth_rate, bn_size, drop_rate, memory_efficient)
                for j in range(num_layers)
            ]
            stages.append(nn.Sequential(*layers))
            channels += num_layers * growth_rate
            if i == len(block_config) - 1:
                break
            if ttl_kernels is None:
                stages.append(_transition(channels, channels // 2))
                channels //= 2
            else:
                out = {"half_block": channels // 2, "full_block": channels}.get(ttl_out_channels, ttl_out_channels)
                stages.append(TemporalTransition(channels, ttl_kernels[i], ttl_width, out))
                channels = out
        self.features = nn.Sequential(*stages)
        self.norm = nn.Sequential(nn.BatchNorm3d(channels), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        msra_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.features(self.stem(self.conv0(x))))


@register_model(family="t3d", paper=PAPER, default_input=(3, 32, 224, 224))
def densenet3d121(num_classes: int = 400, **kwargs) -> DenseNet3D:
    """DenseNet3D-121 (blocks 6/12/24/16), the T3D paper's 3D baseline."""
    return DenseNet3D(DENSENET_BLOCKS[121], num_classes=num_classes, **kwargs)


@register_model(family="t3d", paper=PAPER, default_input=(3, 32, 224, 224))
def densenet3d169(num_classes: int = 400, **kwargs) -> DenseNet3D:
    """DenseNet3D-169 (blocks 6/12/32/32, final width 1664)."""
    return DenseNet3D(DENSENET_BLOCKS[169], num_classes=num_classes, **kwargs)


def _t3d(depth: int, num_classes: int, ttl_preset: str, kwargs: dict) -> DenseNet3D:
    if ttl_preset not in T3D_TTL_PRESETS:
        raise ValueError(f"ttl_preset: expected one of {', '.join(T3D_TTL_PRESETS)}, got {ttl_preset!r}")
    preset = T3D_TTL_PRESETS[ttl_preset]
    kwargs.setdefault("ttl_kernels", preset.kernels)
    kwargs.setdefault("ttl_width", preset.width)
    kwargs.setdefault("ttl_out_channels", preset.out_channels)
    return DenseNet3D(DENSENET_BLOCKS[depth], num_classes=num_classes, **kwargs)


@register_model(family="t3d", paper=PAPER, default_input=(3, 32, 224, 224))
def t3d121(num_classes: int = 400, ttl_preset: str = DEFAULT_TTL_PRESET, **kwargs) -> DenseNet3D:
    """T3D-121: DenseNet3D-121 with Temporal Transition Layers of ``ttl_preset`` (module docstring)."""
    return _t3d(121, num_classes, ttl_preset, kwargs)


@register_model(family="t3d", paper=PAPER, default_input=(3, 32, 224, 224))
def t3d169(num_classes: int = 400, ttl_preset: str = DEFAULT_TTL_PRESET, **kwargs) -> DenseNet3D:
    """T3D-169: DenseNet3D-169 with Temporal Transition Layers of ``ttl_preset``."""
    return _t3d(169, num_classes, ttl_preset, kwargs)
