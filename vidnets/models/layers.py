"""Small pieces shared by the Caffe-era networks (C3D, Two-Stream, TSN).

Caffe rounds pooling output sizes **up** (``ceil((size + 2*pad - kernel) / stride) + 1``), PyTorch
rounds them down unless ``ceil_mode=True``. The published fc input sizes (C3D 8192, CNN-M 18,432,
BN-Inception 7×7) all depend on the ceil rounding, so the models here build their pools with
``ceil_mode=True`` and compute flatten sizes with :func:`pooled_size`.
"""

from __future__ import annotations

import math

from torch import nn

__all__ = ["pooled_size", "conv_size", "init_gaussian_"]


def pooled_size(size: int, kernel: int, stride: int, padding: int = 0, ceil_mode: bool = False) -> int:
    """Output length of one pooling axis, exactly as ``torch.nn.MaxPoolNd`` computes it.

    With ``ceil_mode=True`` this is Caffe's rounding, including its rule that the last window
    must start inside the (left-padded) input.
    """
    span = size + 2 * padding - kernel
    if span < 0:
        raise ValueError(f"pooling window {kernel} (padding {padding}) is larger than the input length {size}")
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def conv_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of one convolution axis (floor rounding in both Caffe and PyTorch)."""
    span = size + 2 * padding - kernel
    if span < 0:
        raise ValueError(f"convolution kernel {kernel} (padding {padding}) is larger than the input length {size}")
    return span // stride + 1


def init_gaussian_(layer: nn.Module, std: float, bias: float = 0.0) -> None:
    """Caffe's ``gaussian`` weight filler and ``constant`` bias filler on a conv or linear layer."""
    nn.init.normal_(layer.weight, 0.0, std)
    if getattr(layer, "bias", None) is not None:
        nn.init.constant_(layer.bias, bias)
