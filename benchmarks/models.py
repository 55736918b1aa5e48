"""Every vidnets model: eval and training throughput, share of this machine's peak, peak memory.

    python -m benchmarks.models [--quick] [--only res3d18,c3d] [--compile c3d,res3d18] [--no-memory]

Inputs are each model's default (``model_info(name).default_input``) at batch 8, except the
huge ones: batch 2 for DenseNet3D at 32×224² and batch 1 for T3D at 32×224² (over 60 GMACs a
clip); ``--quick`` halves frames and side where the model accepts it, at batch 1. Every model gets
the three settings below in eval and training (``--default-only``: just ``fp32 NCDHW`` against the
vidnets default, for a shorter run); the key models (``res3d18``, ``c3d``) also get
``torch.compile`` and peak memory at batch 1 and 8. The full run takes about half an hour on 2 cores.

Settings, timed round-robin in one process for each model:

* ``fp32 NCDHW`` — PyTorch's and most toolkits' default: fp32, contiguous NCDHW, BN unfused.
* ``fp32 fast`` — channels-last 3D, oneDNN 3D convolutions at every batch size, and for eval
  Conv+BN folding, weights packed once for oneDNN and ReLUs (and residual sums) fused into the
  convolutions; still fp32.
* ``bf16 fast`` — the above plus bf16 autocast: the vidnets default where bf16 pays off (CUDA,
  and CPUs where it measured faster than fp32 at start-up; ``precision="auto"`` in
  ``vidnets.engine.fastpath``), else ``fp32 fast`` is the default. The report names which one applies.
* ``bf16 fast + compile`` (eval, models named by ``--compile``) — ``torch.compile`` with
  inductor freezing; the cold compile time is reported.

* ``fp32 fast before fusion``, ``bf16 fast before fusion`` (eval, key models; ``--profile`` adds
  their top operators) — the fast path with ``prepare_for_inference(fuse=False)``: weights reordered by oneDNN on every call, ReLUs and
  (bf16) max-pools unfused, as the fast path was before packing and fusion; the before/after pair.

Achieved GFLOP/s counts 2 FLOPs per multiply-add of convolutions and matmuls
(``vidnets.models.complexity``); a training step counts 3× the forward FLOPs (forward plus the
two backward products). The peak per precision is the best of a large matmul and single
3×3×3 Conv3d layers of a 3D ResNet in that precision and layout, each on the fast path's kernel
(``PackedConv3d``: weights reordered once, as the models' are), measured at the start. Because this machine is shared,
the kernel that gave each precision's peak is timed again inside every model's round-robin
(repeated to last about as long as one call of the model), and the share of peak is the median over rounds of (model GFLOP/s ÷ peak-kernel GFLOP/s) in the same
round, so that load from other processes divides out. Peak RSS comes from a fresh
subprocess per configuration (``VmHWM``: the whole process, Python and torch included).
The allocator comparison reruns one model in subprocesses with and without tcmalloc preloaded.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from benchmarks import common

NAME = "models"
SETTINGS_ALL = ("fp32 NCDHW", "fp32 fast", "bf16 fast")
KEY_MODELS = ("res3d18", "c3d")  # also compile, and memory at batch 1 and 8
DEFAULT_COMPILE = KEY_MODELS
ALLOCATOR_MODEL = "res3d18"
MEMORY_LIMIT_MIB = 4096  # the C3D batch-8 training target


# -- models -------------------------------------------------------------------------------------
def load_all_models() -> list[str]:
    """Import every module of ``vidnets.models`` so all builders register; return their names."""
    import vidnets.models as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        try:
            importlib.import_module(f"vidnets.models.{mod.name}")
        except Exception as e:  # a broken family must not hide the others
            print(f"warning: vidnets.models.{mod.name} failed to import: {e}", file=sys.stderr)
    return pkg.list_models()


def batch_for(gmacs_per_clip: float, input_elements: int, quick: bool) -> int:
    """Batch 8 for ordinary clip models; fewer for huge ones (DenseNet3D/T3D at 32×224²) so that a
    training step stays within seconds and a few GiB on a 2-core CPU."""
    if quick:
        return 1
    if gmacs_per_clip <= 45 and input_elements <= 3 * 16 * 160 * 160:
        return 8
    return 2 if gmacs_per_clip <= 60 else 1


def bench_input(model: nn.Module, default: tuple[int, ...], quick: bool) -> tuple[int, ...]:
    """The model's default input; in ``--quick`` mode half the frames and half the side where the
    model accepts that (checked on the meta device), else the default."""
    from vidnets.models import complexity

    if not quick:
        return tuple(default)
    shrunk = list(default)
    for i in range(1, len(shrunk)):
        shrunk[i] = max(1, shrunk[i] // 2)
    try:
        complexity(model, tuple(shrunk))
        return tuple(shrunk)
    except Exception:  # e.g. C3D's fc6 needs 16×112²
        return tuple(default)


def default_setting(device: torch.device) -> str:
    """The vidnets default on ``device``: ``bf16 fast`` where ``precision="auto"`` picks bf16."""
    from vidnets.engine.fastpath import resolve_precision

    return "bf16 fast" if resolve_precision(device, "auto") is not None else "fp32 fast"


# -- runners (shared with benchmarks.vs_torchvision) -----------------------------------------------
def eval_runner(
    model: nn.Module, x: torch.Tensor, setting: str, *, compile: bool = False, fuse: bool = True
) -> tuple[Callable[[], Any], dict]:
    """A no-argument callable running one inference batch in ``setting``, and facts about it
    (``folded`` pairs, ``compile_s``)."""
    from vidnets.engine.fastpath import prepare_for_inference

    if setting == "fp32 NCDHW":
        model.eval()

        def run():
            with torch.inference_mode():
                return model(x)

        return run, {"folded": 0}
    precision = {"fp32 fast": "fp32", "bf16 fast": "bf16"}[setting]
    fast = prepare_for_inference(
        model, precision=precision, compile=compile, fuse=fuse, example_input=x if compile else None
    )
    return (lambda: fast(x)), {"folded": len(fast.folded), "compile_s": fast.compile_seconds, "fast": fast}


def train_runner(model: nn.Module, x: torch.Tensor, setting: str) -> Callable[[], Any]:
    """A no-argument callable running one SGD step (forward, cross-entropy, backward, update)."""
    import copy

    from vidnets.engine.fastpath import prepare_model, to_channels_last, training_context

    model = copy.deepcopy(model).train()
    fast = setting != "fp32 NCDHW"
    dtype = torch.bfloat16 if setting.startswith("bf16") else None
    device = x.device
    if fast:
        prepare_model(model, device)
        x = to_channels_last(x)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    with torch.no_grad():
        n_classes = model(x[:1]).shape[-1]
    y = torch.randint(0, n_classes, (x.shape[0],), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        with training_context(device, dtype):
            loss = nn.functional.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()

    return step


# -- peak --------------------------------------------------------------------------------------
# 3×3×3 layers of a 3D ResNet at batch 8, 8×112² input: conv2_x (64 ch on 8×56²), conv3_x (128 ch
# on 4×28²), conv4_x (256 ch on 2×14²), and 512 ch on 2×14². Quick mode: batch 2.
PEAK_CONVS = {
    "conv 64ch": (64, 8, 56),
    "conv 128ch": (128, 4, 28),
    "conv 256ch": (256, 2, 14),
    "conv 512ch": (512, 2, 14),
}
SHARE_TARGET = 0.85  # of the measured peak of the precision in use, c3d and res3d18 eval at batch 8


def peak_kernels(quick: bool, device: torch.device) -> dict[str, dict[str, tuple[Callable[[], Any], float]]]:
    """``{precision: {kernel: (call, FLOPs)}}``: a 2048² matmul and single Conv3d layers (NCDHW and
    channels-last) in fp32 and bf16."""
    from vidnets.engine.fastpath import PackedConv3d

    n = 2048
    batch = 2 if quick else 8
    out: dict[str, dict[str, tuple[Callable[[], Any], float]]] = {}
    for dtype, label in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        kernels: dict[str, tuple[Callable[[], Any], float]] = {"matmul": ((lambda a, b: lambda: a @ b)(a, b), 2 * n**3)}
        for name, (ch, t, side) in PEAK_CONVS.items():
            for layout, fmt in (("NCDHW", torch.contiguous_format), ("CL", torch.channels_last_3d)):
                conv = nn.Conv3d(ch, ch, 3, padding=1, bias=False).to(device=device, dtype=dtype).eval()
                conv.to(memory_format=fmt).requires_grad_(False)
                conv.__class__ = PackedConv3d  # the fast path's kernel: weights reordered once, not per call
                x = torch.randn(batch, ch, t, side, side, device=device, dtype=dtype).contiguous(memory_format=fmt)
                # outputs × (in-channels × 3³) multiply-adds
                kernels[f"{name} {layout}"] = ((lambda c, v: lambda: c(v))(conv, x), 2 * x.numel() * ch * 27)
        out[label] = kernels
    return out


def measure_peak(kernels, quick: bool, device: torch.device) -> dict[str, dict[str, common.Stats]]:
    """GFLOP/s of every peak kernel; the peak of a precision is the best of them."""
    out: dict[str, dict[str, common.Stats]] = {}
    for label, ks in kernels.items():
        with torch.inference_mode():
            secs = common.time_alternating(
                {k: fn for k, (fn, _) in ks.items()}, warmup=2, repeats=2 if quick else 7, device=device
            )
        out[label] = {k: common.per_second(s, ks[k][1] / 1e9) for k, s in secs.items()}
    return out


def peak_probes(kernels, peak) -> dict[str, tuple[Callable[[], Any], float]]:
    """Per precision, the kernel that gave its peak: ``{precision: (call, FLOPs)}``, timed again in
    every model's rounds."""
    probes = {}
    for label, stats in peak.items():
        best = max(stats, key=lambda k: stats[k].median)
        fn, flops = kernels[label][best]
        probes[label] = ((lambda f: lambda: _no_grad(f))(fn), flops)
    return probes


