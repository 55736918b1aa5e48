"""What a training run is about to do: the header ``vidnets train`` prints before the first step,
and the time estimate of a dry run (``vidnets train --dry-run``).

The header names everything that decides how a run behaves and how long it takes: the config
file, the device, the precision and why it was chosen, the thread count, the model with its
parameters and MACs, the dataset sizes and the steps. Under ``torchrun`` it adds the backend and
the world size.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vidnets.engine.checkpoint import unwrap_model

__all__ = ["RunHeader", "run_header", "DryRun", "time_steps", "format_duration"]


@dataclass
class RunHeader:
    """``(label, text)`` rows; ``str()`` aligns them."""

    rows: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        width = max((len(label) for label, _ in self.rows), default=0)
        return "\n".join(f"{label:<{width}}  {text}" for label, text in self.rows)


def run_header(trainer: Any, config_file: str | Path | None = None) -> RunHeader:
    """The header of ``trainer``'s run (a :class:`vidnets.engine.train.Trainer`)."""
    from vidnets.utils.device import precision_reason

    cfg, info = trainer.cfg, trainer.info
    config = str(Path(config_file).resolve()) if config_file else "(given as a mapping)"
    device = f"{trainer.device}, {torch.get_num_threads()} threads"
    if info.enabled:
        import torch.distributed as dist

        device += f"; torchrun: backend {dist.get_backend()}, world size {info.world_size}"
    precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(trainer.amp_dtype, "fp32")
    rows = [
        ("config", f"{config} (recipe {cfg.recipe})"),
        ("out", str(trainer.out_dir)),
        ("device", device),
        ("precision", f"{precision} ({precision_reason(trainer.device, cfg.train.precision)})"),
        ("model", _model_text(trainer)),
        ("data", _data_text(trainer)),
        ("steps", _steps_text(trainer)),
    ]
    return RunHeader(rows)


def _model_text(trainer: Any) -> str:
    from vidnets.engine.build import training_input_shape
    from vidnets.models.complexity import complexity

    model = unwrap_model(trainer.model)
    name = trainer.model_name or trainer.cfg.model.name
    shape = training_input_shape(trainer.cfg, model)
    try:
        cost = complexity(model, shape)
    except (RuntimeError, ValueError):  # a model whose input the config does not describe (segments, heads)
        cost = None
    text = f"{name}, {_count(sum(p.numel() for p in model.parameters()))}parameters"
    if cost is not None:
        text += f", {_count(cost.macs)}MACs per input of {'×'.join(map(str, shape))}"
    return text


def _count(n: float) -> str:
    """``1234567`` → ``"1.23 M"`` (with the space before the unit's word)."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} "


def _data_text(trainer: Any) -> str:
    test = trainer.test_set
    if isinstance(test, dict):
        tested = ", ".join(f"{task} {len(d)}" for task, d in test.items()) + " test videos"
    else:
        tested = f"{len(test)} test videos" if test is not None else "no test set"
    return (
        f"{trainer.cfg.data.layout} {trainer.cfg.data.root or ''}: {len(trainer.train_set)} training videos, "
        f"{tested}, {len(trainer.class_names)} classes"
    ).replace(" :", ":")


def _steps_text(trainer: Any) -> str:
    cfg = trainer.cfg
    return (
        f"{trainer.steps_per_epoch} per epoch × {trainer.total_epochs} epoch(s) = {trainer.total_steps} "
        f"(batch {cfg.data.batch_size} × accumulate {cfg.optim.accumulate} × {trainer.info.world_size} "
        f"process(es))"
    )


@dataclass
class DryRun:
    """What ``vidnets train --dry-run`` measured: seconds per optimizer step (after one warm-up step)
    and the estimate for the whole run (training steps plus the tests the config asks for)."""

    steps_timed: int
    seconds_per_step: float
    total_steps: int
    test_seconds: float
    tests: int

    @property
    def eta_seconds(self) -> float:
        return self.seconds_per_step * self.total_steps + self.test_seconds * self.tests

    def __str__(self) -> str:
        text = (
            f"dry run: {self.steps_timed} step(s) timed, {self.seconds_per_step:.2f} s per step → "
            f"{self.total_steps} steps take about {format_duration(self.seconds_per_step * self.total_steps)}"
        )
        if self.tests:
            text += (
                f"; {self.tests} test(s) of about {format_duration(self.test_seconds)} each; "
                f"whole run about {format_duration(self.eta_seconds)}"
            )
        return text + ". Nothing was written."


def time_steps(trainer: Any, steps: int = 3) -> DryRun:
    """Run ``steps`` + 1 optimizer steps of ``trainer`` (the first one warms up and is not timed) and
    time one test video if the run tests. Nothing is written (no log, checkpoint or run folder);
    the trainer has taken steps and is not meant to train afterwards."""
    durations = trainer.time_steps(steps + 1)
    timed = durations[1:] or durations
    tests, test_seconds = _planned_tests(trainer), 0.0
    if tests:
        test_seconds = _time_one_test_video(trainer) * _test_videos(trainer)
    return DryRun(len(timed), sum(timed) / len(timed), trainer.total_steps, test_seconds, tests)


def _planned_tests(trainer: Any) -> int:
    every = trainer.cfg.train.eval_every
    if trainer.test_set is None or every < 0:
        return 0
    due = trainer.total_epochs // every if every > 0 else 0
    return due + (0 if every > 0 and trainer.total_epochs % every == 0 else 1)


def _test_videos(trainer: Any) -> int:
    test = trainer.test_set
    return sum(len(d) for d in test.values()) if isinstance(test, dict) else len(test)


def _time_one_test_video(trainer: Any) -> float:
    from torch.utils.data import Subset

    from vidnets.engine.evaluate import evaluate

    test = trainer.test_set
    task = next(iter(test)) if isinstance(test, dict) else None
    one = Subset(test[task] if task else test, [0])
    model = unwrap_model(trainer.model)
    if task is not None:
        from vidnets.models.base import TaskView

        model = TaskView(model, task)
    start = time.perf_counter()
    evaluate(
        model,
        torch.utils.data.DataLoader(one, batch_size=1, collate_fn=trainer.collate_fn),
        class_names=trainer.task_classes.get(task, trainer.class_names) if task else trainer.class_names,
        view_chunk=trainer.cfg.test.view_chunk,
        amp_dtype=trainer.amp_dtype,
        channels_last=trainer.channels_last,
        progress=False,
    )
    return time.perf_counter() - start


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
