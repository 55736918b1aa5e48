"""Helpers every benchmark shares: timing, machine facts, Markdown output, subprocess runs.

A benchmark script looks like::

    from benchmarks import common

    def main(argv=None) -> int:
        parser = common.make_parser("What this measures.")
        args = parser.parse_args(argv)
        common.setup_threads(args.threads)
        stats = common.time_alternating({"ours": f, "baseline": g}, warmup=1, repeats=5)
        rows = [[name, common.fmt_stats(common.per_second(s, items=8))] for name, s in stats.items()]
        body = common.markdown_table(["variant", "clips/s"], rows)
        common.publish("mybench", "My benchmark", body, args, argv)
        return 0

Numbers are medians with min–max over ``repeats`` timed calls. ``time_alternating`` runs the
variants round-robin (a, b, a, b, …) so that drift on a shared machine (thermal, other
processes) hits every variant alike and the ratios stay fair.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

__all__ = [
    "RESULTS_DIR",
    "REPO_ROOT",
    "Stats",
    "time_call",
    "time_alternating",
    "per_second",
    "fmt_stats",
    "fmt_num",
    "ratio",
    "markdown_table",
    "machine_info",
    "machine_markdown",
    "command_string",
    "write_result",
    "publish",
    "make_parser",
    "setup_threads",
    "selected",
    "peak_rss_mib",
    "run_json_subprocess",
    "find_tcmalloc",
    "emit_json",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
JSON_MARK = "@@BENCH_JSON@@"  # prefix of the result line a child process prints


# -- timing ---------------------------------------------------------------------------------
@dataclass
class Stats:
    """Repeated measurements of one quantity (seconds per call, or a rate after ``per_second``)."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def min(self) -> float:
        return min(self.samples) if self.samples else float("nan")

    @property
    def max(self) -> float:
        return max(self.samples) if self.samples else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"median": self.median, "min": self.min, "max": self.max, "samples": list(self.samples)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Stats":
        return cls(list(d["samples"]))


def _sync(device: Any = None) -> None:
    """Wait for queued GPU work so that wall-clock timing covers it (no-op on CPU)."""
    if device is None:
        return
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_call(fn: Callable[[], Any], *, warmup: int = 1, repeats: int = 5, device: Any = None) -> Stats:
    """Seconds per call of ``fn``: ``warmup`` untimed calls, then ``repeats`` timed ones."""
    return time_alternating({"_": fn}, warmup=warmup, repeats=repeats, device=device)["_"]


def time_alternating(
    fns: Mapping[str, Callable[[], Any]], *, warmup: int = 1, repeats: int = 5, device: Any = None
) -> dict[str, Stats]:
    """Seconds per call of each function, timed round-robin so drift affects all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    out = {name: Stats() for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            _sync(device)
            out[name].samples.append(time.perf_counter() - t0)
    return out


def per_second(seconds: Stats, items: float = 1.0) -> Stats:
    """Convert seconds-per-call into items-per-second (e.g. clips/s with ``items=batch``)."""
    return Stats([items / s for s in seconds.samples if s > 0])


def fmt_num(x: float, digits: int = 3) -> str:
    """``digits`` significant digits, no exponent for everyday magnitudes."""
    if x != x:  # NaN
        return "–"
    if x == 0:
        return "0"
    mag = abs(x)
    decimals = max(0, digits - 1 - int(f"{mag:e}".split("e")[1]))
    return f"{x:,.{decimals}f}"


def fmt_stats(s: Stats, digits: int = 3) -> str:
    """``median (min–max)``."""
    if not s.samples:
        return "–"
    if len(s.samples) == 1:
        return fmt_num(s.median, digits)
    return f"{fmt_num(s.median, digits)} ({fmt_num(s.min, digits)}–{fmt_num(s.max, digits)})"


def ratio(a: Stats | float, b: Stats | float) -> float:
    """Ratio of medians ``a / b`` (NaN when either is missing)."""
    av = a.median if isinstance(a, Stats) else a
    bv = b.median if isinstance(b, Stats) else b
    if not bv or av != av or bv != bv:
        return float("nan")
    return av / bv


# -- Markdown -------------------------------------------------------------------------------
def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub Markdown table; ``align`` is one letter per column (``l``/``r``/``c``), default
    left for the first column and right for the others."""
    headers = [str(h) for h in headers]
    align = align or ("l" + "r" * (len(headers) - 1))
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    for row in rows:
        cells = [str(c).replace("|", "\\|") for c in row]
        if len(cells) != len(headers):
            raise ValueError(f"markdown_table: row {cells} has {len(cells)} cells, expected {len(headers)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- machine and versions -------------------------------------------------------------------
def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _cpu_model() -> str:
    m = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.M)
    return m.group(1).strip() if m else (platform.processor() or platform.machine())


