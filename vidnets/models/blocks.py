"""Small 3D building pieces shared by the P3D, T3D/DenseNet3D and Res3D families.

* :class:`PooledLinearHead` – the common head: global average pooling over every axis after the
  channels, optional dropout, then ``fc``. It works for ``(N, C, T, H, W)`` and ``(N, C, H, W)``
  features and for any input size, which is why the families here use it instead of the fixed
  pooling windows of the original Caffe/PyTorch code.
* :func:`conv3d` – a bias-free 3D convolution with "same"-style symmetric padding for odd kernels.
* :func:`msra_init` – He ("msra") initialisation with ``fan_out``, as the Res3D and P3D Caffe nets
  and torchvision's ResNets use.
"""

from __future__ import annotations

import torch
from torch import nn

from vidnets.models.base import VideoClassifier

__all__ = ["PooledLinearHead", "conv3d", "same_conv3d", "bn_relu", "msra_init", "triple"]


def triple(value: int | tuple[int, int, int]) -> tuple[int, int, int]:
    """``3`` → ``(3, 3, 3)``; a 3-tuple is returned unchanged (validated)."""
    if isinstance(value, int):
        return (value, value, value)
    value = tuple(value)
    if len(value) != 3:
        raise ValueError(f"expected an int or a (T, H, W) triple, got {value!r}")
    return value  # type: ignore[return-value]


def conv3d(
    in_channels: int,
    out_channels: int,
    kernel: int | tuple[int, int, int],
    stride: int | tuple[int, int, int] = 1,
    bias: bool = False,
) -> nn.Conv3d:
    """Conv3d with padding ``k // 2`` per axis (keeps the size at stride 1 for odd kernels)."""
    kernel = triple(kernel)
    return nn.Conv3d(
        in_channels, out_channels, kernel, stride=triple(stride), padding=tuple(k // 2 for k in kernel), bias=bias
    )


def same_conv3d(in_channels: int, out_channels: int, kernel: int | tuple[int, int, int]) -> nn.Module:
    """Stride-1 conv that keeps T, H, W for any kernel, even ones included.

    An even kernel ``k`` needs ``k - 1`` padding frames in all, which cannot be split evenly: the
    extra one goes at the end (``(k-1)//2`` before, ``k//2`` after), the convention of PyTorch's
    ``padding="same"`` and of Keras/TensorFlow. Explicit zero padding keeps the graph simple to
    export.
    """
    kernel = triple(kernel)
    before = [(k - 1) // 2 for k in kernel]
    after = [k // 2 for k in kernel]
    if before == after:
        return nn.Conv3d(in_channels, out_channels, kernel, padding=tuple(before), bias=False)
    pad = (before[2], after[2], before[1], after[1], before[0], after[0])  # F.pad order: W, H, T
    return nn.Sequential(nn.ConstantPad3d(pad, 0.0), nn.Conv3d(in_channels, out_channels, kernel, bias=False))


def bn_relu(channels: int) -> list[nn.Module]:
    """The pre-activation pair ``BN → ReLU`` (DenseNet's layers and T3D's TTL branches)."""
    return [nn.BatchNorm3d(channels), nn.ReLU(inplace=True)]


def msra_init(module: nn.Module) -> None:
    """He-normal (``fan_out``, ReLU gain) convolutions, BN γ=1 β=0, fc N(0, 0.01) and zero bias."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


class PooledLinearHead(VideoClassifier):
    """``forward_head`` = global average pool → dropout → ``fc``.

    Subclasses create ``self.dropout`` and ``self.fc``. Pooling averages every axis after the
    channel axis, so it is the global pooling of all three families at their default input and
    stays valid at any other input size.
    """

    classifier = "fc"

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = features.flatten(2).mean(dim=-1)
        if pre_logits:
            return pooled
        return self.fc(self.dropout(pooled))
