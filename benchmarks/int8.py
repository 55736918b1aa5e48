"""int8 post-training quantization against the bf16 fast path: speed of res3d18 and C3D, and accuracy.

    python -m benchmarks.int8 [--quick] [--only 'res3d18*,c3d*'] [--no-accuracy] [--no-speed]

PyTorch's PT2E quantizer lives in torchao from torch 2.10 on (``pip install -e '.[bench]'``);
without it the PT2E rows say so and the rest still runs. onnxruntime is a vidnets dependency.

**Speed.** Each case (model, input, batch) builds every setting from one model (random weights,
random BatchNorm statistics, 101 classes) and times them round-robin in one process:

* ``fp32 fast`` / ``bf16 fast`` — ``prepare_for_inference(model, precision=...)``, the vidnets
  fast path; the machine line names the one ``precision="auto"`` picks on this CPU.
* ``PT2E int8 + inductor`` — ``torch.export`` → ``prepare_pt2e`` with the
  ``X86InductorQuantizer`` default recipe (static, per-channel weights) → calibration →
  ``convert_pt2e`` → ``torch.compile`` with inductor freezing: PyTorch's documented x86 int8
  path. Its quantizer annotates conv1d/conv2d and linear layers only.
* ``PT2E int8, Conv3d annotated`` — the same, with every Conv3d annotated like the quantizer's
  Conv2d (int8 activations in, per-channel int8 weights): whether inductor then runs int8 3D
  convolutions.
* ``onnxruntime int8 QDQ`` — the model exported by ``vidnets export``'s exporter, then ``onnxruntime.quantization.quantize_static`` (QDQ, per-channel int8 weights,
  uint8 activations: the combination onnxruntime recommends on x86), run by vidnets' ONNX runner.

The inputs are clips decoded from ``vidnets synth`` videos (cached under the vidnets cache); the
int8 settings are calibrated on 8 of them (4 batches of 2), the first 1 or 8 are the timed batch.
Each setting's logits are compared with eager fp32 on the timed batch (relative L2 error).
The int8 settings also report how many of the model's conv/linear weights the graph holds in int8,
and for PT2E how many int8 kernels inductor lowered them to. A kernel table times oneDNN's int8
3D convolution (``onednn.qconv_pointwise``) against its bf16 and fp32 ones on two res3d18
layers, to show what the hardware offers below the frameworks.

**Accuracy.** ``vidnets train res3d --profile cpu`` and ``vidnets train c3d --profile cpu`` on
``vidnets synth`` motion data (4 classes × 32 videos of 16 frames at 32², 96 train / 32 test,
chance 25 %; trained once and cached), then the test set scored with the checkpoint's protocol by
eager fp32, the bf16 fast path and the int8 settings (calibrated on 8 training clips): video and
clip top-1, and the share of test videos whose int8 prediction equals fp32's.

The decision rule: int8 becomes an option of ``prepare_for_inference``, ``vidnets export`` and
``vidnets predict``/``serve`` only if an int8 path beats the bf16 fast path by at least 1.3× on
res3d18 and C3D at batch 1 and 8, with at most 1 point of top-1 lost.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Callable

from benchmarks import common

NAME = "int8"
# (case name, model, input C×T×H×W, batch)
CASES = (
    ("res3d18 8x112 b1", "res3d18", (3, 8, 112, 112), 1),
    ("res3d18 8x112 b8", "res3d18", (3, 8, 112, 112), 8),
    ("c3d 16x112 b1", "c3d", (3, 16, 112, 112), 1),
    ("c3d 16x112 b8", "c3d", (3, 16, 112, 112), 8),
)
# recipe → --set values on top of its cpu profile (none: the profiles as they are)
ACCURACY_RECIPES: dict[str, dict] = {"res3d": {}, "c3d": {}}
SPEEDUP_TARGET = 1.3
TOP1_LOSS_LIMIT = 0.01
CALIBRATION_BATCHES = 4  # of 2 clips


# -- the int8 builders ----------------------------------------------------------------------------
def _quiet():
    """torchao and the exporters print and warn at length; keep the report readable."""
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    return stack


def torchao_missing() -> str | None:
    """Why PT2E cannot run here (None when it can)."""
    try:
        with _quiet():
            import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401
    except Exception as e:  # ImportError, or a torchao built for another torch
        return f"torchao does not import ({type(e).__name__}: {str(e)[:80]}); pip install -e '.[bench]'"
    return None


def _x86_quantizer(annotate_conv3d: bool):
    import torch
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq

    class Conv3dToo(xiq.X86InductorQuantizer):
        """The default recipe, plus each Conv3d annotated as the recipe annotates a lone Conv2d."""

        def annotate(self, model):
            model = super().annotate(model)
            for node in model.graph.nodes:
                if node.target == torch.ops.aten.conv3d.default and xiq.QUANT_ANNOTATION_KEY not in node.meta:
                    self._annotate_conv_node_helper(node, True, self.global_config)
            return model

    quantizer = Conv3dToo() if annotate_conv3d else xiq.X86InductorQuantizer()
    return quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())


def pt2e_int8(model, calibration: list, *, annotate_conv3d: bool = False) -> tuple[Callable, dict]:
    """PT2E int8 with the X86InductorQuantizer, compiled by inductor (freezing on): ``(run, facts)``.
    The first call of ``run`` at a new batch size compiles."""
    import torch
    from torch._dynamo.utils import counters
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from vidnets.engine.fastpath import _freezing

    batch = torch.export.Dim("N", min=1)
    with _quiet():
        program = torch.export.export(copy.deepcopy(model).eval(), (calibration[0],), dynamic_shapes=({0: batch},))
        prepared = prepare_pt2e(program.module(), _x86_quantizer(annotate_conv3d))
        with torch.no_grad():
            for clip in calibration:
                prepared(clip)
        converted = convert_pt2e(prepared)
    weights = Counter(
        str(n.args[0].target)
        for n in converted.graph.nodes
        if n.target == torch.ops.quantized_decomposed.dequantize_per_channel.default
    )
    compiled = torch.compile(converted)
    facts = {"int8_weights": sum(weights.values()), "weights": _count_weights(model), "lowered": Counter()}

    def run(x):
        with torch.no_grad(), _freezing(), _quiet():
            before = {k: v for k, v in counters["inductor"].items() if k.endswith("lower_count")}
            out = compiled(x)
            for k, v in counters["inductor"].items():
                if k.endswith("lower_count") and v > before.get(k, 0):
                    facts["lowered"][k.split("_")[0]] = v - before.get(k, 0)  # qconv / qlinear
        return out

    return run, facts


def _count_weights(model) -> int:
    from torch import nn

    return sum(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) for m in model.modules())


def onnx_int8(model, calibration: list, folder: Path) -> tuple[Callable, Callable, dict]:
    """``(fp32 runner, int8 QDQ runner, facts)`` of the ONNX export of ``model``."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from vidnets.deploy.export import export_model
    from vidnets.deploy.runtime import load_runner

    fp32, pre, int8 = folder / "model.onnx", folder / "model.pre.onnx", folder / "model.int8.onnx"
    export_model(model, calibration[0], "onnx", fp32)

    class Clips(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"clips": c.numpy()} for c in calibration])

        def get_next(self):
            return next(self.items, None)

    with _quiet():
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(int8),
            Clips(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    graph = onnx.load(str(int8)).graph
    int8_initializers = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT8}
    int8_weights = sum(n.op_type == "DequantizeLinear" and n.input[0] in int8_initializers for n in graph.node)
    facts = {"int8_weights": int8_weights, "weights": _count_weights(model)}
    return load_runner("onnx", fp32), load_runner("onnx", int8), facts