def _cpu_flags() -> set[str]:
    m = re.search(r"^flags\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.M)
    return set(m.group(1).split()) if m else set()


def _mem_gib() -> float:
    m = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    return int(m.group(1)) / 2**20 if m else float("nan")


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:
        return None
    return getattr(mod, "__version__", "?")


def machine_info() -> dict[str, Any]:
    """CPU, memory, threads, allocator and library versions of this process."""
    import torch

    flags = _cpu_flags()
    onednn = re.search(r"(?:oneDNN|MKL-DNN)\s+v([\d.]+)", torch.__config__.show())
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "cpu_isa": torch.backends.cpu.get_cpu_capability(),
        "bf16_isa": "avx512_bf16" in flags or "amx_bf16" in flags,
        **_bf16_calibration(),
        "amx": "amx_tile" in flags,
        "memory_gib": round(_mem_gib(), 1),
        "torch_threads": torch.get_num_threads(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onednn": onednn.group(1) if onednn else None,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "allocator": _allocator(),
    }
    for module in ("torchvision", "numpy", "av", "cv2"):
        v = _version(module)
        if v is not None:
            info[module] = v
    return info


def _bf16_calibration() -> dict[str, Any]:
    """What ``precision="auto"`` picks on this CPU and the measured bf16/fp32 speed behind it
    (measured afresh, so the benchmark never reports a stale cached decision)."""
    try:
        from vidnets.utils.device import cpu_bf16_calibration
    except ImportError:  # an old vidnets in a benchmark-only environment
        return {}
    record = cpu_bf16_calibration(refresh=True)
    return {
        "auto_bf16": record["native_bf16"],
        "bf16_speedup": record.get("speedup"),
        "bf16_decision": record.get("source"),
    }


def _allocator() -> str:
    preload = os.environ.get("LD_PRELOAD", "")
    if "tcmalloc" in preload:
        return "tcmalloc (LD_PRELOAD)"
    if "jemalloc" in preload:
        return "jemalloc (LD_PRELOAD)"
    return "glibc malloc"


def machine_markdown(info: Mapping[str, Any] | None = None) -> str:
    """One paragraph naming the machine and versions, for the top of a result section."""
    i = dict(info or machine_info())
    cpu = f"{i['cpu']}, {i['logical_cpus']} logical CPUs ({i['cpu_isa']}"
    cpu += ", AVX-512 BF16" if i.get("bf16_isa") else ", no bf16 instructions"
    cpu += ", AMX" if i.get("amx") else ""
    if i.get("bf16_speedup") is not None:
        cpu += f"; bf16 Conv3d {i['bf16_speedup']:.2f}× fp32 as measured at start-up"
    if "auto_bf16" in i:
        cpu += f", so precision auto = {'bf16' if i['auto_bf16'] else 'fp32'}"
    cpu += ")"
    libs = [f"torch {i['torch']}"]
    if i.get("onednn"):
        libs.append(f"oneDNN {i['onednn']}")
    libs += [f"{k} {i[k]}" for k in ("torchvision", "numpy", "av", "cv2") if i.get(k)]
    parts = [
        f"**Machine:** {cpu}, {i['memory_gib']} GiB RAM" + (f", GPU {i['cuda']}" if i.get("cuda") else ""),
        f"{i['os']}, Python {i['python']}",
        f"{i['torch_threads']} torch threads, {i['allocator']}",
        "; ".join(libs),
    ]
    return " · ".join(parts)


def command_string(module: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces this run, e.g. ``python -m benchmarks.models --quick``."""
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python -m", module, *args]).strip()


def write_result(
    name: str,
    title: str,
    body: str,
    *,
    argv: Sequence[str] | None = None,
    module: str | None = None,
    info: Mapping[str, Any] | None = None,
    results_dir: str | os.PathLike | None = None,
) -> Path:
    """Write ``results/<name>.md`` atomically: heading, machine, command, then ``body``."""
    from vidnets.utils.io import atomic_write_text

    module = module or f"benchmarks.{name}"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = (
        f"## {title}\n\n{machine_markdown(info)}\n\n"
        f"**Command:** `{command_string(module, argv)}` ({stamp})\n\n{body.strip()}\n"
    )
    path = Path(results_dir or RESULTS_DIR) / f"{name}.md"
    atomic_write_text(path, text)
    return path


def publish(
    name: str,
    title: str,
    body: str,
    args: argparse.Namespace,
    argv: Sequence[str] | None = None,
    info: Mapping[str, Any] | None = None,
) -> None:
    """Print ``body`` and, unless ``--no-write``, write it as ``results/<name>.md`` (every benchmark's last
    step; ``--result-name`` writes another file, e.g. a partial run beside the full one). ``info``:
    the machine as :func:`machine_info` read it when the run began (default: read now)."""
    print(body)
    if not args.no_write:
        result = getattr(args, "result_name", None) or name
        print(f"wrote {write_result(result, title, body, argv=argv, module=f'benchmarks.{name}', info=info)}")


# -- command line ---------------------------------------------------------------------------
def make_parser(description: str) -> argparse.ArgumentParser:
    """A parser with the options every benchmark shares: ``--quick``, ``--only``, ``--threads``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny sizes and few repeats: seconds, not minutes")
    p.add_argument("--only", default="", help="comma-separated names or globs (res3d*); run only the cases they match")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    p.add_argument("--no-write", action="store_true", help="print only; do not write benchmarks/results/")
    p.add_argument(
        "--result-name",
        default="",
        help="write benchmarks/results/<NAME>.md instead of the "
        "benchmark's own file (a partial run kept beside the full one)",
    )
    return p


def setup_threads(threads: int) -> None:
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def selected(name: str, only: str | Sequence[str] | None) -> bool:
    """True when ``only`` is empty or ``name`` matches one of its comma-separated patterns:
    an exact name (``res3d18`` does not select ``res3d18_simplified``) or a glob (``res3d*``)."""
    if not only:
        return True
    keys = [k.strip() for k in (only.split(",") if isinstance(only, str) else only) if k.strip()]
    return not keys or any(fnmatch.fnmatchcase(name, k) for k in keys)


# -- memory and subprocesses ------------------------------------------------------------------
def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (``VmHWM``; ru_maxrss as fallback)."""
    m = re.search(r"^VmHWM:\s*(\d+) kB", _read("/proc/self/status"), re.M)
    if m:
        return int(m.group(1)) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def emit_json(obj: Any) -> None:
    """Print a result for :func:`run_json_subprocess` to pick up from the child's stdout."""
    print(JSON_MARK + json.dumps(obj), flush=True)


def run_json_subprocess(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    python: str | None = None,
) -> Any:
    """Run ``python <args>`` in a fresh process and return the object it passed to :func:`emit_json`.

    A fresh process gives a clean peak-RSS reading and lets ``LD_PRELOAD`` swap the allocator.
    Raises ``RuntimeError`` with the child's stderr tail when it fails or prints no result.
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("PYTHONPATH", str(REPO_ROOT))
    cmd = [python or sys.executable, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=REPO_ROOT)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(JSON_MARK):
            return json.loads(line[len(JSON_MARK) :])
    tail = (proc.stderr or proc.stdout)[-2000:]
    raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode} without a result:\n{tail}")


_TCMALLOC_NAMES = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4", "libtcmalloc_minimal.so", "libtcmalloc.so")
_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib")


def find_tcmalloc() -> str | None:
    """Path of an installed tcmalloc (Debian: ``apt-get install libtcmalloc-minimal4``), else None."""
    for d in _LIB_DIRS:
        for n in _TCMALLOC_NAMES:
            p = Path(d) / n
            if p.exists():
                return str(p)
    return None
