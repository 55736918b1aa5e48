"""Two gloo processes on the CPU train to the same weights as one process with the same global batch."""

from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp
from helpers import TinyVideoNet, ToyClips, tiny_config

from vidnets.engine import distributed
from vidnets.engine.checkpoint import read_checkpoint
from vidnets.engine.train import Trainer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(rank: int, world: int, port: int, out_dir: str, batch: int) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    info = distributed.setup("cpu")
    try:
        cfg = tiny_config(
            out_dir, **{"data.batch_size": batch, "train.epochs": 2, "train.eval_every": 2, "train.device": "cpu"}
        )
        torch.manual_seed(0)  # identical initial weights in every process (DDP also broadcasts rank 0's)
        trainer = Trainer(
            TinyVideoNet(),
            ToyClips(n=24),
            cfg,
            test_set=ToyClips(n=9, views=2, seed=3),
            class_names=["a", "b", "c"],
            dist_info=info,
        )
        trainer.fit()
    finally:
        distributed.cleanup()


def test_two_processes_match_one(tmp_path):
    port = _free_port()
    mp.spawn(_run, args=(2, port, str(tmp_path / "two"), 2), nprocs=2, join=True)
    _run(0, 1, _free_port(), str(tmp_path / "one"), 4)
    two = read_checkpoint(tmp_path / "two" / "last.pt")
    one = read_checkpoint(tmp_path / "one" / "last.pt")
    assert two["step"] == one["step"] == 2 * 24 // 4
    for k in one["model"]:
        assert torch.allclose(one["model"][k], two["model"][k], atol=1e-5), k
    assert not torch.equal(one["model"]["fc.weight"], TinyVideoNet().fc.weight)  # it did train
    # rank 0 alone wrote the outputs, and its test covered every video once (shards gathered)
    import json

    metrics = json.loads((tmp_path / "two" / "test_metrics.json").read_text())
    assert metrics["videos"] == 9


def _decide(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    distributed.setup("cpu")
    try:
        # a choice each process measures for itself may differ; every rank must use rank 0's
        mine = torch.bfloat16 if rank else None
        chosen = distributed.from_rank0(mine)
        with open(os.path.join(out_dir, f"rank{rank}.txt"), "w") as f:
            f.write(str(chosen))
    finally:
        distributed.cleanup()


def test_measured_choices_follow_rank0(tmp_path):
    mp.spawn(_decide, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    assert [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)] == ["None", "None"]
    assert distributed.from_rank0(torch.bfloat16) is torch.bfloat16  # single process: its own value


class PointwiseNet(TinyVideoNet):
    """A 1×1×1 convolution whose weight has channels-last strides (3, 1, 3, 3, 3): its size-1 dims make
    the layout ambiguous, and the CPU kernel returns gradients strided (3, 1, 1, 1, 1) (cuDNN has
    the mirror case: contiguous weights, channels-last gradients)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 8, 1).to(memory_format=torch.channels_last_3d)


def _train_recording_warnings(rank: int, world: int, port: int, out_dir: str) -> None:
    import warnings

    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    info = distributed.setup("cpu")
    try:
        cfg = tiny_config(
            f"{out_dir}/run", **{"data.batch_size": 2, "train.epochs": 1, "train.eval_every": -1, "train.device": "cpu"}
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer = Trainer(PointwiseNet(), ToyClips(n=12), cfg, class_names=["a", "b", "c"], dist_info=info)
            assert trainer.channels_last
            trainer.fit()
        strides = [p.grad.stride() == p.stride() for p in trainer.model.parameters()]
        with open(os.path.join(out_dir, f"rank{rank}.txt"), "w") as f:
            f.write(f"{sum('bucket view strides' in str(w.message) for w in caught)} {all(strides)}")
    finally:
        distributed.cleanup()


def test_no_gradient_stride_warning_under_ddp(tmp_path):
    """DDP's gradients are its bucket views from the first step: no strided copy, no warning per step."""
    mp.spawn(_train_recording_warnings, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    assert [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)] == ["0 True", "0 True"]
