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
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    info = distributed.setup("cpu")
    try:
        cfg = tiny_config(out_dir, **{"data.batch_size": batch, "train.epochs": 2, "train.eval_every": 2,
                                      "train.device": "cpu"})
        torch.manual_seed(0)  # identical initial weights in every process (DDP also broadcasts rank 0's)
        trainer = Trainer(TinyVideoNet(), ToyClips(n=24), cfg, test_set=ToyClips(n=9, views=2, seed=3),
                          class_names=["a", "b", "c"], dist_info=info)
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
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
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
