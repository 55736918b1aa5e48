"""The papers' lr schedules, as factors of the base lr."""

from __future__ import annotations

import pytest
import torch

from vidnets.engine.config import ScheduleConfig
from vidnets.engine.schedules import build_scheduler, lr_factor_fn


@pytest.mark.parametrize(
    "kind, kwargs, steps, expected",
    [
        ("constant", {}, [0, 10_000], [1, 1]),
        # C3D UCF101 solver: ÷10 every 20,000 iterations
        ("step", {"step_size": 20_000, "gamma": 0.1}, [0, 19_999, 20_000, 40_000], [1, 1, 0.1, 0.01]),
        # Two-Stream from scratch: ÷10 at 50K and 70K
        ("multistep", {"milestones": [50_000, 70_000]}, [49_999, 50_000, 69_999, 70_000], [1, 0.1, 0.1, 0.01]),
        # C3D Sports-1M: halved every 150K iterations
        ("halving", {"step_size": 150_000}, [0, 150_000, 300_000, 1_899_999], [1, 0.5, 0.25, 0.5**12]),
    ],
)
def test_schedule_factors(kind, kwargs, steps, expected):
    fn = lr_factor_fn(kind, **kwargs)
    assert [fn(s) for s in steps] == pytest.approx(expected)


def test_warmup_ramps_linearly():
    fn = lr_factor_fn("step", step_size=100, warmup=10, warmup_factor=0.1)
    assert fn(0) == pytest.approx(0.1)
    assert fn(5) == pytest.approx(0.55)
    assert fn(10) == pytest.approx(1.0)


def test_epoch_units_scale_to_steps():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = build_scheduler(opt, ScheduleConfig(kind="multistep", unit="epoch", milestones=[2]), steps_per_epoch=5)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1.0] * 10 + [0.1] * 2)


def test_step_needs_a_size():
    with pytest.raises(ValueError, match="step_size"):
        lr_factor_fn("step")
