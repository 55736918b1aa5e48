"""An interrupted and resumed CPU run ends with exactly the weights of an uninterrupted one."""

from __future__ import annotations

import pytest
import torch
from helpers import TinyVideoNet, ToyClips, tiny_config

from vidnets.engine.checkpoint import read_checkpoint
from vidnets.engine.train import Trainer


def _train(out_dir, resume=None, **overrides):
    cfg = tiny_config(out_dir, **{"train.eval_every": -1, "model.kwargs": "{}", **overrides})
    torch.manual_seed(123)  # model init
    model = TinyVideoNet(dropout=0.3, bn=True)
    trainer = Trainer(model, ToyClips(n=20, augment=True), cfg, class_names=["a", "b", "c"])
    trainer.fit(resume=resume)
    return read_checkpoint(out_dir / "last.pt")


def _assert_same(a: dict, b: dict) -> None:
    assert a["step"] == b["step"] and a["epoch"] == b["epoch"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("stop", ["train.epochs=1", "train.max_iters=7"], ids=["epoch-boundary", "mid-epoch"])
def test_resume_is_bit_exact(tmp_path, stop, workers):
    """Also with DataLoader workers: each item's augmentation comes from (seed, epoch, index)."""
    sets = {"data.num_workers": workers}
    full = _train(tmp_path / "full", **sets)
    _train(tmp_path / "part", **sets, **dict([stop.split("=")]))
    first = read_checkpoint(tmp_path / "part" / "last.pt")
    assert 0 < first["step"] < full["step"]
    resumed = _train(tmp_path / "part", resume=tmp_path / "part" / "last.pt", **sets)
    _assert_same(full, resumed)


def test_augmentation_does_not_depend_on_the_worker_count(tmp_path):
    _assert_same(_train(tmp_path / "w0", **{"data.num_workers": 0}), _train(tmp_path / "w2", **{"data.num_workers": 2}))


def test_resume_with_accumulation_and_clipping(tmp_path):
    sets = {"optim.accumulate": 2, "optim.clip_grad_norm": 0.5, "data.batch_size": 2}
    full = _train(tmp_path / "full", **sets)
    _train(tmp_path / "part", **sets, **{"train.max_iters": 5})
    resumed = _train(tmp_path / "part", resume=tmp_path / "part" / "last.pt", **sets)
    _assert_same(full, resumed)
    assert full["step"] == 3 * (20 // 4)  # 5 optimizer steps per epoch of 20 clips, batch 2 × 2


def test_resume_truncates_logs(tmp_path):
    _train(tmp_path / "run", **{"train.epochs": 1})
    _train(tmp_path / "run", resume=tmp_path / "run" / "last.pt")
    lines = (tmp_path / "run" / "epochs.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3"]
