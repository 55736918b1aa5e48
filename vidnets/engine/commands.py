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
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a model from a YAML recipe",
                              description="Train a model from a YAML recipe (configs/*.yaml or a recipe name). "
                                          "Use torchrun for several processes.")
    p.add_argument("config", help="YAML file, or a recipe name from configs/ (c3d, res3d, tsn_rgb, ...)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=0.01 (repeatable; YAML values)")
    p.add_argument("--out", help="run directory (overrides train.out_dir)")
    p.add_argument("--resume", help="checkpoint to continue from, or 'auto' for <out>/last.pt if present")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in a run folder that already holds a run (its last.pt and logs are replaced)")
    p.add_argument("--profile", help="apply the recipe's named profile first, e.g. 'cpu': small frames, size, "
                                     "width, views and epochs so the recipe trains in minutes on 2 cores")
    p.set_defaults(func=_train)

    p = subparsers.add_parser("test", help="test a checkpoint with its multi-view protocol",
                              description="Score every test video with the checkpoint's test protocol; write "
                                          "metrics, confusion matrix (CSV, PNG) and per-view scores (npz).")
    p.add_argument("checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override the checkpoint's config (e.g. data.root=..., test.view_chunk=5)")
    p.add_argument("--out", help="output folder (default: beside the checkpoint)")
    p.add_argument("--prefix", default="test", help="file name prefix of the outputs")
    p.add_argument("--views", type=int, help="temporal views per video (clips or frames; the recipe's by default)")
    p.add_argument("--crops", type=int, choices=(1, 3, 5, 10), help="spatial crops per view")
    p.add_argument("--batch-size", type=int, help="videos per forward batch (test.batch_size)")
    p.set_defaults(func=_test)

    p = subparsers.add_parser("predict", help="top-k classes of a video (or a timeline of a long one)")
    p.add_argument("checkpoint")
    p.add_argument("video")
    p.add_argument("--topk", type=_positive_int("--topk"), default=5)
    p.add_argument("--timeline", action="store_true", help="per-window predictions (text, CSV and PNG)")
    p.add_argument("--window", type=_positive_float("--window"), default=2.0,
                   help="timeline window length in seconds")
    p.add_argument("--hop", type=_positive_float("--hop"), default=1.0, help="timeline window hop in seconds")
    p.add_argument("--out", help="folder for the timeline files <video name>_timeline.png and .csv "
                                 "(default: the current folder)")
    p.add_argument("--device", default="auto")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override the checkpoint's config, e.g. data.test_kwargs.views=3")
    p.set_defaults(func=_predict)

    p = subparsers.add_parser("demo", help="train a 3D net and a single-frame 2D baseline on synthetic motion",
                              description="Generate a synthetic motion dataset, train a small Res3D (3D) and "
                                          "its single-frame 2D twin on the CPU, test both, print a table.")
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


def _prepare_run_folder(out_dir: Path, resume: str | None, overwrite: bool) -> None:
    """Before any compute: refuse to replace an earlier run, prove the folder writable, clear stale temps."""
    from vidnets.engine.runlog import RUN_MARKERS, check_run_folder
    from vidnets.utils.io import ensure_writable_dir, remove_stale_temps

    check_run_folder(out_dir, resume=bool(resume), overwrite=overwrite)
    ensure_writable_dir(out_dir, "run folder")
    remove_stale_temps(out_dir)
    if overwrite and not resume:  # the old run's files must not mix with the new run's
        for name in (*RUN_MARKERS, "log.csv", "skipped.txt"):
            (out_dir / name).unlink(missing_ok=True)


def _train(args: argparse.Namespace) -> int:
    from vidnets.data.datasets import collate_skip_bad
    from vidnets.engine import distributed
    from vidnets.engine.build import build_datasets, build_model, check_input_shape
    from vidnets.engine.config import ConfigError, eval_task, load_config
    from vidnets.engine.evaluate import format_metrics
    from vidnets.engine.train import Trainer, TrainingError

    try:
        overrides = list(args.set) + ([f"train.out_dir={args.out}"] if args.out else [])
        cfg = load_config(args.config, overrides, profile=args.profile)
        check_input_shape(cfg)
        resume = args.resume
        if resume == "auto":
            last = Path(cfg.train.out_dir) / "last.pt"
            resume = str(last) if last.is_file() else None
        if resume and not Path(resume).is_file():
            raise FileNotFoundError(f"--resume {resume}: no such checkpoint")
        info = distributed.setup(cfg.train.device)
        if info.is_main:
            _prepare_run_folder(Path(cfg.train.out_dir), resume, args.overwrite)
        with_test = cfg.train.eval_every >= 0
        objective = None
        if cfg.multitask.tasks:
            from vidnets.methods.multitask import MultiTaskObjective, build_multitask_datasets

            train_set, test_set, classes = build_multitask_datasets(cfg, with_test=with_test)
            heads = {task: len(names) for task, names in classes.items()}
            model, kwargs = build_model(cfg, heads[eval_task(cfg)], heads=heads)
            objective = MultiTaskObjective()
        else:
            train_set, test_set, classes = build_datasets(cfg, with_test=with_test)
            model, kwargs = build_model(cfg, len(classes))
    except (ConfigError, FileNotFoundError) as e:
        return _fail(str(e))
    try:
        trainer = Trainer(model, train_set, cfg, test_set=test_set, class_names=classes, model_name=cfg.model.name,
                          model_kwargs=kwargs, collate_fn=collate_skip_bad, dist_info=info, objective=objective)
        result = trainer.fit(resume=resume)
    except TrainingError as e:
        return _fail(str(e))
    finally:
        distributed.cleanup()
    if info.is_main:
        print(f"trained {result.epochs} epochs / {result.step} steps in {result.seconds:.0f}s → {result.checkpoint}")
        if result.test_metrics:
            print(format_metrics(result.test_metrics))
        if result.skipped:
            print(f"skipped {len(result.skipped)} unreadable file(s), listed in {cfg.train.out_dir}/skipped.txt")
    return 0


