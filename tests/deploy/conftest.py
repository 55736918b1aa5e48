"""A tiny trained checkpoint and synthetic clips for the deployment tests (about 20 s, once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidnets.cli import main


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory) -> Path:
    from vidnets.data.synthetic import generate_dataset

    return generate_dataset(
        tmp_path_factory.mktemp("deploy-synth"), num_classes=3, videos_per_class=4, frames=60, size=32, seed=0
    )


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_videos, tmp_path_factory) -> Path:
    """res3d10 at width 4 trained for two epochs in fp32 and tested, so its metrics are recorded."""
    out = tmp_path_factory.mktemp("deploy-run")
    sets = {
        "data.root": tiny_videos,
        "model.name": "res3d10",
        "model.kwargs": "{width: 4}",
        "data.batch_size": 4,
        "data.num_workers": 0,
        "data.train_kwargs": "{frames: 4, size: 24, crop: 16}",
        "data.test_kwargs": "{frames: 4, size: 24, crop: 16, views: 3}",
        "train.epochs": 2,
        "train.max_iters": "null",
        "train.progress": "false",
        "train.tensorboard": "false",
        "schedule.step_size": 2,
        "data.metadata_cache": "null",
        "train.precision": "fp32",
    }
    args = ["train", "res3d", "--out", str(out)]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0
    return out / "last.pt"


@pytest.fixture(scope="session")
def sample_video(tiny_videos) -> Path:
    """A 60-frame (2.4 s) clip of the second class."""
    classes = (tiny_videos / "classInd.txt").read_text().split()[1::2]
    return next(tiny_videos.glob(f"{classes[1]}/*.avi"))
