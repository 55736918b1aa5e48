"""Subcommands for the papers' own protocols: ``fuse``, ``features``, ``svm``, ``transfer``.

* ``vidnets fuse``: late fusion of ``vidnets test`` score dumps (Two-Stream averaging or SVM, TSN
  weights; :mod:`vidnets.methods.fusion`).
* ``vidnets features``: C3D video descriptors (fc6 over 16-frame windows with stride 8, averaged,
  L2-normalised; :mod:`vidnets.methods.descriptors`).
* ``vidnets svm``: linear SVM on those descriptors, train/test split lists (:mod:`vidnets.methods.svm`).
* ``vidnets transfer``: T3D's 2D→3D supervision transfer, then optional fine-tuning
  (:mod:`vidnets.methods.transfer`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_fuse(subparsers)
    _register_features(subparsers)
    _register_svm(subparsers)
    _register_transfer(subparsers)


def _check_outputs(*paths: str | None) -> None:
    """Before any work: the folders of the output files given must be writable."""
    from vidnets.utils.io import ensure_writable_dir

    for path in paths:
        if path:
            ensure_writable_dir(Path(path).parent, f"folder of {path}")


def _write_json(path: str | None, obj: dict) -> None:
    if path:
        from vidnets.utils.io import atomic_write_json

        atomic_write_json(path, obj)


# -- fuse ---------------------------------------------------------------------------------------
def _register_fuse(subparsers) -> None:
    p = subparsers.add_parser(
        "fuse",
        help="fuse per-stream test scores (weighted average or linear SVM)",
        description="Fuse the score dumps of several streams (one per modality, from `vidnets test`). "
        "Presets: two-stream = 1 1 (Two-Stream, averaging); tsn = 1 1.5 (RGB : flow, TSN); "
        "tsn-warped = 1 1 0.5 (RGB : flow : warped flow, TSN). "
        "--method svm fits a linear SVM on the stacked L2-normalised softmax scores of the "
        "--train-dumps and evaluates on the given (test) dumps (Two-Stream).",
    )
    p.add_argument("dumps", nargs="+", help="score dumps (.npz), one per stream, in the order of --weights")
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--weights", nargs="+", type=float, help="one weight per stream (default: all 1)")
    weights.add_argument("--preset", choices=("two-stream", "tsn", "tsn-warped"), help="the papers' weights")
    p.add_argument("--method", choices=("average", "svm"), default="average")
    p.add_argument("--train-dumps", nargs="+", help="--method svm: train-split dumps, same stream order")
    p.add_argument("--C", type=float, default=1.0, help="--method svm: SVM regularisation (default 1)")
    p.add_argument(
        "--softmax",
        choices=("before_mean", "after_mean", "none"),
        default="before_mean",
        help="how views become a video score: softmax each view then average (default, as "
        "`vidnets test`), average then softmax (TSN's eval_scores.py), or as stored",
    )
    p.add_argument(
        "--output",
        help="the .npz score dump to write the fused scores to (one view per video; it fuses again like any stream)",
    )
    p.add_argument("--json", help="write the metrics to this JSON file")
    p.set_defaults(func=_run_fuse)


def _run_fuse(args) -> int:

    from vidnets.engine.metrics import load_scores, save_scores
    from vidnets.methods.fusion import FUSION_PRESETS, fuse_svm, fuse_weighted, fused_dump

    _check_outputs(args.output, args.json)
    dumps = [load_scores(p) for p in args.dumps]
    if args.method == "svm":
        if not args.train_dumps:
            print("fuse: --method svm needs --train-dumps (one per stream, from the train split)", file=sys.stderr)
            return 2
        result = fuse_svm([load_scores(p) for p in args.train_dumps], dumps, C=args.C, softmax=args.softmax)
        weights = None
    else:
        weights = list(FUSION_PRESETS[args.preset]) if args.preset else (args.weights or [1.0] * len(dumps))
        if len(weights) != len(dumps):
            print(f"fuse: {len(dumps)} score dumps but {len(weights)} weights", file=sys.stderr)
            return 2
        result = fuse_weighted(dumps, weights, softmax=args.softmax)
    print(result.summary())
    metrics = {
        "method": args.method,
        "weights": weights,
        "dumps": list(args.dumps),
        "accuracy": result.accuracy,
        "mean_class_accuracy": result.mean_class_accuracy,
        "stream_accuracy": list(result.stream_accuracy),
        "videos": int(len(result.labels)),
    }
    _write_json(args.json, metrics)
    if args.output:
        save_scores(fused_dump(result, dumps[0], probabilities=args.method == "average"), args.output)
    return 0


# -- features -----------------------------------------------------------------------------------
def _register_features(subparsers) -> None:
    p = subparsers.add_parser(
        "features",
        help="extract video descriptors (C3D fc6 over sliding windows)",
        description="Run a model over sliding windows of each whole video, read one named layer (fc6 by "
        "default; C3D's fc6 is post-ReLU), pool the windows into one descriptor per video and "
        "write one file per video, named after its path relative to the dataset root. "
        "Resumable (existing files are skipped); bad videos are reported and listed in "
        "OUT/failed.txt.",
    )
    p.add_argument("videos", nargs="*", help="video files (or --layout/--root, or --list)")
    p.add_argument("--layout", help="dataset layout for load_annotations (ucf101, hmdb51, kinetics, folder)")
    p.add_argument("--root", help="dataset folder; output names are relative to it")
    p.add_argument("--annotations", help="with --layout: the split files or CSVs (default: inside --root)")
    p.add_argument("--split", type=int, default=1)
    p.add_argument("--subset", choices=("train", "test", "all"), default="all", help="with --layout (default all)")
    p.add_argument("--list", help="'relative/path.avi [label]' lines (UCF101 split-list format), relative to --root")
    p.add_argument(
        "--out",
        help="folder for the descriptors: one file per video, named after its path relative to --root (and failed.txt)",
    )
    p.add_argument("--output", "-o", dest="out", help=argparse.SUPPRESS)  # the earlier spelling of --out
    p.add_argument("--model", default="c3d", help="registered model name (default c3d)")
    p.add_argument("--num-classes", type=int, help="classes of the model's last layer (default: the builder's)")
    p.add_argument("--weights", help="converted Sports-1M C3D weights (conv1.weight … fc8.bias), local file")
    p.add_argument(
        "--checkpoint",
        help="a vidnets training checkpoint to load instead (its architecture, classes, "
        "weights and test preprocessing)",
    )
    p.add_argument(
        "--layer",
        default="fc6",
        help="layer to read (default fc6; e.g. fc7), or pre_logits: the pooled vector before any model's classifier",
    )
    p.add_argument(
        "--window",
        type=int,
        help="frames per window (default 16, C3D's; with --checkpoint: the clip length it was trained on)",
    )
    p.add_argument("--stride", type=int, default=8, help="frames between window starts (default 8)")
    p.add_argument(
        "--normalize",
        choices=("mean_l2", "l2_mean_l2", "none"),
        default="mean_l2",
        help="average then L2-normalise (the paper's order, default), L2 each window then average "
        "and re-normalise, or plain average",
    )
    p.add_argument("--format", choices=("npz", "h5", "npy"), default="npz")
    p.add_argument("--keep-windows", action="store_true", help="also store every window's features (npz/h5)")
    p.add_argument(
        "--recipe",
        help="data recipe giving resize/crop/mean/std (default: the checkpoint's test "
        "settings, else the recipe of --model)",
    )
    p.add_argument("--resize", type=int, nargs=2, metavar=("H", "W"), help="frame size before cropping")
    p.add_argument("--crop", type=int, help="centre crop size")
    p.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    p.add_argument("--device", default="auto")
    p.add_argument("--shard", help="i/n: this process's share of the videos (default: RANK/WORLD_SIZE)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_features)


def _relative_key(path: str, root: Path | None) -> str:
    if root is None:
        return Path(path).name
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise ValueError(f"features: {path} is not inside --root {root}") from None


def _video_items(args) -> list:
    from vidnets.methods.descriptors import VideoItem
    from vidnets.methods.svm import read_split_list

    root = Path(args.root) if args.root else None
    items = []
    if args.layout:
        from vidnets.data.datasets import load_annotations

        if root is None:
            raise ValueError("features: --layout needs --root")
        subsets = ("train", "test") if args.subset == "all" else (args.subset,)
        for subset in subsets:
            records, _ = load_annotations(
                args.layout, root, split=args.split, subset=subset, annotations=args.annotations
            )
            items += [VideoItem(r.path, _relative_key(r.path, root), r.label) for r in records]
    if args.list:
        base = root or Path(args.list).parent
        for rel, label in read_split_list(args.list):
            items.append(VideoItem(str(base / rel), rel, -1 if label is None else label))
    if root is None:  # file names, or relative paths where names collide (a/clip.avi, b/clip.avi)
        from vidnets.utils.io import unique_names

        names = unique_names(args.videos)
        items += [VideoItem(v, names[v]) for v in dict.fromkeys(args.videos)]
    else:
        items += [VideoItem(v, _relative_key(v, root)) for v in args.videos]
    unique = {}
    for item in items:  # a video listed twice is extracted once; two videos never share a key
        other = unique.setdefault(item.key, item)
        if os.path.realpath(other.path) != os.path.realpath(item.path):
            raise ValueError(
                f"features: {other.path} and {item.path} would both be written as {item.key}; "
                "give --root so names keep their folders"
            )
    return list(unique.values())


def _features_model(args, device):
    """The network, and the config of the checkpoint it comes from (None for --model)."""
    from vidnets.models import create  # importing the package registers every family

    kwargs = {"num_classes": args.num_classes} if args.num_classes else {}
    if args.checkpoint:  # its own architecture, class count and weights
        from vidnets.engine.build import model_from_checkpoint
        from vidnets.engine.config import load_config

        if args.num_classes:
            raise ValueError(
                "features: --num-classes does not go with --checkpoint (the checkpoint's classes are used)"
            )
        model, state = model_from_checkpoint(args.checkpoint)
        return _for_evaluation(model, device), load_config(state["config"])
    try:
        model = create(args.model, **kwargs)
    except KeyError as e:  # an unknown model name
        raise ValueError(f"features: --model {e.args[0] if e.args else args.model}") from None
    if args.weights:
        if not args.model.startswith("c3d"):
            raise ValueError(
                f"--weights loads converted Sports-1M C3D weights; model is {args.model!r} "
                "(use --checkpoint for vidnets checkpoints)"
            )
        from vidnets.models.c3d import load_c3d_sports1m

        print(load_c3d_sports1m(model, args.weights))
    return _for_evaluation(model, device), None


def _for_evaluation(model, device):
    """The network readied as every evaluation readies it (:func:`prepare_for_inference`), in fp32 and
    without folding or ReLU fusion so the descriptors and every named layer (BatchNorm and ReLU
    outputs too) stay as trained; the layers are read from the prepared network itself."""
    from vidnets.engine.fastpath import prepare_for_inference

    return prepare_for_inference(model, device=device, precision="fp32", fold_bn=False, fuse=False, copy=False).module


def _window_settings(args, cfg):
    """``(recipe settings, window)``: frame size, crop and normalisation of --recipe, else of the
    checkpoint's test data (its recipe and data.test_kwargs, window = its clip length), else of the
    recipe of --model (window 16, C3D's); --resize, --crop and --window win over all of them."""
    import dataclasses

    from vidnets.engine.recipes import data_recipe, recipe_for_model

    name = args.recipe or (cfg.data.recipe if cfg is not None else None)
    settings = (data_recipe(name) if name else recipe_for_model(args.model)).defaults()
    if settings is None:
        source = f"--recipe {name}" if args.recipe else f"the checkpoint's data.recipe {name}"
        raise ValueError(f"features: {source} reads stored optical flow; features reads RGB videos")
    from_checkpoint = cfg is not None and not args.recipe
    if from_checkpoint:
        known = {k: v for k, v in cfg.data.test_kwargs.items() if k in ("frames", "size", "crop", "mean", "std")}
        settings = dataclasses.replace(settings, **known)
    size = tuple(args.resize) if args.resize else settings.size
    settings = dataclasses.replace(
        settings, size=tuple(size) if isinstance(size, list) else size, crop=args.crop or settings.crop
    )
    short_side = settings.size if isinstance(settings.size, int) else min(settings.size)
    if settings.crop > short_side:  # every video would fail alike
        raise ValueError(
            f"features: crop {settings.crop} is larger than the frames, resized to {settings.size} "
            "(short side, or H W); give a smaller --crop or a larger --resize"
        )
    window = args.window or (settings.frames if from_checkpoint and settings.kind == "clip" else 16)
    return settings, window


def _run_features(args) -> int:
    import numpy as np

    from vidnets.data.transforms import CenterCrop, ClipTransform
    from vidnets.data.video import iter_frames
    from vidnets.methods.descriptors import ModelInputError, extract_to_dir
    from vidnets.utils.device import default_device
    from vidnets.utils.sharding import current_shard, take_shard

    if not args.out:
        raise ValueError("features: give --out, the folder for the descriptors")
    items = _video_items(args)
    if not items:
        print("features: give video files, --layout with --root, or --list", file=sys.stderr)
        return 2
    if not any(Path(item.path).exists() for item in items):  # a wrong path, not damaged videos
        more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
        raise FileNotFoundError(f"features: no such video {items[0].path}{more}")
    shard, shards = current_shard(args.shard)
    items = take_shard(items, shard, shards)
    from vidnets.utils.io import ensure_writable_dir, remove_stale_temps

    ensure_writable_dir(args.out, "features output folder")
    for folder in {Path(args.out) / Path(item.key).parent for item in items}:
        remove_stale_temps(folder, min_age_s=3600)  # another shard may be writing here right now
    if any(v is not None and v < 1 for v in (args.window, args.stride, args.batch_size)):
        raise ValueError(
            f"features: --window, --stride and --batch-size must be >= 1, found {args.window}, "
            f"{args.stride}, {args.batch_size}"
        )
    device = default_device(args.device)
    model, cfg = _features_model(args, device)
    settings, window = _window_settings(args, cfg)
    transform = ClipTransform([CenterCrop(settings.crop)], mean=settings.mean, std=settings.std, layout="cthw")
    rng = np.random.default_rng(0)  # unused by a centre crop; ClipTransform's signature wants one

    def read_frames(path: str):
        return iter_frames(path, size=settings.size)  # uint8 (H, W, 3), resized while decoding

    def to_clip(frames: list):
        return transform(np.stack(frames)[None, None], rng)  # (3, window, crop, crop)

    try:
        report = extract_to_dir(
            model,
            items,
            read_frames,
            args.out,
            to_clip,
            layer=args.layer,
            window=window,
            stride=args.stride,
            normalize=args.normalize,
            fmt=args.format,
            keep_windows=args.keep_windows,
            batch_size=args.batch_size,
            device=device,
            progress=not args.no_progress,
            failed_file="failed.txt" if shards == 1 else f"failed-{shard}of{shards}.txt",
        )
    except KeyError as e:  # a layer the model does not have
        raise ValueError(f"features: --layer {args.layer}: {e.args[0] if e.args else e}") from None
    except ModelInputError as e:  # every video would fail alike: stop at the first
        raise ValueError(
            f"features: {e}; stopped at the first video. Give the frames and crop the model is "
            f"built for (--window, --crop, --resize){_size_hint(args)}"
        ) from None
    print(f"features {args.layer} → {args.out}: {report.summary()}")
    for key, reason in report.failed:
        print(f"  skipped {key}: {reason}", file=sys.stderr)
    return 0 if report.written or report.skipped_done else 1


def _size_hint(args) -> str:
    if args.checkpoint:
        return "; a checkpoint's own sizes are data.test_kwargs in its config.yaml"
    if args.model.startswith("c3d"):
        return "; C3D's fc6 takes 16-frame 112×112 windows at its default width"
    return ""


# -- svm ----------------------------------------------------------------------------------------
def _register_svm(subparsers) -> None:
    p = subparsers.add_parser(
        "svm",
        help="train and test a linear SVM on extracted video descriptors",
        description="C3D's protocol: a linear SVM (scikit-learn LinearSVC) fitted on the train split's "
        "descriptors and scored on the test split; reports accuracy and mean class accuracy.",
    )
    p.add_argument("--features", required=True, help="folder written by `vidnets features`")
    p.add_argument("--train", required=True, help="train split list ('relative/path.avi [label]' lines)")
    p.add_argument("--test", required=True, help="test split list")
    p.add_argument("--C", type=float, default=1.0, help="SVM regularisation (default 1)")
    p.add_argument("--json", help="write the metrics to this JSON file")
    p.set_defaults(func=_run_svm)


def _run_svm(args) -> int:
    from vidnets.methods.svm import run_svm_protocol

    _check_outputs(args.json)
    if not Path(args.features).is_dir():
        raise FileNotFoundError(f"svm: --features {args.features}: no such folder (write it with `vidnets features`)")
    if not args.C > 0:
        raise ValueError(f"svm: --C must be a positive number, found {args.C}")
    result, missing = run_svm_protocol(args.features, args.train, args.test, C=args.C)
    if missing:
        print(f"svm: {len(missing)} listed videos have no features (e.g. {missing[:3]}); left out", file=sys.stderr)
    print(result.summary())
    _write_json(
        args.json,
        {
            "accuracy": result.accuracy,
            "mean_class_accuracy": result.mean_class_accuracy,
            "train_videos": result.num_train,
            "test_videos": result.num_test,
            "C": args.C,
            "missing": missing,
        },
    )
    return 0


# -- transfer -----------------------------------------------------------------------------------
def _register_transfer(subparsers) -> None:
    p = subparsers.add_parser(
        "transfer",
        help="T3D supervision transfer: train a 3D student against a frozen 2D teacher",
        description="T3D's 2D→3D transfer: a frozen ImageNet DenseNet-121 (2D) and a 3D student learn whether "
        "frames and a clip come from the same moment of the same video (only the student and "
        "the small match head are updated). The student is saved as a checkpoint that "
        "`vidnets train` starts from (model.pretrained); --finetune-epochs also fine-tunes it "
        "for classification here.",
    )
    p.add_argument("--root", required=True, help="dataset folder (videos; labels are used only for fine-tuning)")
    p.add_argument("--layout", default="ucf101", help="annotation layout for load_annotations (default ucf101)")
    p.add_argument("--annotations", help="the split files or CSVs (default: inside --root)")
    p.add_argument("--split", type=int, default=1)
    p.add_argument("--student", default="t3d121", choices=("t3d121", "densenet3d121", "t3d169", "densenet3d169"))
    p.add_argument("--teacher-weights", help="local torchvision densenet121 ImageNet state dict (.pth)")
    p.add_argument(
        "--profile",
        help="a profile of the t3d recipe (e.g. cpu): the student takes its model settings, so that "
        "`vidnets train t3d --profile cpu --set model.pretrained=OUTPUT` starts from it, and the "
        "clips its frames, frame step and size unless --frames/--size/--crop are given",
    )
    p.add_argument("--frames", type=int, help="frames per clip (recipe t3d: 32)")
    p.add_argument("--size", type=int, help="short side before cropping (recipe t3d: 256)")
    p.add_argument("--crop", type=int, help="crop size (recipe t3d: 224)")
    p.add_argument("--teacher-frames", type=int, help="frames the teacher sees per clip (default all)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, help="stop the transfer after this many steps")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.1, help="SGD, Nesterov momentum (T3D: 0.1)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--finetune-epochs", type=int, default=0, help="then fine-tune the student for classification")
    p.add_argument("--finetune-lr", type=float, default=0.01)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", "-o", required=True, help="the student checkpoint file to write (.pt)")
    p.set_defaults(func=_run_transfer)


def _run_transfer(args) -> int:
    """Transfer on the dataset's train split, optional fine-tune, save the student."""
    import dataclasses

    from vidnets.methods.transfer import (
        SupervisionTransfer,
        TransferObjective,
        TransferSettings,
        build_teacher,
        run_stage,
        save_student,
    )
    from vidnets.models import create

    _check_transfer_args(args)
    profile = _transfer_profile(args)
    dataset, class_names = _transfer_clips(args, profile)
    kwargs = {"num_classes": max(len(class_names), 2), **(dict(profile.model.kwargs) if profile else {})}
    student = create(args.student, **kwargs)
    model = SupervisionTransfer(build_teacher(args.teacher_weights), student, teacher_frames=args.teacher_frames)
    settings = TransferSettings(
        args.student,
        f"{args.output}.transfer",
        args.epochs,
        args.lr,
        args.max_steps,
        args.batch_size,
        args.momentum,
        args.weight_decay,
        args.num_workers,
        args.device,
        args.seed,
    )
    done = run_stage(
        model, dataset, class_names, settings, model_name="supervision_transfer", objective=TransferObjective()
    )
    print(f"transfer: {done.step} steps, {done.epochs} epoch(s), {_last_loss(done)}")
    metrics = {"transfer_loss": _last_value(done, "train_loss")}
    if args.finetune_epochs:
        finetune = dataclasses.replace(
            settings,
            out_dir=f"{args.output}.finetune",
            epochs=args.finetune_epochs,
            lr=args.finetune_lr,
            max_steps=None,
        )
        tuned = run_stage(student, dataset, class_names, finetune, model_name=args.student, model_kwargs=kwargs)
        accuracy = _last_value(tuned, "train_acc")
        print(f"fine-tune: last epoch train accuracy {100 * accuracy:.1f}%")
        metrics["finetune_train_accuracy"] = accuracy
    path = save_student(student, args.output, args.student, kwargs, class_names, metrics)
    print(f"student saved to {path} (start `vidnets train` from it with model.pretrained)")
    return 0


def _last_value(result, key: str) -> float:
    """The last epoch's ``key`` of a stage, else the last logged step's loss (a stage cut by --max-steps)."""
    if result.history:
        return float(result.history[-1][key])
    from vidnets.engine.plots import read_csv

    rows = read_csv(Path(result.checkpoint).parent / "log.csv", unique="step")
    return float(rows[-1]["loss"]) if rows and key == "train_loss" else float("nan")


def _last_loss(result) -> str:
    return f"final loss {_last_value(result, 'train_loss'):.4f}"


def _check_transfer_args(args) -> None:
    _check_outputs(args.output)
    for flag in ("epochs", "batch_size", "frames", "size", "crop", "teacher_frames", "max_steps"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"transfer: --{flag.replace('_', '-')} must be >= 1, found {value}")
    for flag in ("lr", "finetune_lr"):
        if not 0 < getattr(args, flag) < float("inf"):
            raise ValueError(
                f"transfer: --{flag.replace('_', '-')} must be a finite number > 0, found {getattr(args, flag)}"
            )
    if args.num_workers < 0 or args.finetune_epochs < 0:
        raise ValueError("transfer: --num-workers and --finetune-epochs must be >= 0")


def _transfer_profile(args):
    """The t3d recipe with ``--profile`` applied (its model and clip settings), or None."""
    if not args.profile:
        return None
    from vidnets.engine.config import load_config

    cfg = load_config("t3d", profile=args.profile)
    if args.student != cfg.model.name:
        raise ValueError(
            f"transfer: --profile {args.profile} sets up the t3d recipe's {cfg.model.name}; "
            f"drop --student {args.student} or the profile"
        )
    return cfg


def _transfer_clips(args, profile=None):
    """Training clips with T3D's recipe (32 frames, short side 256, corner crops 224, flip), or the
    profile's frames, frame step and size; --frames/--size/--crop override either."""
    from vidnets.data.datasets import load_annotations
    from vidnets.data.presets import build_dataset
    from vidnets.methods.transfer import TEACHER_MIN_CROP

    records, class_names = load_annotations(
        args.layout, args.root, split=args.split, subset="train", annotations=args.annotations
    )
    overrides = {k: v for k, v in (profile.data.train_kwargs if profile else {}).items() if k in _CLIP_KEYS}
    if overrides.get("crop", TEACHER_MIN_CROP) < TEACHER_MIN_CROP:  # the profile's clips suit the student only
        print(
            f"transfer: the teacher needs {TEACHER_MIN_CROP}² crops; the profile's {overrides['crop']}² are raised to it"
        )
        overrides["size"] = max(int(overrides.get("size", 0)), TEACHER_MIN_CROP + 4)
        overrides["crop"] = TEACHER_MIN_CROP
    overrides.update({k: v for k, v in (("frames", args.frames), ("size", args.size), ("crop", args.crop)) if v})
    crop = overrides.get("crop", 224)
    if crop < TEACHER_MIN_CROP:
        raise ValueError(
            f"transfer: crops of {crop}² are too small for the 2D DenseNet-121 teacher, whose five "
            f"halvings need at least {TEACHER_MIN_CROP}²; pass --crop {TEACHER_MIN_CROP} (and --size above it)"
        )
    return build_dataset("t3d", records, train=True, **overrides), class_names


_CLIP_KEYS = ("frames", "stride", "size", "crop")
