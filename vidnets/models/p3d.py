"""P3D ResNet: Qiu, Yao, Mei, "Learning Spatio-Temporal Representation with Pseudo-3D Residual
Networks", ICCV 2017 (papers.md §4; authors' deploy prototxt ``[C:P3D]``).

A P3D bottleneck factorises the 3×3×3 convolution into S = 1×3×3 (spatial) and T = 3×1×1
(temporal). With ``x'`` the output of the 1×1×1 reduction, the three block types are, with the
exact nonlinearity placement of the released Caffe net (papers.md §4.1, fact 21)::

    A (cascade):          relu(bn(T(relu(bn(S(x'))))))
    B (parallel):         relu( relu(bn(S(x'))) + bn(T(x')) )
    C (cascade + skip):   s = relu(bn(S(x')));  relu( 0.5·s + 0.5·bn(T(s)) )

    each followed by 1×1×1 → BN → (+ shortcut) → ReLU

Network for the default 3×16×160×160 input (P3D ResNet-199, papers.md §4.2, fact 18)::

    conv1 1×7×7, stride 1×2×2 → pool1 max 2×3×3 / 2×2×2 (ceil)        64×8×40×40
    res2  P3D bottlenecks → max 2×1×1 / 2                              256×4×40×40
    res3  P3D bottlenecks (first spatial stride 2) → max 2×1×1 / 2     512×2×20×20
    res4  P3D bottlenecks (first spatial stride 2) → max 2×1×1 / 2     1024×1×10×10
    res5  plain 2D bottlenecks on every remaining frame (first stride 2)   2048×T'×5×5
    global average pool → dropout → fc

Block types cycle A→B→C over the blocks of res2–res4 *continuing across stages*, as in the
prototxt (res2a = A, res2b = B, res2c = C, res3a = A, …). ``block_types`` takes any cycle, e.g.
``"A"``, ``"B"``, ``"C"`` for the single-type variants of Table 1, ``"ABC"`` (default) for the
mixed P3D ResNet.

Choices (documented where the paper is silent):

* Spatial stride of a downsampling block sits on the first 1×1 convolution, as in the MSRA Caffe
  ResNets the prototxt extends; this is also what makes B (S and T both read ``x'``) well-defined.
  It reproduces the prototxt's 18.40 G MACs at 16×160×160 (papers.md §4.3).
* The prototxt reshapes to 4-D with a hard-coded 10×10 (T = 1 at 16 input frames). Here every
  frame left after res4 runs through the 2D res5 (time folded into the batch) and the head averages
  over time and space, so other clip lengths and sizes work and T' = 1 matches the Caffe net.
* Pools use ``ceil_mode=True`` (Caffe's pooling3d rounding). The third-party PyTorch port pads
  pool1 instead; the shapes agree at 160×160.
* The C block's sum of S and T is weighted 0.5/0.5: every one of the 15 C blocks of the three
  released deploy prototxts (Sports-1M, Kinetics RGB, Kinetics flow) has an Eltwise SUM with
  ``coeff: 0.5 coeff: 0.5`` (e.g. ``res2c_branch2b_st``), while the 16 B blocks sum with 1/1. The
  paper's equations (papers.md §4.1) write an unweighted sum; ``c_block_coeffs=(1.0, 1.0)`` gives it.
* ``dropout``: 0.5 by default (Kinetics RGB deploy prototxt); the Sports-1M net uses 0.1 and the
  Kinetics flow net (2 input channels) 0.7, see ``P3D_RELEASE_DROPOUT``: e.g.
  ``p3d199(in_channels=2, dropout=P3D_RELEASE_DROPOUT["kinetics_flow"])``.
* Initialisation from scratch is msra (the paper trains T from random init). To start from an
  ImageNet 2D ResNet use :func:`load_2d_resnet_weights`.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import torch
from torch import nn

from vidnets.models.blocks import PooledLinearHead, msra_init
from vidnets.models.inflate import InflationReport, inflate_state_dict
from vidnets.models.registry import register_model

__all__ = [
    "P3D",
    "P3DBottleneck",
    "P3D_RELEASE_DROPOUT",
    "C_BLOCK_COEFFS",
    "Bottleneck2d",
    "p3d63",
    "p3d131",
    "p3d199",
    "load_2d_resnet_weights",
    "P3D_LAYOUTS",
]

PAPER = "Qiu et al., ICCV 2017 (P3D)"
P3D_LAYOUTS = {63: (3, 4, 6, 3), 131: (3, 4, 23, 3), 199: (3, 8, 36, 3)}  # ResNet-50/101/152
EXPANSION = 4
C_BLOCK_COEFFS = (0.5, 0.5)  # Eltwise coeffs of every C block in the authors' deploy prototxts
# dropout_ratio before the classifier in each released deploy prototxt
P3D_RELEASE_DROPOUT = {"sports1m": 0.1, "kinetics": 0.5, "kinetics_flow": 0.7}


class P3DBottleneck(nn.Module):
    """Bottleneck 1×1×1 → {S, T} of ``block_type`` → 1×1×1, with residual (module docstring).

    Parameter names follow torchvision's ResNet bottleneck (``conv1``, ``conv2`` = S, ``conv3``,
    ``downsample``) so 2D checkpoints map by name; T is ``conv_t`` / ``bn_t``.
    """

    def __init__(
        self,
        in_channels: int,
        planes: int,
        block_type: str,
        stride: int,
        projection: bool,
        c_block_coeffs: tuple[float, float] = C_BLOCK_COEFFS,
    ) -> None:
        super().__init__()
        if block_type not in ("A", "B", "C"):
            raise ValueError(f"block_type: expected 'A', 'B' or 'C', got {block_type!r}")
        self.block_type = block_type
        # Eltwise coefficients of the S + T sum: the prototxt's 0.5/0.5 in C blocks, 1/1 in B blocks
        self.sum_coeffs = tuple(float(c) for c in c_block_coeffs) if block_type == "C" else (1.0, 1.0)
        self.conv1 = nn.Conv3d(in_channels, planes, 1, stride=(1, stride, stride), bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, (1, 3, 3), padding=(0, 1, 1), bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv_t = nn.Conv3d(planes, planes, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.bn_t = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(
                nn.Conv3d(in_channels, planes * EXPANSION, 1, stride=(1, stride, stride), bias=False),
                nn.BatchNorm3d(planes * EXPANSION),
            )
            if projection
            else None
        )

    def spatial_temporal(self, x: torch.Tensor) -> torch.Tensor:
        s = self.relu(self.bn2(self.conv2(x)))
        if self.block_type == "A":
            return self.relu(self.bn_t(self.conv_t(s)))
        t_input = x if self.block_type == "B" else s
        coeff_s, coeff_t = self.sum_coeffs
        return self.relu(coeff_s * s + coeff_t * self.bn_t(self.conv_t(t_input)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(self.spatial_temporal(out)))
        return self.relu(out + shortcut)


class Bottleneck2d(nn.Module):
    """Plain 2D ResNet bottleneck of res5 (stride on the first 1×1, as in the Caffe ResNets)."""

    def __init__(self, in_channels: int, planes: int, stride: int, projection: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(
                nn.Conv2d(in_channels, planes * EXPANSION, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * EXPANSION),
            )
            if projection
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


class P3D(PooledLinearHead):
    """P3D ResNet on a ResNet-50/101/152 layout (see the module docstring).

    ``c_block_coeffs`` weights the S + T sum of the C blocks: ``(0.5, 0.5)`` as in the released
    prototxts (default), ``(1.0, 1.0)`` for the paper's unweighted equation. ``width`` is the base
    channel count: conv1 has ``width`` channels, the bottleneck planes of res2..res5 are ``width``
    × 1, 2, 4, 8 and their outputs 4× that, so fc sees ``32 · width`` features (64 → 2048, the
    paper's net); small values give tiny nets for CPU runs. ``zero_init_residual`` starts the last
    BN of every bottleneck at γ = 0, so each block starts as its shortcut (Goyal et al. 2017,
    torchvision's option of the same name); off by default, as the paper initialises from an
    ImageNet ResNet and the prototxts say nothing of it.
    """

    first_conv = "conv1"

    def __init__(
        self,
        stage_blocks: Sequence[int],
        num_classes: int = 400,
        block_types: str = "ABC",
        dropout: float = 0.5,
        in_channels: int = 3,
        default_input: tuple[int, ...] = (3, 16, 160, 160),
        c_block_coeffs: tuple[float, float] = C_BLOCK_COEFFS,
        width: int = 64,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ValueError(f"P3D width={width!r}: expected a positive int (base channels; 64 in the paper)")
        if len(c_block_coeffs) != 2:
            raise ValueError(
                f"c_block_coeffs: expected two coefficients (S, T) such as (0.5, 0.5), got {c_block_coeffs!r}"
            )
        if not block_types or any(t not in "ABC" for t in block_types):
            raise ValueError(f"block_types: expected a cycle of 'A', 'B', 'C' such as 'ABC', got {block_types!r}")
        if len(stage_blocks) != 4:
            raise ValueError(f"stage_blocks: expected 4 stage sizes (res2..res5), got {stage_blocks!r}")
        self.default_input = (in_channels, *default_input[1:])
        self.conv1 = nn.Conv3d(in_channels, width, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((2, 3, 3), stride=2, ceil_mode=True)
        self.temporal_pool = nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1), ceil_mode=True)
        channels, block_index = width, 0
        for stage, blocks in enumerate(stage_blocks[:3]):
            planes, layer = width * 2**stage, []
            for b in range(blocks):
                block_type = block_types[block_index % len(block_types)]
                stride = 2 if (stage > 0 and b == 0) else 1
                layer.append(P3DBottleneck(channels, planes, block_type, stride, b == 0, c_block_coeffs))
                channels, block_index = planes * EXPANSION, block_index + 1
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))
        planes = width * 8
        self.layer4 = nn.Sequential(
            *(
                Bottleneck2d(channels if b == 0 else planes * EXPANSION, planes, 2 if b == 0 else 1, b == 0)
                for b in range(stage_blocks[3])
            )
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(planes * EXPANSION, num_classes)
        msra_init(self)
        if zero_init_residual:
            for block in self.modules():
                if isinstance(block, (P3DBottleneck, Bottleneck2d)):
                    nn.init.zeros_(block.bn3.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(N, 32·width, T', H', W')`` before global pooling (2048 channels at the paper's
        width 64; T' = 1 at 16 input frames)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.temporal_pool(self.layer1(x))
        x = self.temporal_pool(self.layer2(x))
        x = self.temporal_pool(self.layer3(x))
        n, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(n * t, c, h, w)  # res5 is 2D: every frame separately
        frames = self.layer4(frames)
        return frames.reshape(n, t, *frames.shape[1:]).transpose(1, 2)


def _p3d(depth: int, num_classes: int, **kwargs) -> P3D:
    return P3D(P3D_LAYOUTS[depth], num_classes=num_classes, **kwargs)


@register_model(family="p3d", paper=PAPER, default_input=(3, 16, 160, 160))
def p3d63(num_classes: int = 400, width: int = 64, **kwargs) -> P3D:
    """P3D ResNet-63 (ResNet-50 layout [3, 4, 6, 3]; the Table 1 variants use ``block_types``).

    ``width``: base channels (64 in the paper; conv1, every stage, res5 and fc scale with it).
    """
    return _p3d(63, num_classes, width=width, **kwargs)


@register_model(family="p3d", paper=PAPER, default_input=(3, 16, 160, 160))
def p3d131(num_classes: int = 400, width: int = 64, **kwargs) -> P3D:
    """P3D ResNet-131 (ResNet-101 layout [3, 4, 23, 3]).

    ``width``: base channels (64 in the paper; conv1, every stage, res5 and fc scale with it).
    """
    return _p3d(131, num_classes, width=width, **kwargs)


@register_model(family="p3d", paper=PAPER, default_input=(3, 16, 160, 160))
def p3d199(num_classes: int = 400, width: int = 64, **kwargs) -> P3D:
    """P3D ResNet-199 (ResNet-152 layout [3, 8, 36, 3]), the released Sports-1M/Kinetics net.

    ``width``: base channels (64 in the paper; conv1, every stage, res5 and fc scale with it).
    """
    return _p3d(199, num_classes, width=width, **kwargs)


# -- initialisation from a 2D ResNet ----------------------------------------------------------------


def load_2d_resnet_weights(
    model: P3D,
    state_dict_or_path: Mapping[str, torch.Tensor] | str | os.PathLike,
    temporal_init: str = "identity",
) -> InflationReport:
    """Initialise ``model`` from a 2D ResNet checkpoint with torchvision's key names.

    Every 2D kernel becomes a 1×k×k kernel (conv1, the 1×1 convs and S); res5 and BN copy as they
    are; ``fc`` loads only when the class counts agree (otherwise it is reported as shape-mismatched
    and keeps its initialisation). The file is read with weights-only unpickling. Note that
    torchvision's ResNets stride in the 3×3 convolution while this net, like the Caffe ResNets P3D
    was built from, strides in the first 1×1; the shapes agree, so the weights load all the same.

    ``temporal_init`` sets the temporal convolutions, which have no 2D counterpart:

    * ``"identity"`` (default) – the net starts as the 2D ResNet applied frame by frame: in A
      blocks T is the identity (centre tap = identity matrix, so ``relu(bn(T(s))) = s`` with fresh
      BN statistics); in B and C blocks T keeps its msra init but ``bn_t``'s γ and β are zeroed,
      which switches the added temporal branch off at the start while it still receives
      gradients. A C block sums ``c_s·s + c_t·bn(T(s))`` (0.5/0.5 by default), so its ``bn2`` γ and
      β are divided by ``c_s``: ``c_s·relu(bn2(·)/c_s) = relu(bn2(·))`` in training and in eval
      mode alike, and the block outputs exactly its 2D bottleneck. This keeps the ImageNet features
      intact at the start of fine-tuning instead of adding noise to every block.
    * ``"msra"`` – leave T randomly initialised, as the paper states.
    """
    if temporal_init not in ("identity", "msra"):
        raise ValueError(f"temporal_init: expected 'identity' or 'msra', got {temporal_init!r}")
    report = inflate_state_dict(model, state_dict_or_path, mode="center")
    if temporal_init == "identity":
        with torch.no_grad():
            for block in model.modules():
                if isinstance(block, P3DBottleneck):
                    _start_as_2d_bottleneck(block)
    return report


def _start_as_2d_bottleneck(block: P3DBottleneck) -> None:
    """Set T (and, in C blocks, rescale S's BN) so the block computes its 2D bottleneck per frame."""
    if block.block_type == "A":
        block.conv_t.weight.zero_()
        eye = torch.eye(block.conv_t.out_channels, dtype=block.conv_t.weight.dtype)
        block.conv_t.weight[:, :, 1, 0, 0] = eye
        return
    block.bn_t.weight.zero_()
    block.bn_t.bias.zero_()
    coeff_s = block.sum_coeffs[0]
    if coeff_s <= 0:
        raise ValueError(f"temporal_init='identity' needs a positive S coefficient, got {block.sum_coeffs}")
    block.bn2.weight.div_(coeff_s)  # relu is positively homogeneous: c_s·relu(z/c_s) = relu(z)
    block.bn2.bias.div_(coeff_s)
