"""``vidnets train | test | predict | demo``.

::

    vidnets demo [--out runs/demo] [--quick]
    vidnets train res3d --set data.root=/data/UCF-101 --set data.annotations=/data/ucfTrainTestlist
    vidnets train c3d --set data.layout=hmdb51 --set data.root=/data/hmdb51 --resume auto
    torchrun --nproc_per_node=4 -m vidnets train tsn_rgb --set data.root=...      # several GPUs / machines
    vidnets test runs/train/last.pt [--set data.root=...]
    vidnets predict runs/train/last.pt video.mp4 [--topk 5] [--timeline]
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model from a YAML recipe",
        description="Train a model from a YAML recipe (configs/*.yaml or a recipe name). "
        "Use torchrun for several processes.",
    )
    p.add_argument("config", help="YAML file, or a recipe name from configs/ (c3d, res3d, tsn_rgb, ...)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.lr=0.01 (repeatable; YAML values)",
    )
    p.add_argument("--out", help="run folder (default: the recipe's train.out_dir, runs/<recipe>)")
    p.add_argument("--resume", help="checkpoint to continue from, or 'auto' for <out>/last.pt if present")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in a run folder that already holds a run (its last.pt and logs are replaced)",
    )
    p.add_argument(
        "--profile",
        help="apply the recipe's named profile first, e.g. 'cpu': small frames, size, "
        "width, views and epochs so the recipe trains in minutes on 2 cores",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="build everything, time a few steps and print the run header with an estimate of the "
        "whole run's time; trains nothing and writes no run folder",
    )
    p.set_defaults(func=_train)

    p = subparsers.add_parser(
        "test",
        help="test a checkpoint with its multi-view protocol",
        description="Score every test video with the checkpoint's test protocol; write "
        "metrics, confusion matrix (CSV, PNG) and per-view scores (npz).",
    )
    p.add_argument("checkpoint")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the checkpoint's config (e.g. data.root=..., test.view_chunk=5)",
    )
    p.add_argument(
        "--out",
        help="folder for the reports: <prefix>_metrics.json, _confusion.csv/.png and "
        "_scores.npz (default: the checkpoint's folder)",
    )
    p.add_argument("--prefix", default="test", help="file name prefix of the outputs (default test)")
    p.add_argument("--views", type=int, help="temporal views per video (clips or frames; the recipe's by default)")
    p.add_argument("--crops", type=int, choices=(1, 3, 5, 10), help="spatial crops per view")
    p.add_argument("--batch-size", type=int, help="videos per forward batch (test.batch_size)")
    p.set_defaults(func=_test)

    p = subparsers.add_parser("predict", help="top-k classes of a video (or a timeline of a long one)")
    p.add_argument("checkpoint")
    p.add_argument("video")
    p.add_argument("--topk", type=_positive_int("--topk"), default=5)
    p.add_argument("--timeline", action="store_true", help="per-window predictions (text, CSV and PNG)")
    p.add_argument("--window", type=_positive_float("--window"), default=2.0, help="timeline window length in seconds")
    p.add_argument("--hop", type=_positive_float("--hop"), default=1.0, help="timeline window hop in seconds")
    p.add_argument(
        "--out", help="folder for the timeline files <video name>_timeline.png and .csv (default: the current folder)"
    )
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the checkpoint's config, e.g. data.test_kwargs.views=3",
    )
    p.set_defaults(func=_predict)

    p = subparsers.add_parser(
        "demo",
        help="train a 3D net and a single-frame 2D baseline on synthetic motion",
        description="Generate a synthetic motion dataset, train a small Res3D (3D) and "
        "its single-frame 2D twin on the CPU, test both, print a table.",
    )
    p.add_argument("--out", default="runs/demo", help="folder for the data and the runs (default runs/demo)")
    p.add_argument("--quick", action="store_true", help="a tiny version for tests (well under a minute)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    p.set_defaults(func=_demo)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _positive_int(flag: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag}: expected a positive integer, found {text!r}")
        return value

    return parse


def _positive_float(flag: str):
    import math

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{flag}: expected a positive number of seconds, found {text!r}")
        return value

    return parse


def _train(args: argparse.Namespace) -> int:
    import vidnets
    from vidnets.engine.evaluate import format_metrics
    from vidnets.engine.train import TrainingError

    try:
        run = vidnets.train(
            args.config,
            out=args.out,
            resume=args.resume,
            overwrite=args.overwrite,
            profile=args.profile,
            dry_run=args.dry_run,
            sets=args.set,
        )
    except TrainingError as e:
        return _fail(str(e))
    if not _is_rank0() or run.dry_run is not None:
        return 0
    if run.steps_run == 0 and run.steps > 0:
        print(
            f"nothing left to train: {run.out_dir} holds a finished run of {run.epochs} epochs / {run.steps} "
            f"steps ({run.checkpoint.name}; its test report is test_metrics.json; --overwrite starts afresh)"
        )
        return 0
    print(f"trained {run.epochs} epochs / {run.steps} steps in {run.seconds:.0f}s → {run.checkpoint}")
    if run.metrics:
        print(format_metrics(run.metrics))
    if run.skipped:
        print(f"skipped {len(run.skipped)} unreadable file(s), listed in {run.out_dir}/skipped.txt")
    return 0


def _is_rank0() -> bool:
    """A single process, or rank 0 of a torchrun launch: the process that reports."""
    import os

    return os.environ.get("RANK", "0") == "0"


def _test(args: argparse.Namespace) -> int:
    import vidnets

    metrics = vidnets.test(
        args.checkpoint,
        out=args.out,
        prefix=args.prefix,
        views=args.views,
        crops=args.crops,
        batch_size=args.batch_size,
        sets=args.set,
    )
    if not metrics.files:  # another process of a distributed test: rank 0 reports
        return 0
    print(metrics)
    if metrics.skipped:
        print(f"skipped {len(metrics.skipped)} unreadable video(s): {', '.join(metrics.skipped[:5])}")
    for name, path in metrics.files.items():
        print(f"{name}: {path}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import vidnets
    from vidnets.engine.predict import format_timeline, format_topk, recorded_accuracy_line

    pred = vidnets.predict(
        args.checkpoint,
        args.video,
        topk=args.topk,
        timeline=args.timeline,
        window=args.window,
        hop=args.hop,
        out=args.out,
        device=args.device,
        sets=args.set,
    )
    if not pred.is_timeline:
        print(f"{args.video}:")
        print(format_topk(pred, args.topk))
        print(recorded_accuracy_line(pred.recorded_metrics))
        return 0
    print(f"{args.video}: {len(pred.spans or [])} windows of {args.window:g}s every {args.hop:g}s")
    print(format_timeline(pred, k=min(3, args.topk)))
    print("whole video (mean over windows):")
    print(format_topk(pred.mean(), args.topk))
    print(recorded_accuracy_line(pred.recorded_metrics))
    print(f"timeline: {pred.files['timeline_png']}  {pred.files['timeline_csv']}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import time

    from vidnets.engine.demo import format_table, run_demo

    start = time.perf_counter()
    rows = run_demo(args.out, quick=args.quick, seed=args.seed, precision=args.precision)
    print()
    print(format_table(rows))
    print(f"\ntotal time {time.perf_counter() - start:.0f}s")
    return 0
