"""Runs: never replaced without asking, logs never wiped, kills resume bit-exactly, bad disks reported."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import torch

from tests.faults.conftest import TINY_FEATURES, assert_one_line_error, run_cli, spawn, train_sets
from vidnets.engine.checkpoint import read_checkpoint
from vidnets.engine.plots import read_csv

pytestmark = pytest.mark.timeout(300)  # a kill that misses must not hang the suite


def _same_weights(a: Path, b: Path) -> list[str]:
    """Names of the model and optimizer tensors that differ between two checkpoints."""
    sa, sb = read_checkpoint(a), read_checkpoint(b)
    diff = [k for k in sa["model"] if not torch.equal(sa["model"][k], sb["model"][k])]
    for i, (x, y) in enumerate(zip(sa["optimizer"]["state"].values(), sb["optimizer"]["state"].values())):
        if not torch.equal(x["momentum_buffer"], y["momentum_buffer"]):
            diff.append(f"momentum {i}")
    return diff


# -- run folders and logs ---------------------------------------------------------------------------------------


def test_existing_run_is_not_replaced(videos, tmp_path, capsys, faults):
    out = tmp_path / "run"
    args = ["train", "res3d", "--out", out, *train_sets(videos)]
    assert run_cli(capsys, args)[0] == 0
    before = {name: (out / name).read_bytes() for name in ("last.pt", "epochs.csv", "log.csv")}
    status, err = run_cli(capsys, args)
    assert_one_line_error(status, err, str(out), "--resume", "--overwrite")
    assert all((out / name).read_bytes() == data for name, data in before.items())
    faults.bad_input()
    status, err = run_cli(capsys, [*args, "--overwrite", "--set", "train.seed=5"])
    assert status == 0, err
    assert (out / "last.pt").read_bytes() != before["last.pt"]
    assert len(read_csv(out / "epochs.csv")) == 1


def test_resume_appends_logs(videos, tmp_path, capsys, faults):
    out = tmp_path / "run"
    args = ["train", "res3d", "--out", out, *train_sets(videos)]
    assert run_cli(capsys, args)[0] == 0
    first = (out / "epochs.csv").read_text()
    assert run_cli(capsys, [*args, "--set", "train.epochs=3", "--resume", "auto"])[0] == 0
    after = (out / "epochs.csv").read_text()
    assert after.startswith(first) and [r["epoch"] for r in read_csv(out / "epochs.csv")] == ["1", "2", "3"]


def test_kill_right_after_start_up_keeps_the_logs(videos, tmp_path, capsys, faults):
    out = tmp_path / "run"
    args = ["train", "res3d", "--out", out, *train_sets(videos)]
    assert run_cli(capsys, args)[0] == 0
    logs = {name: (out / name).read_text() for name in ("epochs.csv", "log.csv")}
    rng = random.Random(3)
    for trial in range(3):
        process = spawn([*args, "--set", "train.epochs=50", "--resume", "auto"])
        time.sleep(rng.uniform(1.0, 4.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
        faults.fault()
        for name, text in logs.items():
            if not (out / name).read_text().startswith(text):
                faults.lost()
                pytest.fail(f"{name} lost rows after a kill at start-up (trial {trial})")
        read_checkpoint(out / "last.pt")


# -- SIGKILL during training, then resume: bit for bit -----------------------------------------------------------


def _kill_and_resume(videos, tmp_path, capsys, faults, workers: int, trials: int, kills: int) -> list[str]:
    from vidnets.models import create

    init = tmp_path / "init.pt"  # every run starts from these weights, whatever the process's RNG
    torch.save(create("res3d10", num_classes=2, width=4, dropout=0.3).state_dict(), init)
    sets = train_sets(
        videos,
        **{
            "train.epochs": 3,
            "train.checkpoint_every_iters": 1,
            "data.num_workers": workers,
            "train.log_every": 1,
            "model.kwargs": "{width: 4, dropout: 0.3}",
            "model.pretrained": init,
            "data.train_kwargs": "{frames: 4, size: 24, crop: 16, flip: true}",
        },
    )
    reference = tmp_path / "reference"
    uninterrupted = spawn(["train", "res3d", "--out", reference, *sets])  # a fresh process, like the killed ones
    assert uninterrupted.wait() == 0, uninterrupted.stderr.read().decode()
    uninterrupted.stderr.close()
    rng = random.Random(4 + workers)
    differences = []
    for trial in range(trials):
        out = tmp_path / f"killed{trial}"
        resume = []
        for kill in range(kills):  # kill the run, then kill its resumed continuation
            process = spawn(["train", "res3d", "--out", out, *resume, *sets])
            marker = out / "log.csv"
            steps = len(read_csv(marker))
            deadline = time.monotonic() + 60
            while len(read_csv(marker)) <= steps and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.3))
            process.send_signal(signal.SIGKILL)
            process.wait()
            process.stderr.close()
            faults.fault()
            resume = ["--resume", "auto"]
        resumed = spawn(["train", "res3d", "--out", out, "--resume", "auto", *sets])  # same threads as the reference
        assert resumed.wait() == 0, resumed.stderr.read().decode()
        resumed.stderr.close()
        differences += _same_weights(reference / "last.pt", out / "last.pt")
        kept = [r["train_loss"] for r in read_csv(out / "epochs.csv", unique="step")]
        if len(kept) != 3:
            faults.lost()
            pytest.fail(f"epochs.csv of the resumed run has {len(kept)} epochs")
    return differences


def test_sigkill_during_training_resumes_bit_exact_without_workers(videos, tmp_path, capsys, faults):
    assert _kill_and_resume(videos, tmp_path, capsys, faults, workers=0, trials=1, kills=2) == []


def test_sigkill_during_training_resumes_bit_exact_with_workers(videos, tmp_path, capsys, faults):
    assert _kill_and_resume(videos, tmp_path, capsys, faults, workers=2, trials=1, kills=1) == []


# -- read-only folder and full disk -----------------------------------------------------------------------------


@contextlib.contextmanager
def _mounted(folder: Path, options: str):
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@functools.lru_cache(maxsize=1)
def _can_mount() -> str | None:
    """None when a tmpfs can be mounted here, else why not (the skip reason)."""
    if os.geteuid() != 0:
        return "not root: a size-limited tmpfs cannot be mounted"
    if shutil.which("mount") is None:
        return "no mount command"
    probe = Path(tempfile.mkdtemp(prefix="vidnets-mount-probe-"))
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(probe)], capture_output=True)
        if done.returncode:
            return f"mount failed: {done.stderr.decode().strip() or done.returncode}"
        subprocess.run(["umount", str(probe)], check=False)
        return None
    finally:
        shutil.rmtree(probe, ignore_errors=True)


@contextlib.contextmanager
def _read_only(folder: Path):
    if _can_mount() is None:
        with _mounted(folder, "ro,size=64k"):
            yield folder
        return
    folder.mkdir()
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


def _entry_points(videos: Path, checkpoint: Path, target: Path) -> dict[str, list]:
    video = sorted(videos.rglob("*.avi"))[0]
    dump = checkpoint.parent / "dump.npz"
    return {
        "train": ["train", "res3d", "--out", target / "run", *train_sets(videos)],
        "test": ["test", checkpoint, "--out", target / "test"],
        "timeline": ["predict", checkpoint, video, "--timeline", "--out", target / "t"],
        "flow": ["flow", "extract", video, "--out", target / "flow", "--keep-size", "--method", "dis"],
        "features": [
            "features",
            video,
            "--output",
            target / "feat",
            *TINY_FEATURES,
        ],
        "synth": [
            "synth",
            target / "synth",
            "--classes",
            "2",
            "--videos-per-class",
            "2",
            "--frames",
            "4",
            "--size",
            "16",
        ],
        "fuse": ["fuse", dump, dump, "--output", target / "fused.npz"],
    }


@pytest.fixture(scope="module")
def score_dump(checkpoint, videos):
    from vidnets.cli import main

    assert main(["test", str(checkpoint), "--out", str(checkpoint.parent), "--prefix", "dump_src"]) == 0
    shutil.copy(checkpoint.parent / "dump_src_scores.npz", checkpoint.parent / "dump.npz")


@pytest.mark.parametrize("entry", ["train", "test", "timeline", "flow", "features", "synth", "fuse"])
def test_read_only_output_folder(videos, checkpoint, score_dump, tmp_path, capsys, faults, entry):
    if os.geteuid() == 0 and _can_mount() is not None:
        pytest.skip(f"root ignores permissions and {_can_mount()}")
    with _read_only(tmp_path / "ro") as folder:
        status, err = run_cli(capsys, _entry_points(videos, checkpoint, folder)[entry])
    assert_one_line_error(status, err, str(folder))
    faults.fault()


@pytest.mark.parametrize("entry", ["train", "test", "timeline", "flow", "features", "synth", "fuse"])
def test_full_disk(videos, checkpoint, score_dump, tmp_path, capsys, faults, entry):
    reason = _can_mount()
    if reason:
        pytest.skip(f"full-disk test needs a size-limited tmpfs: {reason}")
    with _mounted(tmp_path / "full", "size=32k") as folder:
        status, err = run_cli(capsys, _entry_points(videos, checkpoint, folder)[entry])
    assert_one_line_error(status, err, "No space left")
    faults.fault()


def test_disk_fills_during_a_resumed_run(videos, tmp_path, capsys, faults):
    reason = _can_mount()
    if reason:
        pytest.skip(f"full-disk test needs a size-limited tmpfs: {reason}")
    source = tmp_path / "source"
    args = ["train", "res3d", *train_sets(videos)]
    assert run_cli(capsys, [*args, "--out", source])[0] == 0
    with _mounted(tmp_path / "disk", "size=1400k") as disk:
        shutil.copytree(source, disk / "run")
        before = (disk / "run" / "last.pt").read_bytes()
        logs = (disk / "run" / "epochs.csv").read_text()
        free = shutil.disk_usage(disk).free
        (disk / "filler").write_bytes(b"\0" * max(free - 200 * 1024, 0))
        status, err = run_cli(capsys, [*args, "--out", disk / "run", "--resume", "auto", "--set", "train.epochs=2"])
        assert_one_line_error(status, err, "No space left")
        assert (disk / "run" / "last.pt").read_bytes() == before
        assert (disk / "run" / "epochs.csv").read_text().startswith(logs)
        assert not list((disk / "run").glob(".*.tmp"))
    faults.fault()
