"""Exported networks against eager vidnets: onnxruntime (CPU) and ``torch.export`` programs at batch 1.

    python -m benchmarks.export [--quick] [--only res3d18,tsn_bninception]

Each model (random weights, 101 classes, eval mode) is exported by ``vidnets.deploy.export`` and
timed round-robin with eager PyTorch fp32 (NCDHW, what ``model(x)`` does), the vidnets inference
fast path (``prepare_for_inference``, the path ``vidnets serve`` runs a checkpoint on) and the
loaded ``model.pt2`` program, on one input of the model's default shape. onnxruntime uses as many
threads as torch. Also reported: the largest relative error of each export against eager fp32.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from benchmarks import common

NAME = "export"
MODELS = ("res3d18", "tsn_bninception")


def _measure(name: str, folder: Path, repeats: int) -> list:
    import torch

    from vidnets.deploy.export import check_export, export_model
    from vidnets.deploy.runtime import load_runner
    from vidnets.engine.fastpath import prepare_for_inference
    from vidnets.models import create

    torch.manual_seed(0)
    model = create(name, num_classes=101).eval()
    shape = tuple(model.default_input)
    x = torch.randn(1, *shape)
    runners, errors = {}, {}
    for fmt in ("onnx", "pt2"):
        path = folder / f"{name}.{fmt}"
        export_model(model, torch.randn(2, *shape), fmt, path)
        parity = check_export(model, fmt, path, shape)
        errors[fmt] = max(r["rel_error"] for r in parity["batches"].values())
        runners[fmt] = load_runner(fmt, path)
    fast = prepare_for_inference(model)

    def eager():
        with torch.inference_mode():
            model(x)

    secs = common.time_alternating(
        {"eager": eager, "fast": lambda: fast(x), "onnx": lambda: runners["onnx"](x), "pt2": lambda: runners["pt2"](x)},
        warmup=2,
        repeats=repeats,
    )
    ms = {k: common.Stats([1e3 * t for t in s.samples]) for k, s in secs.items()}
    rows = []
    for key, label in (
        ("eager", "eager PyTorch fp32"),
        ("fast", f"vidnets fast path ({fast.precision})"),
        ("onnx", "onnxruntime CPU (model.onnx)"),
        ("pt2", "torch.export.load (model.pt2)"),
    ):
        error = f"{errors[key]:.1e}" if key in errors else "–"
        rows.append(
            [
                name,
                "×".join(map(str, shape)),
                label,
                common.fmt_stats(ms[key]),
                f"{common.ratio(secs['eager'], secs[key]):.2f}×",
                error,
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = common.make_parser(__doc__.splitlines()[0]).parse_args(argv)
    common.setup_threads(args.threads)
    import os

    rows, load = [], [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as folder:
        for name in MODELS:
            if common.selected(name, args.only):
                rows += _measure(name, Path(folder), 3 if args.quick else 15)
    load.append(os.getloadavg()[0])
    body = "\n\n".join(
        [
            "Batch 1, one input of the model's default shape, random weights, 101 classes; ms per call, median "
            "(min–max), all rows of a model timed round-robin. Speed-up is against eager PyTorch fp32; "
            "rel. error is the export's relative L2 error against eager fp32 logits (batches 1 and 3).",
            common.markdown_table(["model", "input", "runtime", "ms", "speed-up", "rel. error"], rows),
            f"Load average (1 min) of the machine at start and end: {load[0]:.1f}, {load[1]:.1f} "
            f"(other processes share these {os.cpu_count()} CPUs; above {os.cpu_count()} the times include waiting).",
        ]
    )
    common.publish(NAME, "Exported networks: onnxruntime and torch.export vs eager vidnets", body, args, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