def _matched_probes(
    probes: dict[str, tuple[Callable[[], Any], float]], target_s: float
) -> dict[str, tuple[Callable[[], Any], float]]:
    """Each probe repeated so that one call lasts about ``target_s`` (a model's call): a burst of
    other load then hits the probe and the model of a round alike."""
    out = {}
    for precision, (fn, flops) in probes.items():
        t0 = time.perf_counter()
        fn()
        reps = max(1, round(target_s / max(time.perf_counter() - t0, 1e-6)))
        out[precision] = ((lambda f, n: lambda: [f() for _ in range(n)])(fn, reps), flops * reps)
    return out


def profile_ops(fn: Callable[[], Any], calls: int = 2, top: int = 5) -> list[tuple[str, float]]:
    """The ``top`` operators by self CPU time over ``calls`` calls of ``fn`` (torch.profiler), with
    their share of the total."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            fn()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    ranked = sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]
    return [(e.key, e.self_cpu_time_total / total) for e in ranked]


def _no_grad(fn: Callable[[], Any]) -> Any:
    with torch.inference_mode():
        return fn()


# -- one model ---------------------------------------------------------------------------------
@dataclass
class ModelResult:
    name: str
    shape: tuple[int, ...]
    batch: int
    gmacs: float
    params: int
    folded: int
    eval: dict[str, common.Stats]
    train: dict[str, common.Stats]
    compile_s: float | None = None
    parity: str = "–"
    error: str | None = None
    # "mode/setting" → per-round share of the peak of its precision; precision → peak GFLOP/s in these rounds
    share: dict[str, common.Stats] = field(default_factory=dict)
    peak: dict[str, common.Stats] = field(default_factory=dict)
    ops: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # setting → top operators


def bench_model(
    name: str,
    *,
    quick: bool,
    compile: bool,
    budget_s: float,
    device: torch.device,
    settings: tuple[str, ...],
    probes: dict[str, tuple[Callable[[], Any], float]] | None = None,
    before: bool = False,
    profile: bool = False,
) -> ModelResult:
    import math

    from vidnets.models import complexity, create, model_info

    torch.manual_seed(0)
    model = create(name).to(device)
    shape = bench_input(model, model_info(name).default_input, quick)
    cx = complexity(model, shape)
    batch = batch_for(cx.gmacs, math.prod(shape), quick)
    x = torch.randn(batch, *shape, device=device)
    res = ModelResult(name, shape, batch, cx.gmacs, cx.params, 0, {}, {})
    fns: dict[str, Callable[[], Any]] = {}
    for s in settings:
        fn, facts = eval_runner(model, x, s)
        fns[f"eval/{s}"] = fn
        res.folded = max(res.folded, facts["folded"])
        if s != "fp32 NCDHW":  # the last fast setting (bf16 where present) is the one reported
            from vidnets.engine.fastpath import parity_check

            report = parity_check(model, facts["fast"], x)
            res.parity = (
                f"{report.precision}: {'OK' if report.ok else 'MISMATCH'} {report.rel_error:.1e}, "
                f"top-1 {report.top1_agreement:.0%}"
            )
    fast_settings = [f"{p} fast" for p in ("fp32", "bf16") if f"{p} fast" in settings]
    if before:
        for setting in fast_settings:
            fns[f"eval/{setting} before fusion"] = eval_runner(model, x, setting, fuse=False)[0]
    if compile:
        fn, facts = eval_runner(model, x, "bf16 fast", compile=True)
        fns["eval/bf16 fast + compile"] = fn
        res.compile_s = facts["compile_s"]
    for s in settings:
        fns[f"train/{s}"] = train_runner(model, x, s)
    # One untimed call each (warm-up) doubles as the cost estimate that sets the repeats.
    warm = {}
    for key, fn in fns.items():
        t0 = time.perf_counter()
        fn()
        warm[key] = time.perf_counter() - t0
    once = sum(warm.values())
    probes = _matched_probes(probes or {}, warm.get(f"eval/{default_setting(device)}", 0.0))
    for precision, (fn, _) in probes.items():
        fns[f"peak/{precision}"] = fn
    repeats = max(1 if quick else 3, min(7, int(budget_s / max(once, 1e-3))))
    secs = common.time_alternating(fns, warmup=0, repeats=repeats, device=device)
    for key, s in secs.items():
        mode, setting = key.split("/", 1)
        if mode != "peak":
            getattr(res, mode)[setting] = common.per_second(s, batch)
    if profile:
        res.ops = {
            s: profile_ops(fns[f"eval/{s}"])
            for setting in fast_settings
            for s in (f"{setting} before fusion", setting)
            if f"eval/{s}" in fns
        }
    for precision, (_, flops) in probes.items():
        res.peak[precision] = common.per_second(secs[f"peak/{precision}"], flops / 1e9)
    for key, s in secs.items():
        mode, setting = key.split("/", 1)
        if mode != "peak" and _precision(setting) in res.peak:
            factor = 3 if mode == "train" else 1
            model_gflops = [batch * cx.gmacs * 2 * factor / t for t in s.samples]
            res.share[key] = common.Stats([g / p for g, p in zip(model_gflops, res.peak[_precision(setting)].samples)])
    return res


# -- subprocess children -------------------------------------------------------------------------
def child(args: argparse.Namespace) -> int:
    """``--child memory|speed``: one configuration in a fresh process; prints a JSON result."""
    load_all_models()
    from vidnets.models import create, model_info

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = create(args.model).to(device)
    shape = tuple(int(v) for v in args.shape.split("x")) if args.shape else tuple(model_info(args.model).default_input)
    x = torch.randn(args.batch, *shape, device=device)
    fn = train_runner(model, x, args.setting) if args.mode == "train" else eval_runner(model, x, args.setting)[0]
    del model
    if args.child == "memory":
        fn()
        fn()
        common.emit_json({"peak_rss_mib": common.peak_rss_mib()})
    else:
        stats = common.time_call(fn, warmup=1, repeats=args.repeats, device=device)
        common.emit_json({"clips_per_s": common.per_second(stats, args.batch).to_dict()})
    return 0


def _child_args(
    model: str, mode: str, setting: str, batch: int, device: torch.device, shape: tuple[int, ...]
) -> list[str]:
    return [
        "-m",
        f"benchmarks.{NAME}",
        "--child",
        "memory",
        "--model",
        model,
        "--mode",
        mode,
        "--setting",
        setting,
        "--batch",
        str(batch),
        "--device",
        str(device),
        "--shape",
        "x".join(map(str, shape)),
    ]


def measure_memory(
    configs: list[tuple[str, str, str, int]], shapes: dict[str, tuple[int, ...]], device: torch.device
) -> list[tuple[tuple, Any]]:
    out = []
    for model, mode, setting, batch in configs:
        try:
            args = _child_args(model, mode, setting, batch, device, shapes[model])
            r = common.run_json_subprocess(args, timeout=900)
            out.append(((model, mode, setting, batch), r["peak_rss_mib"]))
        except Exception as e:
            out.append(((model, mode, setting, batch), f"error: {str(e).splitlines()[0][:80]}"))
    return out


def measure_allocator(
    model: str, batch: int, shape: tuple[int, ...], quick: bool, device: torch.device, setting: str
) -> dict[str, dict[str, common.Stats]] | str:
    """Clips/s of ``model`` with glibc malloc vs preloaded tcmalloc, subprocesses alternated."""
    lib = common.find_tcmalloc()
    if lib is None:
        return "tcmalloc not installed (Debian/Ubuntu: `apt-get install -y libtcmalloc-minimal4`)"
    rounds = 1 if quick else 2
    repeats = 1 if quick else 3
    out: dict[str, dict[str, common.Stats]] = {}
    for mode in ("train",) if quick else ("train", "eval"):
        for alloc in ("glibc malloc", "tcmalloc"):
            out.setdefault(f"{mode}/{alloc}", {})
        for _ in range(rounds):
            for alloc in ("glibc malloc", "tcmalloc"):
                args = _child_args(model, mode, setting, batch, device, shape)
                args[args.index("memory")] = "speed"
                env = {"LD_PRELOAD": lib} if alloc == "tcmalloc" else {"LD_PRELOAD": ""}
                r = common.run_json_subprocess([*args, "--repeats", str(repeats)], env=env, timeout=900)
                stats = out[f"{mode}/{alloc}"].setdefault("clips/s", common.Stats())
                stats.samples.extend(r["clips_per_s"]["samples"])
    return out


# -- report ------------------------------------------------------------------------------------
def _precision(setting: str) -> str:
    return "bf16" if setting.startswith("bf16") else "fp32"


def render(peak, results: list[ModelResult], memory, allocator, quick: bool, device: torch.device) -> str:
    peaks = {p: max(s.median for s in d.values()) for p, d in peak.items()}
    lines = ["### Peak of this machine (GFLOP/s, median (min–max), measured at the start; CL = channels-last 3D)", ""]
    kinds = list(next(iter(peak.values())))
    rows = [[p, *(common.fmt_stats(d[k]) for k in kinds), common.fmt_num(peaks[p])] for p, d in peak.items()]
    lines += [common.markdown_table(["precision", *kinds, "peak"], rows), ""]
    lines += ["### Models and inputs", ""]
    rows = [
        [
            r.name,
            "×".join(map(str, r.shape)) or "–",
            r.batch,
            common.fmt_num(r.gmacs),
            f"{r.params / 1e6:.1f}",
            r.folded,
            r.parity,
            r.error or "",
        ]
        for r in results
    ]
    lines += [
        common.markdown_table(
            [
                "model",
                "input",
                "batch",
                "GMACs/clip",
                "params (M)",
                "Conv+BN folded",
                "fast path vs fp32 logits (rel. error, top-1)",
                "error",
            ],
            rows,
        ),
        "",
    ]
    lines += [
        "### Throughput (clips/s, median (min–max); ratios against fp32 NCDHW of the same run)",
        "",
        "`of peak`: median over the timed rounds of this setting's GFLOP/s divided by the GFLOP/s its "
        "precision's peak kernel ran at in the same round (min–max over rounds); `peak in these rounds` is "
        "that kernel's median.",
        "",
    ]
    rows = []
    for r in results:
        if r.error:
            continue
        inp = f"{'×'.join(map(str, r.shape))} ×{r.batch}"
        for mode, factor in (("eval", 1), ("train", 3)):
            d = getattr(r, mode)
            base = d.get("fp32 NCDHW")
            for setting, s in d.items():
                gflops = s.median * r.gmacs * 2 * factor
                share = r.share.get(f"{mode}/{setting}")
                frac = (
                    f"{share.median:.0%} ({share.min:.0%}–{share.max:.0%})"
                    if share
                    else f"{gflops / peaks[_precision(setting)]:.0%}"
                )
                probe = r.peak.get(_precision(setting))
                rows.append(
                    [
                        r.name,
                        inp,
                        mode,
                        setting,
                        common.fmt_stats(s),
                        common.fmt_num(gflops),
                        frac,
                        common.fmt_num(probe.median) if probe else "–",
                        f"{common.ratio(s, base):.2f}×",
                    ]
                )
    lines += [
        common.markdown_table(
            [
                "model",
                "input ×batch",
                "mode",
                "setting",
                "clips/s",
                "GFLOP/s",
                "of peak",
                "peak in these rounds",
                "vs fp32 NCDHW",
            ],
            rows,
        ),
        "",
    ]
    compiled = [r for r in results if r.compile_s is not None]
    if compiled:
        lines += [
            "Cold `torch.compile` (inductor, freezing, bf16) time of the first call: "
            + ", ".join(f"{r.name} {r.compile_s:.1f} s" for r in compiled)
            + ".",
            "",
        ]
    targets = _targets(results, default_setting(device))
    if targets:
        lines += ["**Targets:** " + "; ".join(targets) + ".", ""]
    profiled = [r for r in results if r.ops]
    if profiled:
        lines += ["### Where the time goes (torch.profiler, eval, 2 calls; share of self CPU time)", ""]
        rows = [
            [r.name, setting, op, f"{share:.0%}"]
            for r in profiled
            for setting, ops in r.ops.items()
            for op, share in ops
        ]
        lines += [common.markdown_table(["model", "setting", "operator", "share"], rows), ""]
    if memory:
        lines += ["### Peak memory (RSS of a fresh process running two calls, MiB)", ""]
        rows = [[m, mode, s, b, common.fmt_num(v, 4) if isinstance(v, float) else v] for (m, mode, s, b), v in memory]
        lines += [common.markdown_table(["model", "mode", "setting", "batch", "peak RSS MiB"], rows), ""]
        for (m, mode, s, b), v in memory:
            if m == "c3d" and mode == "train" and b == 8 and isinstance(v, float):
                lines += [
                    f"C3D training at batch 8 ({s}): {v:,.0f} MiB peak RSS — "
                    f"{'fits' if v <= MEMORY_LIMIT_MIB else 'does not fit'} in 4 GiB.",
                    "",
                ]
    if allocator is not None:
        lines += [f"### Allocator ({default_setting(device)}, subprocesses alternated; clips/s)", ""]
        if isinstance(allocator, str):
            lines += [allocator, ""]
        else:
            rows = []
            for mode in sorted({k.split("/")[0] for k in allocator}, reverse=True):
                g, t = allocator[f"{mode}/glibc malloc"]["clips/s"], allocator[f"{mode}/tcmalloc"]["clips/s"]
                rows.append([mode, common.fmt_stats(g), common.fmt_stats(t), f"{common.ratio(t, g):.2f}×"])
            lines += [common.markdown_table(["mode", "glibc malloc", "tcmalloc (LD_PRELOAD)", "ratio"], rows), ""]
    lines += [f"The vidnets default here (`precision=\"auto\"`) is **{default_setting(device)}**.", ""]
    if quick:
        lines += ["_Quick mode: tiny batches and few repeats; for a smoke test, not for quoting._"]
    return "\n".join(lines)


def _targets(results: list[ModelResult], default: str) -> list[str]:
    """c3d and res3d18 eval at batch 8 on the fast path, as a share of the peak of its precision:
    both precisions (the calibration behind ``precision="auto"`` decides which one a user gets)."""
    out = []
    for r in results:
        for setting in ("bf16 fast", "fp32 fast"):
            share = r.share.get(f"eval/{setting}")
            if r.name not in KEY_MODELS or r.batch != 8 or not share:
                continue
            before = r.share.get(f"eval/{setting} before fusion")
            was = f", {before.median:.0%} before fusion" if before else ""
            mark = " (the vidnets default here)" if setting == default else ""
            out.append(
                f"{r.name} eval {setting}{mark} at batch 8 at {share.median:.0%} of the measured "
                f"{_precision(setting)} peak{was} (target ≥ {SHARE_TARGET:.0%}: "
                f"{'met' if share.median >= SHARE_TARGET else 'not met'})"
            )
    return out


# -- entry point ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = common.make_parser(__doc__.splitlines()[0])
    p.add_argument(
        "--compile",
        default=None,
        help=f"comma-separated models to also run compiled (default: {','.join(DEFAULT_COMPILE)}; "
        "none in --quick); 'none' disables",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the per-configuration peak-RSS subprocesses")
    p.add_argument("--no-allocator", action="store_true", help="skip the tcmalloc comparison")
    p.add_argument(
        "--profile",
        action="store_true",
        help=f"also profile the eval of {', '.join(KEY_MODELS)} before and after fusion (torch.profiler)",
    )
    p.add_argument("--budget", type=float, default=0.0, help="seconds of timed calls per model (0: automatic)")
    p.add_argument(
        "--default-only",
        action="store_true",
        help=f"only fp32 NCDHW and the vidnets default, except for {', '.join(KEY_MODELS)} "
        "(default: fp32 and bf16 settings for every model)",
    )
    p.add_argument("--device", default="auto")
    # internal: one configuration in a fresh process
    p.add_argument("--child", choices=("memory", "speed"), help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=("eval", "train"), help=argparse.SUPPRESS)
    p.add_argument("--setting", default="bf16 fast", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--repeats", type=int, default=3, help=argparse.SUPPRESS)
    p.add_argument("--shape", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    common.setup_threads(args.threads)
    from vidnets.utils.device import default_device

    if args.child:
        args.device = str(default_device(args.device))
        return child(args)
    device = default_device(args.device)
    # the bf16 calibration is measured afresh here, once: the header and every "vidnets default"
    # below then name the same decision (a second measurement at the end could differ under load)
    info = common.machine_info()
    default = default_setting(device)
    names = [n for n in load_all_models() if common.selected(n, args.only)]
    if not names:
        print(f"no model matches --only {args.only!r}", file=sys.stderr)
        return 2
    if args.compile is None:
        compile_set = set() if args.quick else set(DEFAULT_COMPILE)
    else:
        compile_set = set() if args.compile == "none" else {c.strip() for c in args.compile.split(",")}
    budget = args.budget or (2.0 if args.quick else 15.0)

    print(f"peak ({'quick' if args.quick else 'full'}) …", flush=True)
    load = [os.getloadavg()[0]]
    kernels = peak_kernels(args.quick, device)
    peak = measure_peak(kernels, args.quick, device)
    probes = peak_probes(kernels, peak)
    results: list[ModelResult] = []
    for name in names:
        print(f"{name} …", flush=True)
        try:
            settings = ("fp32 NCDHW", default) if args.default_only and name not in KEY_MODELS else SETTINGS_ALL
            results.append(
                bench_model(
                    name,
                    quick=args.quick,
                    compile=name in compile_set,
                    budget_s=budget,
                    device=device,
                    settings=settings,
                    probes=probes,
                    before=name in KEY_MODELS,
                    profile=args.profile and name in KEY_MODELS,
                )
            )
        except Exception as e:
            results.append(ModelResult(name, (), 0, 0.0, 0, 0, {}, {}, error=f"{type(e).__name__}: {e}"[:120]))
    memory = None
    if not args.no_memory:
        configs = []
        for r in results:
            if r.error:
                continue
            key = r.name in KEY_MODELS and not args.quick
            for b in sorted({1, r.batch}) if key else (r.batch,):
                modes = ("train",) if args.quick else ("eval", "train")
                configs += [(r.name, mode, default, b) for mode in modes]
            if key:
                configs += [(r.name, "train", "fp32 NCDHW", r.batch)]
        print(f"memory: {len(configs)} subprocesses …", flush=True)
        memory = measure_memory(configs, {r.name: r.shape for r in results}, device)
    allocator = None
    alloc_model = ALLOCATOR_MODEL if ALLOCATOR_MODEL in names else (results[0].name if results else None)
    if not args.no_allocator and alloc_model and device.type == "cpu":
        print(f"allocator ({alloc_model}) …", flush=True)
        r = next(r for r in results if r.name == alloc_model)
        try:
            allocator = measure_allocator(alloc_model, r.batch, r.shape, args.quick, device, default)
        except Exception as e:
            allocator = f"allocator comparison failed: {e}"
    load.append(os.getloadavg()[0])
    body = render(peak, results, memory, allocator, args.quick, device)
    body += (
        f"\n\nLoad average (1 min) at start and end: {load[0]:.1f}, {load[1]:.1f} (other processes share "
        f"these {os.cpu_count()} CPUs; the shares of peak divide that load out round by round)."
    )
    title = "Models: throughput, share of peak, memory" + (f" ({', '.join(names)})" if args.only else "")
    common.publish(NAME, title, body, args, argv, info=info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
