"""Checkpoints: flipped bits, truncation, malicious pickles at every loader, non-finite weights, kills."""

from __future__ import annotations

import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.faults.conftest import assert_one_line_error, python_env, run_cli, train_sets
from vidnets.engine.checkpoint import CheckpointError, read_checkpoint, save_checkpoint

pytestmark = pytest.mark.timeout(300)  # a kill that misses must not hang the suite


# -- bit flips and truncation ---------------------------------------------------------------------------------


def _tensor_spans(path: Path) -> list[tuple[int, int]]:
    """Byte ranges of the tensor storages inside a torch zip checkpoint."""
    import struct
    import zipfile

    data = path.read_bytes()
    spans = []
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if "/data/" in info.filename and info.file_size >= 8:
                name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
                start = info.header_offset + 30 + name_len + extra_len  # the local header's own lengths
                spans.append((start, start + info.file_size))
    return spans


def test_bit_flips_inside_tensors_are_caught(checkpoint, tmp_path, faults):
    data = checkpoint.read_bytes()
    spans = _tensor_spans(checkpoint)
    assert spans
    rng = random.Random(0)
    for trial in range(12):
        start, end = rng.choice(spans)
        offset = rng.randrange(start, end)
        flipped = bytearray(data)
        flipped[offset] ^= 1 << rng.randrange(8)
        path = tmp_path / f"flip{trial}.pt"
        path.write_bytes(bytes(flipped))
        with pytest.raises(CheckpointError, match="checksum|cannot be loaded"):
            read_checkpoint(path)
        faults.fault()