# -- speed ----------------------------------------------------------------------------------------
def synth_clips(shape: tuple[int, ...], count: int = 8):
    """``count`` clips (count, C, T, H, W) of ``vidnets synth`` videos (cached), Res3D-style scaling
    (pixel − 128): the timed inputs and the calibration data of the speed cases."""
    import numpy as np
    import torch

    from vidnets.data.cache import default_cache_dir
    from vidnets.data.synthetic import generate_dataset
    from vidnets.data.video import read_frames

    _, t, h, w = shape
    root = generate_dataset(
        default_cache_dir() / "bench" / f"int8_clips_{t}x{h}",
        num_classes=4,
        videos_per_class=max(2, -(-count // 4)),
        frames=t,
        size=max(h, w) + 16,
        seed=0,
    )
    clips = []
    for path in sorted(root.rglob("*.avi"))[:count]:
        frames = read_frames(path, np.arange(t), size=(h, w)).astype(np.float32) - 128.0
        clips.append(torch.from_numpy(frames).permute(3, 0, 1, 2))
    return torch.stack(clips)


def _model(name: str):
    import torch
    from torch import nn

    from vidnets.models import create

    torch.manual_seed(0)
    model = create(name, num_classes=101).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def speed_settings(model, clips, folder: Path, quick: bool) -> tuple[dict, dict]:
    """The settings of one model: ``({label: callable(x)}, {label: facts})``; the int8 ones
    calibrated on ``clips`` in batches of 2 (the export needs a batch other than 1 to keep it dynamic)."""
    from vidnets.engine.fastpath import prepare_for_inference

    calibration = list(clips[: 2 if quick else 2 * CALIBRATION_BATCHES].split(2))
    fns: dict[str, Callable] = {}
    facts: dict[str, dict] = {}
    for precision in ("fp32", "bf16"):
        fns[f"{precision} fast"] = prepare_for_inference(model, precision=precision)
    reason = torchao_missing()
    for label, annotate in (("PT2E int8 + inductor", False), ("PT2E int8, Conv3d annotated", True)):
        if reason:
            facts[label] = {"error": reason}
            continue
        try:
            fns[label], facts[label] = pt2e_int8(model, calibration, annotate_conv3d=annotate)
        except Exception as e:  # e.g. no C++ compiler for inductor
            facts[label] = {"error": f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"}
    _, fns["onnxruntime int8 QDQ"], facts["onnxruntime int8 QDQ"] = onnx_int8(model, calibration, folder)
    return fns, facts


def bench_case(model, fns: dict, x, batch: int, quick: bool) -> dict:
    """Clips/s of each setting (round-robin) and its relative error against eager fp32."""
    import torch

    with torch.inference_mode():
        ref = model(x).float()
    errors = {}
    for label, fn in list(fns.items()):
        try:
            out = fn(x).float()  # also the warm-up (and, for PT2E, the compile at this batch size)
            errors[label] = ((out - ref).norm() / ref.norm()).item()
        except Exception as e:
            errors[label] = f"{type(e).__name__}: {' '.join(str(e).split())[:120]}"
            del fns[label]
    repeats = 1 if quick else (9 if batch == 1 else 5)
    secs = common.time_alternating({k: (lambda f: lambda: f(x))(f) for k, f in fns.items()}, warmup=0, repeats=repeats)
    return {"rates": {k: common.per_second(s, batch) for k, s in secs.items()}, "errors": errors}


def run_speed(args) -> tuple[list, dict, list[float]]:
    rows, ratios, load = [], {}, [os.getloadavg()[0]]
    by_model: dict[tuple, list] = {}
    for case in CASES:
        if common.selected(case[0], args.only):
            by_model.setdefault((case[1], case[2]), []).append(case)
    for (model_name, shape), cases in by_model.items():
        model, clips = _model(model_name), synth_clips(shape)
        with tempfile.TemporaryDirectory() as folder:
            print(f"{model_name}: building the settings …", flush=True)
            fns, facts = speed_settings(model, clips, Path(folder), args.quick)
            for case_name, _, _, batch in cases:
                print(f"{case_name} …", flush=True)
                x = clips[:batch].contiguous()
                result = bench_case(model, dict(fns), x, batch, args.quick)
                rows += _speed_rows(case_name, shape, batch, result, facts)
                ratios[case_name] = _best_int8_ratio(result["rates"])
    load.append(os.getloadavg()[0])
    return rows, ratios, load


def _speed_rows(case: str, shape, batch: int, result: dict, facts: dict) -> list:
    rates, errors = result["rates"], result["errors"]
    bf16 = rates.get("bf16 fast")
    rows = []
    for label in (
        "fp32 fast",
        "bf16 fast",
        "PT2E int8 + inductor",
        "PT2E int8, Conv3d annotated",
        "onnxruntime int8 QDQ",
    ):
        f = facts.get(label, {})
        if label in rates:
            speed, vs = common.fmt_stats(rates[label]), f"{common.ratio(rates[label], bf16):.2f}×"
        else:
            speed, vs = "not measured", "–"
        error = errors.get(label, "–")
        error = f"{error:.1e}" if isinstance(error, float) else error
        rows.append([case.split()[0], "×".join(map(str, shape[1:])), batch, label, speed, vs, error, _int8_note(f)])
    return rows


def _int8_note(f: dict) -> str:
    if "error" in f:
        return f["error"]
    if "int8_weights" not in f:
        return ""
    note = f"{f['int8_weights']} of {f['weights']} weights int8"
    if "lowered" in f:
        lowered = ", ".join(f"{n} {k}" for k, n in sorted(f["lowered"].items())) or "none"
        note += f"; int8 kernels after lowering: {lowered}"
    return note


def _best_int8_ratio(rates: dict) -> tuple[str, float]:
    bf16 = rates.get("bf16 fast")
    best = max(
        ((k, common.ratio(v, bf16)) for k, v in rates.items() if "int8" in k),
        key=lambda kv: kv[1],
        default=("none", float("nan")),
    )
    return best


# -- oneDNN kernels -------------------------------------------------------------------------------
KERNEL_LAYERS = {
    "64→64 at 8×56², batch 8": (64, 8, 56, 8),
    "256→256 at 2×14², batch 8": (256, 2, 14, 8),
    "128→128 at 4×28², batch 1": (128, 4, 28, 1),
}


def run_kernels(quick: bool) -> list:
    """GFLOP/s of one 3×3×3 convolution through oneDNN in fp32, bf16 and int8 (channels-last)."""
    import torch

    cl = torch.channels_last_3d
    fns, flops = {}, {}
    ones = [1, 1, 1]
    for name, (ch, t, side, batch) in KERNEL_LAYERS.items():
        x = torch.randn(batch, ch, t, side, side).contiguous(memory_format=cl)
        w = torch.randn(ch, ch, 3, 3, 3).contiguous(memory_format=cl)
        xq = torch.randint(0, 255, x.shape, dtype=torch.uint8).contiguous(memory_format=cl)
        wq = torch.ops.onednn.qconv_prepack(
            torch.randint(-100, 100, w.shape, dtype=torch.int8),
            torch.full((ch,), 0.01),
            0.05,
            0,
            ones,
            ones,
            ones,
            1,
            list(x.shape),
        )
        scales, zeros = torch.full((ch,), 0.01), torch.zeros(ch, dtype=torch.int64)
        for label, a, b in (("fp32", x, w), ("bf16", x.bfloat16(), w.bfloat16())):
            fns[(name, label)] = (
                lambda a, b: lambda: torch.ops.aten.mkldnn_convolution(a, b, None, ones, ones, ones, 1)
            )(a, b)
        fns[(name, "int8")] = (
            lambda xq, wq, s, z: (
                lambda: torch.ops.onednn.qconv_pointwise(
                    xq, 0.05, 0, wq, s, z, None, ones, ones, ones, 1, 0.1, 0, torch.uint8, "none", [], ""
                )
            )
        )(xq, wq, scales, zeros)
        for label in ("fp32", "bf16", "int8"):
            flops[(name, label)] = 2 * x.numel() * ch * 27
    with torch.inference_mode():
        secs = common.time_alternating(fns, warmup=2, repeats=2 if quick else 9)
    rows = []
    for name in KERNEL_LAYERS:
        rate = {p: common.per_second(secs[(name, p)], flops[(name, p)] / 1e9) for p in ("fp32", "bf16", "int8")}
        rows.append(
            [
                name,
                *(common.fmt_stats(rate[p]) for p in ("fp32", "bf16", "int8")),
                f"{common.ratio(rate['int8'], rate['bf16']):.2f}×",
            ]
        )
    return rows


# -- accuracy --------------------------------------------------------------------------------------
def trained_checkpoint(recipe: str, quick: bool) -> tuple[Path, bool]:
    """The checkpoint of ``vidnets train RECIPE --profile cpu`` (with ``ACCURACY_RECIPES``' settings)
    on synthetic motion data, trained once and cached; ``(path, trained_now)``."""
    from vidnets import api
    from vidnets.data.cache import default_cache_dir
    from vidnets.data.synthetic import generate_dataset

    base = default_cache_dir() / "bench" / "int8_accuracy"
    data = generate_dataset(base / "motion", num_classes=4, videos_per_class=32, frames=16, size=32, seed=0)
    sets = {
        **ACCURACY_RECIPES[recipe],
        **({"train.epochs": 1} if quick else {}),
        "data.root": str(data),
        "train.progress": False,
        "train.tensorboard": False,
        "train.seed": 0,
    }
    out = base / f"{recipe}-{_training_key(recipe, sets, data)}"
    final = out / "final.pt"
    if final.is_file():
        return final, False
    run = api.train(recipe, out=out, profile="cpu", resume="auto", sets=[f"{k}={v}" for k, v in sets.items()])
    from vidnets.utils.io import atomic_write_bytes

    atomic_write_bytes(final, Path(run.checkpoint).read_bytes())
    return final, True


def _training_key(recipe: str, sets: dict, data: Path) -> str:
    """A digest of the resolved training config and the data's generator settings: a changed recipe,
    profile or data set trains afresh instead of reusing a stale checkpoint."""
    import hashlib

    from vidnets.engine.config import load_config

    cfg = load_config(recipe, [f"{k}={v}" for k, v in sets.items()], profile="cpu")
    text = repr(cfg) + (data / "synthetic.json").read_text()
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _test_clips(checkpoint: Path, calibration_count: int):
    """(model, test views (N, V, …), labels (N,), calibration batches) of a checkpoint's protocol."""
    import torch

    from vidnets.engine.build import build_test_dataset, load_records, model_from_checkpoint
    from vidnets.engine.config import load_config

    model, state = model_from_checkpoint(checkpoint)
    kwargs = ", ".join(
        f"{k}={v}" for k, v in state.get("model_kwargs", {}).items() if k in ("width", "fc_width", "batch_norm")
    )
    model.description = state["model_name"] + (f" ({kwargs})" if kwargs else "")
    cfg = load_config(state["config"])
    test_set, _ = build_test_dataset(cfg)
    items = [test_set[i] for i in range(len(test_set))]
    views = torch.stack([item["clip"] for item in items])
    labels = torch.tensor([int(item["label"]) for item in items])
    train_records, _ = load_records(cfg, "train")
    step = max(1, len(train_records) // calibration_count)
    train_set, _ = build_test_dataset(cfg, train_records[::step][:calibration_count])
    calibration = [train_set[i]["clip"][:2] for i in range(len(train_set))]  # 2 views each: a batch of 2
    return model.eval(), views, labels, calibration


def run_accuracy(quick: bool) -> tuple[list, dict, list[str]]:
    import torch

    from vidnets.engine.fastpath import prepare_for_inference

    rows, worst, notes = [], {}, []
    for recipe in ACCURACY_RECIPES:
        print(f"accuracy: {recipe} …", flush=True)
        checkpoint, trained = trained_checkpoint(recipe, quick)
        notes.append(f"{recipe}: {'trained by this run' if trained else 'cached checkpoint'} {checkpoint}")
        model, views, labels, calibration = _test_clips(checkpoint, 1 if quick else 8)
        runners: dict[str, Callable] = {
            "fp32 (eager)": lambda x: model(x),
            "bf16 fast": prepare_for_inference(model, precision="bf16"),
        }
        if not torchao_missing():
            runners["PT2E int8 + inductor"] = pt2e_int8(model, calibration)[0]
            runners["PT2E int8, Conv3d annotated"] = pt2e_int8(model, calibration, annotate_conv3d=True)[0]
        with tempfile.TemporaryDirectory() as folder:
            runners["onnxruntime int8 QDQ"] = onnx_int8(model, calibration, Path(folder))[1]
            with torch.inference_mode():
                logits = {k: torch.stack([f(v).float() for v in views]) for k, f in runners.items()}
        rows += _accuracy_rows(recipe, model, logits, labels, worst)
    return rows, worst, notes


def _recipe_label(recipe: str) -> str:
    return recipe + "".join(f", {k}={v}" for k, v in ACCURACY_RECIPES[recipe].items())


def _accuracy_rows(recipe: str, model, logits: dict, labels, worst: dict) -> list:
    ref_video = logits["fp32 (eager)"].softmax(-1).mean(1).argmax(1)
    ref_top1 = (ref_video == labels).float().mean().item()
    rows = []
    for label, out in logits.items():
        video = out.softmax(-1).mean(1).argmax(1)
        clip = out.argmax(-1)
        top1 = (video == labels).float().mean().item()
        clip_top1 = (clip == labels[:, None]).float().mean().item()
        agree = (video == ref_video).float().mean().item()
        if "int8" in label:
            worst[(recipe, label)] = ref_top1 - top1
        rows.append(
            [
                _recipe_label(recipe),
                model.description,
                len(labels),
                label,
                f"{top1:.1%}",
                f"{clip_top1:.1%}",
                f"{agree:.0%}",
                f"{(top1 - ref_top1) * 100:+.1f}",
            ]
        )
    return rows


# -- report ----------------------------------------------------------------------------------------
def decision(ratios: dict, worst: dict) -> str:
    """The decision rule applied to this run."""
    speed_ok = bool(ratios) and all(r >= SPEEDUP_TARGET for _, r in ratios.values())
    parts = [f"{case}: best int8 {label} {r:.2f}× bf16 fast" for case, (label, r) in ratios.items()]
    text = (
        f"**Decision rule** (an int8 path ≥ {SPEEDUP_TARGET}× the bf16 fast path on res3d18 and C3D at "
        f"batch 1 and 8, ≤ 1 point of top-1 lost): " + "; ".join(parts) + ". "
    )
    if worst:
        lost = max(worst.values())
        text += f"Largest top-1 loss of an int8 setting: {lost * 100:.1f} points. "
    met = speed_ok and (not worst or max(worst.values()) <= TOP1_LOSS_LIMIT)
    return text + ("**Met.**" if met else "**Not met: no int8 path ships.**")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = common.make_parser(__doc__.splitlines()[0])
    p.add_argument("--no-accuracy", action="store_true", help="skip training and scoring the synthetic models")
    p.add_argument("--no-speed", action="store_true", help="skip the speed cases and kernels")
    args = p.parse_args(argv)
    common.setup_threads(args.threads)

    t0 = time.perf_counter()
    sections = []
    ratios: dict = {}
    worst: dict = {}
    if not args.no_speed:
        rows, ratios, load = run_speed(args)
        sections += [
            "Random weights, 101 classes; clips/s, median (min–max), all settings of a case timed round-robin "
            "after one untimed call; `vs bf16` is the ratio of medians to `bf16 fast` "
            "(`prepare_for_inference(precision=\"bf16\")`; the machine line says which precision `auto` picks); "
            "rel. error of the logits against eager fp32 on the timed batch.",
            common.markdown_table(
                ["model", "input", "batch", "setting", "clips/s", "vs bf16", "rel. error", "int8 graph"], rows
            ),
            f"Load average (1 min) at start and end: {load[0]:.1f}, {load[1]:.1f} (other processes share these "
            f"{os.cpu_count()} CPUs).",
            "### oneDNN 3×3×3 convolution kernels, channels-last (GFLOP/s, median (min–max))",
            common.markdown_table(["layer", "fp32", "bf16", "int8 (u8·s8)", "int8 vs bf16"], run_kernels(args.quick)),
        ]
    if not args.no_accuracy:
        rows, worst, notes = run_accuracy(args.quick)
        sections += [
            "### Accuracy on `vidnets synth` data (`--profile cpu` models, test set with the checkpoint's protocol)",
            common.markdown_table(
                [
                    "recipe",
                    "model",
                    "test videos",
                    "setting",
                    "video top-1",
                    "clip top-1",
                    "same video prediction as fp32",
                    "points vs fp32",
                ],
                rows,
            ),
            "Checkpoints: " + "; ".join(notes) + ".",
        ]
    sections.append(decision(ratios, worst))
    if args.quick:
        sections.append(
            "_Quick mode: one calibration clip, one repeat, one training epoch; a smoke test, not for quoting._"
        )
    sections.append(f"Wall time of this run: {time.perf_counter() - t0:.0f} s.")
    common.publish(NAME, "int8 inference against the bf16 fast path", "\n\n".join(sections), args, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