def _protocol_overrides(args: argparse.Namespace) -> list[str]:
    """``--views/--crops/--batch-size`` as the config keys they stand for (an explicit --set wins)."""
    for flag in ("views", "batch_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, found {value}")
    keys = {"views": "data.test_kwargs.views", "crops": "data.test_kwargs.crops", "batch_size": "test.batch_size"}
    return [f"{key}={getattr(args, flag)}" for flag, key in keys.items() if getattr(args, flag) is not None]


def _test(args: argparse.Namespace) -> int:
    from torch.utils.data import DataLoader, Subset

    from vidnets.data.datasets import collate_skip_bad
    from vidnets.engine import distributed
    from vidnets.engine.build import build_test_dataset, model_from_checkpoint, select_task
    from vidnets.engine.config import ConfigError, load_config
    from vidnets.engine.evaluate import evaluate, format_metrics, write_report
    from vidnets.engine.fastpath import prepare_for_inference
    from vidnets.engine.train import uses_channels_last
    from vidnets.utils.io import ensure_writable_dir, remove_stale_temps

    out = Path(args.out) if args.out else Path(args.checkpoint).parent
    if Path(args.checkpoint).is_file():  # else the checkpoint's own error says what is wrong
        ensure_writable_dir(out, "test output folder")  # before loading data or scoring anything
        remove_stale_temps(out, min_age_s=3600)  # left by a killed write; a live writer's are younger
    try:
        model, state = model_from_checkpoint(args.checkpoint)
        cfg = load_config(state["config"], [*_protocol_overrides(args), *args.set])
        model, cfg, trained_classes = select_task(model, state, cfg)
        info = distributed.setup(cfg.train.device)
        test_set, classes = build_test_dataset(cfg)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        return _fail(str(e))
    if classes != trained_classes:
        return _fail(f"the test data has {len(classes)} classes {classes[:5]}… but the checkpoint was trained on "
                     f"{len(trained_classes)} {trained_classes[:5]}…")
    model = prepare_for_inference(model, device=info.device, precision=cfg.train.precision, copy=False,
                                  channels_last=cfg.train.channels_last and uses_channels_last(model))
    shard = Subset(test_set, list(range(info.rank, len(test_set), info.world_size)))
    loader = DataLoader(shard, batch_size=cfg.test.batch_size, num_workers=cfg.data.num_workers,
                        collate_fn=collate_skip_bad)
    result = evaluate(model, loader, class_names=classes, view_chunk=cfg.test.view_chunk, progress=info.is_main)
    distributed.cleanup()
    if not info.is_main:
        return 0
    records = getattr(test_set, "records", None)
    if records is not None:
        result.paths = [records[i].path for i in result.index]
    paths = write_report(result, out, prefix=args.prefix, dump_scores=cfg.test.dump_scores)
    print(format_metrics(result.metrics()))
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable video(s): {', '.join(result.skipped[:5])}")
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from vidnets.engine.config import ConfigError
    from vidnets.engine.predict import Predictor, format_timeline, format_topk, recorded_accuracy_line, write_timeline

    png = Path(args.out or ".") / f"{Path(args.video).stem}_timeline.png"
    if args.timeline:
        from vidnets.utils.io import ensure_writable_dir

        ensure_writable_dir(png.parent, "timeline output folder")
    try:
        predictor = Predictor(args.checkpoint, device=args.device, overrides=args.set)
        if not args.timeline:
            pred = predictor.video(args.video)
            print(f"{args.video}:")
            print(format_topk(pred, args.topk))
            print(recorded_accuracy_line(predictor.recorded_metrics))
            return 0
        pred = predictor.timeline(args.video, window=args.window, hop=args.hop)
    except (ConfigError, FileNotFoundError, ValueError, RuntimeError) as e:
        return _fail(str(e))
    print(f"{args.video}: {len(pred.spans)} windows of {args.window:g}s every {args.hop:g}s")
    print(format_timeline(pred, k=min(3, args.topk)))
    mean = type(pred)(pred.probs.mean(0), pred.class_names)
    print("whole video (mean over windows):")
    print(format_topk(mean, args.topk))
    print(recorded_accuracy_line(predictor.recorded_metrics))
    png, csv = write_timeline(pred, png, title=Path(args.video).name)
    print(f"timeline: {png}  {csv}")
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