def test_bit_flips_anywhere_never_give_other_weights(checkpoint, tmp_path, faults):
    original = read_checkpoint(checkpoint)["model"]
    data = checkpoint.read_bytes()
    rng = random.Random(1)
    for trial in range(20):
        flipped = bytearray(data)
        flipped[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path = tmp_path / f"any{trial}.pt"
        path.write_bytes(bytes(flipped))
        faults.fault()
        try:
            state = read_checkpoint(path)
        except (CheckpointError, FileNotFoundError):
            continue
        for key, value in original.items():  # a flip in zip metadata may be harmless, never silent damage
            if not torch.equal(state["model"][key], value):
                faults.lost()
                pytest.fail(f"flip {trial} changed {key} without an error")


def test_predict_refuses_a_flipped_checkpoint(checkpoint, videos, tmp_path, capsys, faults):
    start, end = _tensor_spans(checkpoint)[0]
    flipped = bytearray(checkpoint.read_bytes())
    flipped[(start + end) // 2] ^= 0x40
    path = tmp_path / "flipped.pt"
    path.write_bytes(bytes(flipped))
    status, err = run_cli(capsys, ["predict", path, sorted(videos.rglob("*.avi"))[0]])
    assert_one_line_error(status, err, "flipped.pt", "checksum")
    faults.fault()


@pytest.mark.parametrize("keep", [0, 100, 0.5, 0.99])
def test_resume_from_a_truncated_checkpoint(checkpoint, videos, tmp_path, capsys, faults, keep):
    data = checkpoint.read_bytes()
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(data[: int(keep * len(data)) if isinstance(keep, float) else keep])
    status, err = run_cli(
        capsys, ["train", "res3d", "--out", out, "--resume", "auto", *train_sets(videos, **{"train.epochs": 2})]
    )
    if keep == 0:  # an empty file is "no checkpoint": a 0-byte last.pt is still refused below
        assert status == 2
    else:
        assert_one_line_error(status, err, "last.pt")
    faults.fault()


# -- non-finite weights ------------------------------------------------------------------------------------------


def test_nonfinite_weights_are_never_saved(tmp_path, faults):
    model = torch.nn.Linear(3, 2)
    path = tmp_path / "last.pt"
    save_checkpoint(path, model=model)
    before = path.read_bytes()
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    with pytest.raises(CheckpointError, match="NaN or inf"):
        save_checkpoint(path, model=model)
    assert path.read_bytes() == before and not list(tmp_path.glob(".*.tmp"))
    faults.fault()


def test_nan_lr_is_refused_before_training(videos, tmp_path, capsys, faults):
    status, err = run_cli(
        capsys, ["train", "res3d", "--out", tmp_path / "run", *train_sets(videos), "--set", "optim.lr=.nan"]
    )
    assert_one_line_error(status, err, "optim.lr", "finite")
    assert not (tmp_path / "run" / "last.pt").exists()
    faults.bad_input()


def test_predict_refuses_an_old_nan_checkpoint(checkpoint, videos, tmp_path, capsys, faults):
    state = torch.load(checkpoint, weights_only=True)
    state.pop("checksum")
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name] = torch.full_like(state["model"][name], float("nan"))
    torch.save(state, tmp_path / "nan.pt")
    status, err = run_cli(capsys, ["predict", tmp_path / "nan.pt", sorted(videos.rglob("*.avi"))[0]])
    assert_one_line_error(status, err, "nan.pt", "NaN")
    faults.bad_input()


# -- malicious pickles at every loader ---------------------------------------------------------------------------


class Payload:
    """Unpickling this touches a marker file (standing in for any code an attacker would run)."""

    marker = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _malicious_files(tmp_path: Path) -> dict[str, Path]:
    Payload.marker = str(tmp_path / "PWNED")
    files = {}
    files["torch"] = tmp_path / "evil.pt"
    torch.save({"format": "vidnets-checkpoint/1", "model": {}, "x": Payload()}, files["torch"])
    files["raw"] = tmp_path / "evil_raw.pt"
    files["raw"].write_bytes(pickle.dumps({"model": Payload()}))
    files["npz"] = tmp_path / "evil.npz"
    np.savez(files["npz"], logits=np.array([Payload()], dtype=object), labels=np.zeros(1))
    files["npy"] = tmp_path / "evil.npy"
    np.save(files["npy"], np.array([Payload()], dtype=object))
    files["yaml"] = tmp_path / "evil.yaml"
    files["yaml"].write_text(f"recipe: x\nsource: !!python/object/apply:pathlib.Path.touch [{tmp_path / 'PWNED'}]\n")
    return files


def test_malicious_pickles_and_yaml_tags_at_every_loader(videos, tmp_path, capsys, faults):
    files = _malicious_files(tmp_path)
    marker = tmp_path / "PWNED"
    video = sorted(videos.rglob("*.avi"))[0]
    attempts = [
        ["predict", files["torch"], video],
        ["predict", files["raw"], video],
        ["test", files["torch"]],
        ["test", files["raw"]],
        ["train", "res3d", "--out", tmp_path / "r1", "--resume", files["torch"], *train_sets(videos)],
        ["train", "res3d", "--out", tmp_path / "r2", *train_sets(videos), "--set", f"model.pretrained={files['raw']}"],
        ["features", video, "--output", tmp_path / "f", "--checkpoint", files["torch"]],
        ["fuse", files["npz"], files["npz"]],
        ["train", files["yaml"], "--out", tmp_path / "r3"],
        [
            "train",
            "res3d",
            "--out",
            tmp_path / "r4",
            "--set",
            f"train.out_dir=!!python/object/apply:pathlib.Path.touch [{marker}]",
        ],
    ]
    for args in attempts:
        status, err = run_cli(capsys, args)
        assert status == 2 and "Traceback" not in err, (args, err)
        assert not marker.exists(), args
        faults.bad_input()
    from vidnets.methods.descriptors import read_feature_file

    for name in ("npz", "npy"):
        with pytest.raises(ValueError):
            read_feature_file(files[name])
        faults.bad_input()
    assert not marker.exists()


# -- SIGKILL while a checkpoint is written ------------------------------------------------------------------------

WRITER = """
import sys, torch
from vidnets.engine.checkpoint import save_checkpoint
model = torch.nn.Linear(256, 256)
i = 0
while True:
    with torch.no_grad():
        model.weight.fill_(float(i)); model.bias.fill_(float(i))
    save_checkpoint(sys.argv[1], model=model, step=i)
    i += 1
    print(i, flush=True)
"""


def test_sigkill_while_writing_checkpoints(tmp_path, faults):
    from vidnets.utils.io import remove_stale_temps

    path = tmp_path / "last.pt"
    rng = random.Random(2)
    for trial in range(4):
        process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)],
            env=python_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        process.stdout.readline()  # one checkpoint is complete
        time.sleep(rng.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        faults.fault()
        state = read_checkpoint(path)  # never half-written: loads, checksum holds
        step = state["step"]
        assert torch.equal(state["model"]["weight"], torch.full((256, 256), float(step)))
        remove_stale_temps(tmp_path)
        assert not list(tmp_path.glob(".*.tmp"))


def test_stale_temp_files_are_removed_when_a_run_starts(videos, tmp_path, capsys, faults):
    out = tmp_path / "run"
    out.mkdir()
    stale = out / ".last.pt.abc123xy.tmp"
    stale.write_bytes(b"\0" * 4096)
    status, err = run_cli(capsys, ["train", "res3d", "--out", out, *train_sets(videos)])
    assert status == 0, err
    assert not stale.exists() and (out / "last.pt").is_file()
    faults.fault()
