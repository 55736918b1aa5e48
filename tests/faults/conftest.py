"""Fault-injection suite: shared tiny data, a trained checkpoint, and the case counters.

Every test records what it tried through the ``faults`` fixture: ``bad_input()`` for each bad value,
file or flag handed to vidnets, ``fault()`` for each fault injected into a running job (a kill, a
flipped bit, a full or read-only disk, a concurrent writer), and ``lost()`` for each result found
missing or wrong afterwards (it must stay 0). The totals are printed in pytest's terminal summary.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COUNTS: Counter = Counter()


class FaultLog:
    def bad_input(self, n: int = 1) -> None:
        COUNTS["bad inputs tried"] += n

    def fault(self, n: int = 1) -> None:
        COUNTS["faults injected"] += n

    def lost(self, n: int = 1) -> None:
        COUNTS["data lost"] += n


@pytest.fixture
def faults() -> FaultLog:
    return FaultLog()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not COUNTS:
        return
    terminalreporter.section("fault injection")
    for key in ("bad inputs tried", "faults injected", "data lost"):
        terminalreporter.write_line(f"{key}: {COUNTS[key]}")


#: a tiny ``vidnets features`` run (res3d10's pooled features over 4-frame windows of 16² crops)
TINY_FEATURES = ["--model", "res3d10", "--layer", "pre_logits", "--window", "4", "--stride", "4"]
TINY_FEATURES += ["--resize", "24", "24", "--crop", "16", "--no-progress"]


def run_cli(capsys, args: list[str]) -> tuple[int, str]:
    """Run ``vidnets ARGS`` in this process; returns (exit status, stderr)."""
    from vidnets.cli import main

    capsys.readouterr()
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err


def assert_one_line_error(status: int, err: str, *needles: str) -> None:
    """Exit 2, a single ``error:`` line (no traceback) containing every needle."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def python_env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def spawn(args: list[str], **kwargs) -> subprocess.Popen:
    """``python -m vidnets ARGS`` as a child process (for kills)."""
    return subprocess.Popen(
        [sys.executable, "-m", "vidnets", *map(str, args)],
        env=python_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **kwargs,
    )


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> Path:
    """Synthetic UCF101-layout set: 2 classes × 3 videos of 16 frames, 24 px."""
    from vidnets.data.synthetic import generate_dataset

    return generate_dataset(
        tmp_path_factory.mktemp("faults-videos"), num_classes=2, videos_per_class=3, frames=16, size=24, seed=0
    )


def train_sets(root: Path, **extra) -> list[str]:
    sets = {
        "data.root": root,
        "model.name": "res3d10",
        "model.kwargs": "{width: 4}",
        "data.batch_size": 2,
        "data.num_workers": 0,
        "data.train_kwargs": "{frames: 4, size: 24, crop: 16, flip: false}",
        "data.test_kwargs": "{frames: 4, size: 24, crop: 16, views: 1}",
        "train.epochs": 1,
        "train.max_iters": "null",
        "train.progress": "false",
        "train.tensorboard": "false",
        "train.eval_every": -1,
        "schedule.kind": "constant",
        "train.precision": "fp32",
        "train.deterministic": "true",
        **extra,
    }
    out = []
    for key, value in sets.items():
        out += ["--set", f"{key}={value}"]
    return out


@pytest.fixture(scope="session")
def checkpoint(videos, tmp_path_factory) -> Path:
    """A checkpoint of a width-4 Res3D-10 trained for one epoch on ``videos``."""
    from vidnets.cli import main

    out = tmp_path_factory.mktemp("faults-run") / "run"
    assert main(["train", "res3d", "--out", str(out), *train_sets(videos)]) == 0
    return out / "last.pt"


@pytest.fixture(scope="session")
def corrupt_files(videos, tmp_path_factory) -> dict[str, Path]:
    """One file per way a video can be bad: missing, empty, not a video, truncated, garbled."""
    folder = tmp_path_factory.mktemp("faults-corrupt")
    good = sorted(videos.rglob("*.avi"))[0].read_bytes()
    files = {
        "missing": folder / "missing.avi",
        "empty": folder / "empty.avi",
        "text": folder / "text.mp4",
        "truncated": folder / "truncated.avi",
        "garbled": folder / "garbled.avi",
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not a video\n" * 50)
    files["truncated"].write_bytes(good[: len(good) // 3])
    garbled = bytearray(good)
    garbled[len(good) // 4 :] = bytes([0xA5]) * (len(good) - len(good) // 4)
    files["garbled"].write_bytes(bytes(garbled))
    return files
