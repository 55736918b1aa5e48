"""Runs that cannot learn stop with a clear error instead of looping or saving a broken model."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from helpers import TinyVideoNet, ToyClips, tiny_config

from vidnets.data.datasets import collate_skip_bad
from vidnets.engine.train import MAX_SKIPPED_FRACTION, Trainer, TrainingError


class _Unreadable(ToyClips):
    """Every item fails to load, as a folder of corrupt files (or crops larger than the frames) does."""

    def __getitem__(self, i: int) -> dict:
        return {"error": f"bad{i}.avi: truncated file", "path": f"bad{i}.avi", "index": i}


class _NaNClips(ToyClips):
    def __init__(self, bad: set[int], **kwargs):
        super().__init__(**kwargs)
        self.bad = bad

    def __getitem__(self, i: int) -> dict:
        item = super().__getitem__(i)
        if i in self.bad:
            item["clip"] = torch.full_like(item["clip"], float("nan"))
        return item


def _trainer(tmp_path, dataset, **overrides) -> Trainer:
    cfg = tiny_config(tmp_path, **{"train.eval_every": -1, "train.log_every": 1, **overrides})
    torch.manual_seed(0)
    return Trainer(TinyVideoNet(), dataset, cfg, class_names=["a", "b", "c"], collate_fn=collate_skip_bad)


def test_no_readable_clip_stops_in_the_first_epoch_naming_the_files(tmp_path):
    trainer = _trainer(tmp_path, _Unreadable(n=12), **{"train.epochs": 1})
    with pytest.raises(TrainingError, match=r"epoch 1: no training clip could be read \(bad\d+\.avi: truncated"):
        trainer.fit()
    assert trainer.step == 0 and not (tmp_path / "last.pt").exists()


def test_non_finite_steps_beyond_the_limit_stop_the_run_and_save_nothing(tmp_path):
    trainer = _trainer(tmp_path, _NaNClips(bad={5}, n=20), **{"train.epochs": 3})  # 15 steps: 1 skip > 1 %
    with pytest.raises(TrainingError, match="non-finite loss or gradients.*train.precision=fp32"):
        trainer.fit()
    assert trainer.nonfinite_steps == 1 and not (tmp_path / "last.pt").exists()
    assert "step" in trainer.first_nonfinite


def test_skipped_steps_are_logged_per_step_and_per_epoch(tmp_path, monkeypatch):
    monkeypatch.setattr("vidnets.engine.train.MAX_SKIPPED_FRACTION", 0.5)
    trainer = _trainer(tmp_path, _NaNClips(bad={3}, n=20), **{"train.epochs": 2})
    result = trainer.fit()
    assert trainer.nonfinite_steps == 2  # the bad clip is in one batch per epoch
    weights = torch.load(tmp_path / "last.pt", weights_only=True)["model"]
    assert all(bool(torch.isfinite(w).all()) for w in weights.values())
    with open(tmp_path / "log.csv", newline="") as f:
        steps = list(csv.DictReader(f))
    assert [int(r["skipped_steps"]) for r in steps][-1] == 2 and int(steps[0]["skipped_steps"]) <= 1
    assert [int(r["skipped_steps"]) for r in result.history] == [1, 1]


def test_non_finite_weights_are_never_saved(tmp_path, monkeypatch):
    monkeypatch.setattr("vidnets.engine.train.MAX_SKIPPED_FRACTION", 1.0)  # reach the end of the epoch
    trainer = _trainer(tmp_path, ToyClips(n=12), **{"train.epochs": 1})
    with torch.no_grad():
        trainer.model.fc.weight[0, 0] = math.inf  # as if an optimizer step had overflowed
    with pytest.raises(TrainingError, match="weights became non-finite"):
        trainer.fit()
    assert not (tmp_path / "last.pt").exists()


def test_the_limit_is_one_percent():
    assert MAX_SKIPPED_FRACTION == 0.01
