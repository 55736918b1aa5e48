"""The Python API: what ``vidnets train``, ``test`` and ``predict`` do, as functions.

::

    import vidnets

    run = vidnets.train("res3d", profile="cpu", data__root="data/ucf101", train__epochs=2)
    run                       # Run(out_dir=…, checkpoint=…/last.pt, epochs=2, video_top1=…, files={…})
    metrics = vidnets.test(run.checkpoint, views=2)
    metrics["video_top1"], metrics.files["scores"]
    pred = vidnets.predict(run.checkpoint, "clip.avi", topk=3)
    pred.topk(3)              # [(class name, probability), …]
    model = vidnets.load_model(run.checkpoint)

Config overrides are keyword arguments: a double underscore stands for the dot of ``--set``
(``train__epochs=2`` is ``--set train.epochs=2``), and ``**{"data.root": …}`` works too; values are
Python objects (numbers, strings, paths, lists, dicts). ``sets=["KEY=VALUE", …]`` takes them as
``--set`` does. Errors are exceptions (``ConfigError`` and the other ``ValueError`` s for bad input,
``FileNotFoundError``, :class:`vidnets.engine.train.TrainingError`); the command line turns them
into one-line messages. Progress goes to the ``vidnets`` logger (``logging.basicConfig(level=
logging.INFO)`` shows it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from torch import nn

    from vidnets.engine.predict import Prediction
    from vidnets.engine.summary import DryRun, RunHeader

logger = logging.getLogger(__name__)

__all__ = ["Run", "Metrics", "train", "test", "predict", "load_model", "override_texts"]


@dataclass
class Run:
    """A training run: where it wrote, how far it got and its final test metrics.

    A dry run (``dry_run=True``) has ``dry_run`` set, no checkpoint and no files."""

    out_dir: Path
    header: RunHeader
    checkpoint: Path | None = None
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0
    metrics: dict = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    dry_run: DryRun | None = None
    steps_run: int = 0  # optimizer steps this call took (0 when it resumed a finished run)

    def __repr__(self) -> str:
        if self.dry_run is not None:
            return f"Run(dry run, out_dir={str(self.out_dir)!r}, {self.dry_run})"
        scores = "".join(f", {k}={self.metrics[k]:.3f}" for k in ("video_top1", "chance") if k in self.metrics)
        files = ", ".join(f"{k}={str(v)!r}" for k, v in self.files.items())
        return (
            f"Run(out_dir={str(self.out_dir)!r}, checkpoint={str(self.checkpoint)!r}, epochs={self.epochs}, "
            f"steps={self.steps}{scores}, files={{{files}}})"
        )


@dataclass
class Metrics(Mapping):
    """Test metrics (a read-only mapping: ``clip_top1``, ``video_top1``, ``mean_class_accuracy``,
    ``chance``, ``videos``, ``views`` …) with the paths of the reports written."""

    scores: dict  # not ``values``: that would hide Mapping.values()
    files: dict[str, Path] = field(default_factory=dict)
    checkpoint: Path | None = None
    skipped: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return self.scores[key]

    def __iter__(self):
        return iter(self.scores)

    def __len__(self) -> int:
        return len(self.scores)

    def __str__(self) -> str:
        from vidnets.engine.evaluate import format_metrics

        return format_metrics(self.scores)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={self.scores[k]:.3f}"
            for k in ("clip_top1", "video_top1", "mean_class_accuracy", "chance")
            if k in self.scores
        )
        files = ", ".join(f"{k}={str(v)!r}" for k, v in self.files.items())
        return f"Metrics({shown}, videos={self.scores.get('videos')}, files={{{files}}})"


# -- overrides ------------------------------------------------------------------------------------


def override_texts(overrides: Mapping[str, Any]) -> list[str]:
    """Keyword overrides as ``--set`` strings: ``train__epochs=2`` → ``"train.epochs=2"``."""
    import yaml

    texts = []
    for key, value in overrides.items():
        text = yaml.safe_dump(_plain(value), default_flow_style=True, width=1 << 30).strip()
        if text.endswith("\n..."):  # a bare scalar document
            text = text[:-4].rstrip()
        texts.append(f"{key.replace('__', '.')}={text}")
    return texts


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# -- train ------------------------------------------------------------------------------------------


def train(
    config: str | Path | dict,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    overwrite: bool = False,
    profile: str | None = None,
    dry_run: bool = False,
    dry_run_steps: int = 3,
    sets: Sequence[str] = (),
    **overrides: Any,
) -> Run:
    """Train as ``vidnets train`` does: ``config`` is a recipe name, a YAML file or a mapping.

    ``resume``: a checkpoint, or ``"auto"`` for ``<out>/last.pt`` if present. ``overwrite``: start
    afresh in a run folder that holds a run. ``dry_run``: build everything, time ``dry_run_steps``
    steps and estimate the whole run, writing nothing. The run header is logged before the first step.
    """
    from vidnets.engine import distributed
    from vidnets.engine.summary import run_header, time_steps

    texts = [*sets, *override_texts(overrides), *([f"train.out_dir={out}"] if out else [])]
    cfg, resume_path = _training_config(config, texts, profile, resume)
    info = distributed.setup(cfg.train.device)
    try:
        if info.is_main and not dry_run:
            _prepare_run_folder(Path(cfg.train.out_dir), resume_path, overwrite)
        trainer = _build_trainer(cfg, info, with_test=cfg.train.eval_every >= 0)
        header = run_header(trainer, config_file=None if isinstance(config, dict) else _config_file(config))
        if info.is_main:
            logger.info("%s", header)
        if dry_run:
            estimate = time_steps(trainer, dry_run_steps)
            if info.is_main:
                logger.info("%s", estimate)
            return Run(Path(cfg.train.out_dir), header, dry_run=estimate)
        result = trainer.fit(resume=resume_path)
    finally:
        distributed.cleanup()
    out_dir = Path(cfg.train.out_dir)
    return Run(
        out_dir,
        header,
        checkpoint=Path(result.checkpoint),
        epochs=result.epochs,
        steps=result.step,
        seconds=result.seconds,
        metrics=dict(result.test_metrics),
        files=_run_files(out_dir),
        skipped=list(result.skipped),
        steps_run=result.steps_run,
    )


def _config_file(config: str | Path) -> Path:
    from vidnets.engine.config import find_recipe

    return find_recipe(config)


def _training_config(config: str | Path | dict, texts: list[str], profile: str | None, resume: str | Path | None):
    """The checked config and the checkpoint to resume from (None: start afresh)."""
    from vidnets.engine.build import check_input_shape
    from vidnets.engine.config import load_config

    cfg = load_config(config, texts, profile=profile)
    check_input_shape(cfg)
    if resume == "auto":
        last = Path(cfg.train.out_dir) / "last.pt"
        resume = last if last.is_file() else None
    if resume and not Path(resume).is_file():
        raise FileNotFoundError(f"--resume {resume}: no such checkpoint")
    return cfg, (str(resume) if resume else None)


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


def _build_trainer(cfg, info, *, with_test: bool):
    """Datasets, model and Trainer of ``cfg`` (one head per task for a multi-task run)."""
    from vidnets.data.datasets import collate_skip_bad
    from vidnets.engine.build import build_datasets, build_model
    from vidnets.engine.config import eval_task
    from vidnets.engine.train import Trainer

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
    return Trainer(
        model,
        train_set,
        cfg,
        test_set=test_set,
        class_names=classes,
        model_name=cfg.model.name,
        model_kwargs=kwargs,
        collate_fn=collate_skip_bad,
        dist_info=info,
        objective=objective,
    )


def _run_files(out_dir: Path) -> dict[str, Path]:
    """The files a run folder holds, by what they are."""
    names = {
        "checkpoint": "last.pt",
        "config": "config.yaml",
        "log": "log.csv",
        "epochs": "epochs.csv",
        "curves": "curves.png",
        "metrics": "test_metrics.json",
        "scores": "test_scores.npz",
        "confusion_png": "test_confusion.png",
        "confusion_csv": "test_confusion.csv",
        "skipped": "skipped.txt",
    }
    return {key: out_dir / name for key, name in names.items() if (out_dir / name).is_file()}


# -- test -------------------------------------------------------------------------------------------


def test(
    checkpoint: str | Path,
    *,
    out: str | Path | None = None,
    prefix: str = "test",
    views: int | None = None,
    crops: int | None = None,
    batch_size: int | None = None,
    sets: Sequence[str] = (),
    **overrides: Any,
) -> Metrics:
    """Test a checkpoint with its multi-view protocol, as ``vidnets test`` does; the reports (metrics
    JSON, confusion CSV/PNG, score dump) go to ``out`` (default: beside the checkpoint)."""
    from vidnets.engine.evaluate import write_report

    out_dir = Path(out) if out else Path(checkpoint).parent
    protocol = _protocol_overrides(views=views, crops=crops, batch_size=batch_size)
    result, cfg, info = _evaluate_checkpoint(checkpoint, out_dir, [*protocol, *sets, *override_texts(overrides)])
    if not info.is_main:
        return Metrics(result.metrics(), checkpoint=Path(checkpoint))
    paths = write_report(result, out_dir, prefix=prefix, dump_scores=cfg.test.dump_scores)
    return Metrics(
        result.metrics(),
        files={k: Path(v) for k, v in paths.items()},
        checkpoint=Path(checkpoint),
        skipped=list(result.skipped),
    )


def _protocol_overrides(**values: int | None) -> list[str]:
    """``views`` / ``crops`` / ``batch_size`` as the config keys they stand for (an explicit set wins)."""
    keys = {"views": "data.test_kwargs.views", "crops": "data.test_kwargs.crops", "batch_size": "test.batch_size"}
    for name in ("views", "batch_size"):
        value = values.get(name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, found {value}")
    return [f"{keys[name]}={value}" for name, value in values.items() if value is not None]


def _evaluate_checkpoint(checkpoint: str | Path, out_dir: Path, texts: list[str]):
    """Score the checkpoint's test set (this process's shard; rank 0 gathers): ``(result, cfg, info)``."""
    from torch.utils.data import DataLoader, Subset

    from vidnets.data.datasets import collate_skip_bad
    from vidnets.engine import distributed
    from vidnets.engine.build import build_test_dataset, model_from_checkpoint, select_task
    from vidnets.engine.config import load_config
    from vidnets.engine.evaluate import evaluate
    from vidnets.engine.fastpath import prepare_for_inference
    from vidnets.engine.train import uses_channels_last
    from vidnets.utils.io import ensure_writable_dir, remove_stale_temps

    if Path(checkpoint).is_file():  # else the checkpoint's own error says what is wrong
        ensure_writable_dir(out_dir, "test output folder")  # before loading data or scoring anything
        remove_stale_temps(out_dir, min_age_s=3600)  # left by a killed write; a live writer's are younger
    model, state = model_from_checkpoint(checkpoint)
    model, cfg, trained_classes = select_task(model, state, load_config(state["config"], texts))
    info = distributed.setup(cfg.train.device)
    test_set, classes = build_test_dataset(cfg)
    if classes != trained_classes:
        raise ValueError(
            f"the test data has {len(classes)} classes {classes[:5]}… but the checkpoint was trained "
            f"on {len(trained_classes)} {trained_classes[:5]}…"
        )
    model = prepare_for_inference(
        model,
        device=info.device,
        precision=cfg.train.precision,
        copy=False,
        channels_last=cfg.train.channels_last and uses_channels_last(model),
    )
    shard = Subset(test_set, list(range(info.rank, len(test_set), info.world_size)))
    loader = DataLoader(
        shard, batch_size=cfg.test.batch_size, num_workers=cfg.data.num_workers, collate_fn=collate_skip_bad
    )
    try:
        result = evaluate(model, loader, class_names=classes, view_chunk=cfg.test.view_chunk, progress=info.is_main)
    finally:
        distributed.cleanup()
    records = getattr(test_set, "records", None)
    if records is not None:
        result.paths = [records[i].path for i in result.index]
    return result, cfg, info


# -- predict ----------------------------------------------------------------------------------------


def predict(
    checkpoint: str | Path,
    video: str | Path,
    *,
    topk: int = 5,
    timeline: bool = False,
    window: float = 2.0,
    hop: float = 1.0,
    out: str | Path | None = None,
    device: str = "auto",
    sets: Sequence[str] = (),
    **overrides: Any,
) -> Prediction:
    """Classify ``video`` with the checkpoint's test protocol, as ``vidnets predict`` does.

    ``timeline=True``: per-window probabilities (``window`` seconds every ``hop``), written as
    ``<out>/<video name>_timeline.png`` and ``.csv`` (``out`` default: the current folder); their
    paths are in ``Prediction.files``. ``Prediction.recorded_metrics`` holds the checkpoint's own
    test metrics, to judge how far to trust the answer."""
    from vidnets.engine.predict import Predictor, write_timeline

    png = Path(out or ".") / f"{Path(video).stem}_timeline.png"
    if timeline:
        from vidnets.utils.io import ensure_writable_dir

        ensure_writable_dir(png.parent, "timeline output folder")
    predictor = Predictor(checkpoint, device=device, overrides=[*sets, *override_texts(overrides)])
    if not timeline:
        pred = predictor.video(video)
    else:
        pred = predictor.timeline(video, window=window, hop=hop)
        png, csv = write_timeline(pred, png, title=Path(video).name)
        pred.files = {"timeline_png": png, "timeline_csv": csv}
    pred.video, pred.k, pred.recorded_metrics = str(video), topk, predictor.recorded_metrics
    return pred


def load_model(checkpoint: str | Path, device: str = "cpu") -> nn.Module:
    """The model a vidnets checkpoint holds, with its weights, in eval mode on ``device``; its class
    names are ``model.class_names`` (``model.task_classes`` for a multi-task model)."""
    from vidnets.engine.build import model_from_checkpoint

    model, state = model_from_checkpoint(checkpoint, device)
    # plain attributes, not parameters or submodules (setattr: nn.Module types its attributes as such)
    setattr(model, "class_names", list(state.get("class_names") or []))
    setattr(model, "task_classes", dict(state.get("task_classes") or {}))
    return model
