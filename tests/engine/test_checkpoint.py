"""Checkpoints: atomic writes, weights-only loading, RNG round trip."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch
from helpers import TinyVideoNet

from vidnets.engine import checkpoint as ckpt


def test_save_and_read_round_trip(tmp_path):
    model = TinyVideoNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 4, 8, 8)).sum().backward()
    opt.step()
    path = ckpt.save_checkpoint(
        tmp_path / "c.pt",
        model=model,
        optimizer=opt,
        epoch=2,
        step=17,
        config={"optim": {"lr": 0.1}},
        class_names=["a", "b", "c"],
        model_name="tiny",
    )
    state = ckpt.read_checkpoint(path)
    assert state["epoch"] == 2 and state["step"] == 17 and state["class_names"] == ["a", "b", "c"]
    assert state["config"]["optim"]["lr"] == 0.1
    fresh = TinyVideoNet()
    fresh.load_state_dict(state["model"])
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model = TinyVideoNet()
    path = ckpt.save_checkpoint(tmp_path / "c.pt", model=model, step=1)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(path, model=model, step=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_malicious_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": ckpt.FORMAT, "model": _Exploit()}, f, protocol=2)
    with pytest.raises(ValueError, match="weights-only"):
        ckpt.read_checkpoint(path)


def test_bare_state_dict_is_accepted(tmp_path):
    model = TinyVideoNet()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    assert ckpt.read_checkpoint(tmp_path / "sd.pt")["format"] == "state_dict"


def test_rng_state_round_trip(tmp_path):
    ckpt.seed_everything(5)
    state = ckpt.rng_state()
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    torch.save(state, tmp_path / "rng.pt")
    ckpt.set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))  # storable weights-only
    got = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]
