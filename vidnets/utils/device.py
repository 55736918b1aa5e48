"""Device and precision choices: CUDA where present, else CPU; bf16 where the hardware has it."""

from __future__ import annotations

import contextlib
import functools

import torch

__all__ = ["default_device", "cpu_has_native_bf16", "autocast_dtype", "autocast"]


def default_device(requested: str | None = None) -> torch.device:
    """``requested`` if given (``"cpu"``, ``"cuda:1"``…), else CUDA when available, else CPU."""
    if requested and requested != "auto":
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """True when the CPU executes bf16 fast enough that autocast pays off: AMX, or AVX-512 BF16 on
    AMD (Zen 4/5). Intel's AVX-512 BF16 without AMX (Cooper Lake; VMs that hide AMX) issues the bf16
    dot product on one port, no faster than fp32 FMAs, so casts make bf16 slower there (measured
    with the peak table of ``python -m benchmarks.models``: bf16 matmul and Conv3d 0.6–0.8× fp32)."""
    try:
        caps = torch.backends.cpu.get_cpu_capability()  # e.g. "AVX512"
    except Exception:
        caps = ""
    if "AVX512" not in caps and "AMX" not in caps:
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    if "amx_bf16" in flags:
        return True
    return "avx512_bf16" in flags and "AuthenticAMD" in flags


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``precision`` (``auto``, ``fp32``, ``bf16``, ``fp16``) on ``device``.

    ``auto`` picks bf16 on CUDA devices that support it and on CPUs with native bf16, else fp32
    (``None``: no autocast).
    """
    precision = precision.lower()
    if precision in ("fp32", "float32", "none"):
        return None
    if precision in ("bf16", "bfloat16"):
        return torch.bfloat16
    if precision in ("fp16", "float16", "half"):
        if device.type != "cuda":
            raise ValueError("precision fp16 needs a CUDA device; use bf16 on CPU")
        return torch.float16
    if precision != "auto":
        raise ValueError(f"precision: expected auto|fp32|bf16|fp16, found {precision!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for ``dtype`` on ``device``, or a no-op when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
