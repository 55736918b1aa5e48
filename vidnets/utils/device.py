"""Device and precision choices: CUDA where present, else CPU; bf16 where it is measured to pay off.

Whether ``precision="auto"`` uses bf16 autocast on a CPU is decided by timing, not by vendor or
ISA flags, because the flags do not predict bf16 speed: Intel's AVX-512 BF16 without AMX (Cooper
Lake; cloud VMs that hide AMX) issues the bf16 dot product on one port, no faster than fp32 FMAs,
so the casts make bf16 *slower* (measured on such a Xeon: 0.6–0.8× fp32 for matmul and Conv3d in
the peak table of ``python -m benchmarks.models``, 0.4–0.6× for the calibration conv below),
while AMD Zen 4/5 (AVX-512 BF16) and Intel CPUs with AMX run it 2–3× faster than fp32. Other
architectures (ARM, CPUs without AVX-512 BF16) get fp32 unless forced. The decision flow::

    VIDNETS_CPU_BF16=1|0 set? ──yes──► that answer (nothing timed)
        │ no
    avx512_bf16 / amx_bf16 in the CPU flags and torch's kernels built for AVX512/AMX?
        │ no ──► fp32 (nothing timed)
        │ yes
    cached calibration for (CPU model + flags, torch version, thread count)?
        │ yes ──► its answer (nothing timed)
        │ no
    time one Conv3d in fp32 and in bf16 autocast (0.2–0.5 s), and run one small training step
    (Conv3d → BatchNorm → ReLU → linear, forward and backward, through both of the
    convolution kernels training uses, in both memory layouts) in fp32 and in bf16
        ──► bf16 iff ≥ BF16_MIN_SPEEDUP× faster AND the bf16 step is finite and within
            BF16_MAX_STEP_ERROR of fp32
        └─► cached as JSON in <cache dir>/cpu_precision.json

The training check exists because speed alone is not enough: bf16 convolution kernels have
been reported to give wrong results, and non-finite gradients under bf16 autocast, on some CPUs
(for example PyTorch issue 163347, oneDNN bf16 convolutions on an AMD CPU), while the same code
is exact on others. Where the bf16 step is not finite or is far from fp32, ``auto`` stays fp32
on that CPU, for training and inference alike (``--set train.precision=bf16`` still forces it).

The cache dir is ``$VIDNETS_CACHE_DIR``, else ``$VIDNETS_CACHE``, else
``$XDG_CACHE_HOME/vidnets``, else ``~/.cache/vidnets``. Delete the file (or call
``cpu_bf16_calibration(refresh=True)``) to measure again, e.g. after a calibration that ran
while the machine was busy.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vidnets.utils.io import atomic_write_json

__all__ = [
    "default_device",
    "cpu_has_native_bf16",
    "cpu_bf16_calibration",
    "autocast_dtype",
    "autocast",
    "precision_reason",
    "BF16_MIN_SPEEDUP",
    "BF16_MAX_STEP_ERROR",
    "bf16_training_error",
    "CPU_BF16_ENV",
    "CPU_PRECISION_CACHE_FILE",
]

BF16_MAX_STEP_ERROR = 0.2
"""Largest relative L2 error of the bf16 training check (loss and every gradient) against fp32.
Correct bf16 kernels give about 4 % on it (the input and weight gradients, after BatchNorm's
backward; measured on an Intel Xeon with AMX); a broken kernel gives NaN or errors of order 1."""

BF16_MIN_SPEEDUP = 1.15
"""bf16 autocast counts as native on a CPU when the calibration conv runs at least this many times
faster in bf16 than in fp32. Above 1 so that timing noise on a CPU where both are equally fast
does not flip the choice; well below the 2–3× of CPUs with real bf16 throughput (AMX, Zen 4/5)."""

CPU_BF16_ENV = "VIDNETS_CPU_BF16"
"""Environment variable forcing ``precision="auto"`` on CPU: ``1`` = bf16 autocast, ``0`` = fp32."""

CPU_PRECISION_CACHE_FILE = "cpu_precision.json"

_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# The flags that change bf16 speed; part of the cache key so a VM moved to another host re-measures.
_KEY_FLAGS = ("avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
# The calibration layer: a mid-network 3×3×3 conv of a 3D ResNet, batch 2 (at batch 1 PyTorch
# sends small fp32 3D convs to its native kernel instead of oneDNN, which would measure that
# dispatch choice rather than the CPU's bf16 throughput), channels-last as on the fast path.
_CAL_INPUT = (2, 64, 8, 28, 28)
_CAL_REPEATS = 7
_CACHE_FORMAT = 2  # 2: entries carry the bf16 training check
_CACHE_MAX_ENTRIES = 16


def default_device(requested: str | None = None) -> torch.device:
    """``requested`` if given (``"cpu"``, ``"cuda:1"``…), else CUDA when available, else CPU."""
    if requested and requested != "auto":
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_native_bf16() -> bool:
    """True when bf16 autocast is faster than fp32 on this CPU, so ``precision="auto"`` uses it.

    Decided by a one-off measurement (cached on disk and in the process), not by vendor flags:
    AVX-512 BF16 without AMX on Intel runs bf16 *slower* than fp32 (0.6–0.8× for matmul and
    Conv3d), AMD Zen 4/5 and AMX 2–3× faster. Set ``VIDNETS_CPU_BF16=1`` (bf16) or ``=0`` (fp32)
    to force the answer without measuring. See :func:`cpu_bf16_calibration` for the details.
    """
    return bool(cpu_bf16_calibration()["native_bf16"])


def cpu_bf16_calibration(refresh: bool = False) -> dict[str, Any]:
    """The record behind :func:`cpu_has_native_bf16`, a dict with keys

    * ``native_bf16`` — the decision;
    * ``source`` — ``"env"`` (``VIDNETS_CPU_BF16`` forced it), ``"no_bf16_isa"`` (no AVX-512 BF16 /
      AMX: fp32 without measuring), ``"measured"`` (timed now) or ``"cache"`` (timed earlier);
    * ``speedup`` — fp32 time / bf16 time of the calibration Conv3d (``None`` when not measured),
      with ``fp32_ms``, ``bf16_ms`` (the fastest of the timed calls) and ``calibration_ms`` (the whole measurement);
    * ``threshold`` (:data:`BF16_MIN_SPEEDUP`), ``cpu``, ``cpu_flags``, ``cpu_capability``,
      ``torch``, ``threads`` (``torch.get_num_threads()``), ``timestamp`` (UTC, of the measurement)
      and ``cache_file``.

    Measured once per (CPU model and flags, torch version, thread count) and cached in
    ``<cache dir>/cpu_precision.json`` (see the module docstring); a corrupt or unreadable cache
    is measured again, an unwritable one is not written. ``refresh=True`` measures again and
    overwrites the cached entry. Raises ``ValueError`` when ``VIDNETS_CPU_BF16`` is set to
    anything but ``1`` or ``0``.
    """
    override = _env_override()
    threads = torch.get_num_threads()
    if refresh:
        _calibration.cache_clear()
        return dict(_decide(override, threads, use_cache=False))
    return dict(_calibration(override, threads))


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``precision`` (``auto``, ``fp32``, ``bf16``, ``fp16``) on ``device``.

    ``auto`` picks bf16 on CUDA devices that support it (fp16 on older ones), and on CPUs where
    bf16 measured faster than fp32 (:func:`cpu_has_native_bf16`; force it with
    ``VIDNETS_CPU_BF16=1|0``), else fp32 (``None``: no autocast).
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


def precision_reason(device: torch.device, precision: str = "auto") -> str:
    """Why :func:`autocast_dtype` chose what it chose, in a few words (for the run header).

    Reads the same decision (the cached CPU calibration; nothing is timed again in this process).
    """
    if precision.lower() != "auto":
        return f"train.precision={precision}"
    if device.type == "cuda":
        return "auto: the GPU supports bf16" if torch.cuda.is_bf16_supported() else "auto: the GPU has no bf16"
    record = cpu_bf16_calibration()
    source = record["source"]
    if source == "env":
        return f"auto: {CPU_BF16_ENV}={int(record['native_bf16'])}"
    if source == "no_bf16_isa":
        return "auto: this CPU has no AVX-512 BF16 or AMX"
    when = "measured now" if source == "measured" else "cached measurement"
    error = record.get("bf16_step_error")
    if error is not None and not (math.isfinite(error) and error <= BF16_MAX_STEP_ERROR):
        return f"auto: the bf16 training check failed on this CPU, error {error:.3g}; {when}"
    return f"auto: bf16 ran {record['speedup']:.2f}x as fast as fp32 here, needs {BF16_MIN_SPEEDUP:g}x; {when}"


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for ``dtype`` on ``device``, or a no-op when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# -- the decision ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _calibration(override: bool | None, threads: int) -> dict[str, Any]:
    # Keyed by the override and thread count so that changing either in-process is honoured.
    return _decide(override, threads, use_cache=True)


def _decide(override: bool | None, threads: int, use_cache: bool) -> dict[str, Any]:
    record = _machine_record(threads)
    if override is not None:
        return {**record, "native_bf16": override, "source": "env"}
    flags = _cpu_flags()
    caps = record["cpu_capability"]
    if not any(f in flags for f in _BF16_FLAGS) or ("AVX512" not in caps and "AMX" not in caps):
        return {**record, "native_bf16": False, "source": "no_bf16_isa"}
    path = _cache_file()
    key = _cache_key(record)
    record["cache_file"] = str(path)
    if use_cache:
        cached = _read_cache(path).get(key)
        if _valid_entry(cached):
            fields = _measurement_fields(cached)
            return {**record, **fields, "source": "cache", "native_bf16": _bf16_pays_off(fields)}
    measured = {**_measure_bf16_speedup(), "bf16_step_error": round(bf16_training_error(), 5)}
    record = {
        **record,
        **_measurement_fields(measured),
        "source": "measured",
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "native_bf16": _bf16_pays_off(measured),
    }
    _write_cache(path, key, record)
    return record


def _env_override() -> bool | None:
    value = os.environ.get(CPU_BF16_ENV, "").strip()
    if value == "":
        return None
    if value in ("1", "0"):
        return value == "1"
    raise ValueError(
        f"{CPU_BF16_ENV}: expected 1 (bf16 autocast on CPU) or 0 (fp32) or unset (measure), found {value!r}"
    )


def _machine_record(threads: int) -> dict[str, Any]:
    flags = _cpu_flags()
    return {
        "native_bf16": False,
        "source": "",
        "speedup": None,
        "fp32_ms": None,
        "bf16_ms": None,
        "calibration_ms": None,
        "threshold": BF16_MIN_SPEEDUP,
        "cpu": _cpu_model(),
        "cpu_flags": [f for f in _KEY_FLAGS if f in flags],
        "cpu_capability": _cpu_capability(),
        "torch": torch.__version__,
        "threads": threads,
        "timestamp": None,
        "cache_file": None,
    }


# -- the measurement ------------------------------------------------------------------------------
def _measure_bf16_speedup() -> dict[str, float]:
    """Fastest time of one channels-last Conv3d in fp32 and under bf16 autocast, over interleaved
    calls. Other processes only ever slow a call down, so the fastest is the estimate they disturb
    least (as ``timeit`` advises); a median flipped the decision on a loaded 2-core machine. A local
    generator keeps the global RNG untouched (the measurement must not change seeded runs)."""
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(_CAL_INPUT, generator=gen).contiguous(memory_format=torch.channels_last_3d)
    channels = _CAL_INPUT[1]
    w = (torch.randn(channels, channels, 3, 3, 3, generator=gen) * 0.05).contiguous(
        memory_format=torch.channels_last_3d
    )

    def timed(bf16: bool) -> float:
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            F.conv3d(x, w, padding=1)
        return time.perf_counter() - t

    fp32, bf16 = [], []
    with torch.no_grad():
        timed(False)  # warm-up: oneDNN builds its kernels on the first call
        timed(True)
        for _ in range(_CAL_REPEATS):
            fp32.append(timed(False))
            bf16.append(timed(True))
    t_fp32, t_bf16 = min(fp32), min(bf16)
    return {
        "speedup": round(t_fp32 / t_bf16, 3),
        "fp32_ms": round(1e3 * t_fp32, 3),
        "bf16_ms": round(1e3 * t_bf16, 3),
        "calibration_ms": round(1e3 * (time.perf_counter() - start), 1),
    }


def _bf16_pays_off(measured: dict[str, Any]) -> bool:
    error = measured.get("bf16_step_error", math.inf)
    return measured["speedup"] >= BF16_MIN_SPEEDUP and math.isfinite(error) and error <= BF16_MAX_STEP_ERROR


def bf16_training_error(seed: int = 0) -> float:
    """Largest relative L2 error of a small bf16-autocast training step against fp32 (``inf`` if
    anything is not finite).

    The step is Conv3d (3×3×3) → BatchNorm → ReLU → linear → cross-entropy, forward
    and backward, at batch 2 through ``F.conv3d`` and at batch 1 through oneDNN's convolution (the
    two kernels the trainer's convolutions reach), each in NCDHW and channels-last layout. The
    error is taken over the loss and every gradient (input, conv, BN and linear weights).
    """
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for batch, onednn in ((2, False), (1, True)):
        x = torch.randn(batch, 16, 4, 12, 12, generator=gen) * 40  # un-normalised pixels (Caffe-style mean only)
        params = [
            torch.randn(16, 16, 3, 3, 3, generator=gen) * 0.05,
            torch.ones(16),
            torch.zeros(16),
            torch.randn(5, 16 * 4 * 12 * 12, generator=gen) * 0.01,
        ]
        labels = torch.arange(batch) % 5
        for channels_last in (False, True):
            reference = _training_step(x, params, labels, None, channels_last, onednn)
            result = _training_step(x, params, labels, torch.bfloat16, channels_last, onednn)
            for ref, got in zip(reference, result):
                if not bool(torch.isfinite(got).all()):
                    return math.inf
                worst = max(worst, float((got - ref).norm() / ref.norm().clamp_min(1e-12)))
    return worst


def _training_step(
    x: torch.Tensor,
    params: list[torch.Tensor],
    labels: torch.Tensor,
    dtype: torch.dtype | None,
    channels_last: bool,
    onednn: bool,
) -> list[torch.Tensor]:
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    x = x.clone().contiguous(memory_format=fmt).requires_grad_(True)
    weight, gamma, beta, fc = (p.clone().requires_grad_(True) for p in params)
    w = weight.contiguous(memory_format=fmt) if weight.dim() == 5 else weight
    with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        if onednn and torch.backends.mkldnn.is_available():
            xin, win = (x.to(dtype), w.to(dtype)) if dtype is not None else (x, w)
            y = torch.ops.aten.mkldnn_convolution(xin, win, None, [1, 1, 1], [1, 1, 1], [1, 1, 1], 1)
        else:
            y = F.conv3d(x, w, padding=1)
        y = F.relu(F.batch_norm(y, None, None, gamma, beta, training=True))
        logits = F.linear(y.flatten(1), fc)  # not a mean pool: its uniform gradient cancels in BN's backward
    loss = F.cross_entropy(logits.float(), labels)
    loss.backward()
    return [loss.detach()] + [t.grad.float() for t in (x, weight, gamma, beta, fc)]


def _measurement_fields(entry: dict[str, Any]) -> dict[str, Any]:
    out = {
        k: float(entry[k])
        for k in ("speedup", "fp32_ms", "bf16_ms", "calibration_ms", "bf16_step_error")
        if isinstance(entry.get(k), (int, float))
    }
    if isinstance(entry.get("timestamp"), str):
        out["timestamp"] = entry["timestamp"]
    return out


# -- the cache ------------------------------------------------------------------------------------
def _cache_dir() -> Path:
    """``$VIDNETS_CACHE_DIR``, else ``$VIDNETS_CACHE``, else ``$XDG_CACHE_HOME/vidnets``, else
    ``~/.cache/vidnets``."""
    for var in ("VIDNETS_CACHE_DIR", "VIDNETS_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "vidnets"


def _cache_file() -> Path:
    return _cache_dir() / CPU_PRECISION_CACHE_FILE


def _cache_key(record: dict[str, Any]) -> str:
    return (
        f"{record['cpu']} [{' '.join(record['cpu_flags'])}] {record['cpu_capability']} | "
        f"torch {record['torch']} | {record['threads']} threads"
    )


def _read_cache(path: Path) -> dict[str, Any]:
    """The cached entries by key; ``{}`` when the file is missing, unreadable or not ours."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def _valid_entry(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    speedup = entry.get("speedup")
    return (
        isinstance(speedup, (int, float)) and not isinstance(speedup, bool) and math.isfinite(speedup) and speedup > 0
    )


def _write_cache(path: Path, key: str, record: dict[str, Any]) -> None:
    """Add ``record`` under ``key`` (keeping the newest entries); a failure only loses the cache."""
    entries = {k: v for k, v in _read_cache(path).items() if _valid_entry(v)}
    entries[key] = {k: v for k, v in record.items() if k not in ("source", "cache_file")}
    newest = sorted(entries, key=lambda k: str(entries[k].get("timestamp", "")), reverse=True)
    entries = {k: entries[k] for k in newest[:_CACHE_MAX_ENTRIES]}
    with contextlib.suppress(OSError):
        atomic_write_json(path, {"format": _CACHE_FORMAT, "entries": entries})


# -- what the CPU is ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:  # not Linux
        return ""


def _cpuinfo_field(name: str) -> str:
    for line in _cpuinfo().splitlines():
        field, _, value = line.partition(":")
        if field.strip() == name:
            return value.strip()
    return ""


def _cpu_flags() -> frozenset[str]:
    return frozenset(_cpuinfo_field("flags").split())


def _cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine() or "unknown CPU"


def _cpu_capability() -> str:
    try:
        return torch.backends.cpu.get_cpu_capability()  # e.g. "AVX512", "AVX2"
    except Exception:  # older torch builds
        return ""
