"""The papers' learning-rate schedules, as a factor of the base lr per optimizer step.

========== ====================================== =======================================
kind       factor at step ``s``                    used by
========== ====================================== =======================================
constant   1
step       gamma ** (s // step_size)              C3D / Res3D UCF101 solvers, TSN RGB
multistep  gamma ** (number of milestones <= s)   Two-Stream, TSN flow, T3D
halving    0.5 ** (s // step_size)                C3D (÷2 every 150K), Res3D (÷2 every 250K) on Sports-1M
========== ====================================== =======================================

A linear warmup over the first ``warmup`` steps multiplies this, starting at ``warmup_factor``.
Schedules given in epochs are converted to steps with the number of optimizer steps per epoch, so
the scheduler is always stepped once per optimizer step (exact on resume, also mid-epoch).
"""

from __future__ import annotations

import bisect
from typing import Callable

import torch

from vidnets.engine.config import ScheduleConfig

__all__ = ["lr_factor_fn", "build_scheduler"]


def lr_factor_fn(
    kind: str,
    *,
    step_size: int = 0,
    milestones: list[int] | tuple = (),
    gamma: float = 0.1,
    warmup: int = 0,
    warmup_factor: float = 0.1,
) -> Callable[[int], float]:
    """The function ``step -> lr factor`` for a schedule (steps count optimizer steps from 0)."""
    milestones = sorted(int(m) for m in milestones)
    if kind in ("step", "halving") and step_size <= 0:
        raise ValueError(f"schedule {kind}: step_size must be positive, found {step_size}")
    if kind == "halving":
        gamma = 0.5

    def decay(step: int) -> float:
        if kind == "constant":
            return 1.0
        if kind in ("step", "halving"):
            return gamma ** (step // step_size)
        if kind == "multistep":
            return gamma ** bisect.bisect_right(milestones, step)
        raise ValueError(f"schedule.kind: expected constant, step, multistep or halving; found {kind!r}")

    def factor(step: int) -> float:
        f = decay(step)
        if warmup > 0 and step < warmup:
            f *= warmup_factor + (1.0 - warmup_factor) * step / warmup
        return f

    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, steps_per_epoch: int = 1
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` stepped once per optimizer step; epoch-based schedules are scaled to steps."""
    scale = steps_per_epoch if cfg.unit == "epoch" else 1
    fn = lr_factor_fn(
        cfg.kind,
        step_size=cfg.step_size * scale,
        milestones=[m * scale for m in cfg.milestones],
        gamma=cfg.gamma,
        warmup=cfg.warmup * scale,
        warmup_factor=cfg.warmup_factor,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
