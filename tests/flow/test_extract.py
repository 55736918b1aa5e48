from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.flow.conftest import panning_frames, write_video
from vidnets.flow import store
from vidnets.flow.commands import main as cli_main
from vidnets.flow.extract import FlowOptions, extract_video, extract_videos

REPO = Path(__file__).resolve().parents[2]
KEEP = dict(short_side=None)  # tiny clips: no resizing


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_extracted_flow_matches_the_pan(tiny_videos, tmp_path, method):
    """The clips pan right by 2, 1, 3 px/frame, so the scene moves left: x ≈ -step, y ≈ 0."""
    results = extract_videos(tiny_videos, tmp_path, FlowOptions(method=method, **KEEP), progress=False)
    assert [r.status for r in results] == ["done"] * 3
    for video, step in zip(tiny_videos, (2, 1, 3)):
        frames = store.FlowFrames(store.flow_dir_for(tmp_path, video))
        meta = frames.meta
        recorded = (meta.method, meta.bound, meta.jpeg_quality, meta.num_frames, meta.num_fields)
        assert recorded == (method, 20.0, 95, 8, 7)
        assert (meta.width, meta.height) == (64, 64) and len(frames) == 7
        flow = frames.read_many(range(7))[:, :, 10:-10, 10:-10]
        assert np.median(flow[:, 0]) == pytest.approx(-step, abs=0.25)
        assert np.median(flow[:, 1]) == pytest.approx(0, abs=0.25)


def test_backward_warp_and_resize(tiny_videos, tmp_path):
    options = FlowOptions(method="dis", backward=True, size=(48, 40))
    result = extract_video(tiny_videos[0], tmp_path, options)
    assert result.status == "done" and result.fields == 7 and result.bytes > 0
    frames = store.FlowFrames(store.flow_dir_for(tmp_path, tiny_videos[0]))
    assert frames.has_backward and frames.read(0).shape == (2, 40, 48)
    forward, backward = frames.read(3), frames.read(3, backward=True)
    # the pan is 2 px at 64 px wide -> 1.5 px at 48; backward flow points the other way
    assert np.median(forward[0, 8:-8, 8:-8]) == pytest.approx(-1.5, abs=0.3)
    assert np.median(backward[0, 8:-8, 8:-8]) == pytest.approx(1.5, abs=0.3)
    # a pure pan is all camera motion: warped flow is ~0
    warped = extract_video(tiny_videos[0], tmp_path / "warp", FlowOptions(method="dis", warp=True, **KEEP))
    assert warped.status == "done"
    flow = store.FlowFrames(store.flow_dir_for(tmp_path / "warp", tiny_videos[0]))
    assert flow.meta.warp
    residual = np.median(flow.read_many(range(7))[:, :, 10:-10, 10:-10], axis=(0, 2, 3))
    assert np.abs(residual).max() < 0.2


def test_bad_videos_are_reported_and_skipped(tiny_videos, tmp_path, capsys):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    one_frame = write_video(tmp_path / "single.mp4", panning_frames(1))
    videos = [str(garbage), str(tiny_videos[1]), str(tmp_path / "missing.avi"), str(one_frame)]
    status = cli_main(
        ["flow", "extract", *videos, "--out", str(tmp_path / "out"), "--method", "farneback", "--keep-size"]
    )
    assert status == 1
    err = capsys.readouterr().err
    for name in ("garbage.mp4", "missing.avi", "single.mp4"):
        assert name in err
    # no partial folders left (the lock folder stays: see vidnets.flow.extract)
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != ".vidnets-locks") == ["clip1"]
    assert (
        cli_main(
            [
                "flow",
                "extract",
                str(tiny_videos[1]),
                "--out",
                str(tmp_path / "out"),
                "--method",
                "farneback",
                "--keep-size",
            ]
        )
        == 0
    )


def test_shards_are_disjoint_and_cover_all(tiny_videos, tmp_path, monkeypatch):
    options = FlowOptions(method="farneback", **KEEP)
    first = extract_videos(tiny_videos, tmp_path, options, shard="0/2", progress=False)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    second = extract_videos(tiny_videos, tmp_path, options, progress=False)
    assert [Path(r.video).name for r in first] == ["clip0.mp4", "clip2.mp4"]
    assert [Path(r.video).name for r in second] == ["clip1.mp4"]
    assert all(store.is_complete(store.flow_dir_for(tmp_path, v)) for v in tiny_videos)


def test_incomplete_folders_are_redone(tiny_videos, tmp_path):
    options = FlowOptions(method="farneback", **KEEP)
    reference = tmp_path / "reference"
    extract_videos(tiny_videos[:2], reference, options, progress=False)
    resumed = tmp_path / "resumed"
    extract_videos(tiny_videos[:1], resumed, options, progress=False)
    # a stale partial folder and a final folder without meta.json, as other tools or crashes leave them
    (resumed / ".clip1.partial").mkdir()
    (resumed / ".clip1.partial" / "flow_x_00001.jpg").write_bytes(b"junk")
    (resumed / "clip1").mkdir()
    (resumed / "clip1" / "flow_x_00009.jpg").write_bytes(b"junk")
    results = extract_videos(tiny_videos[:2], resumed, options, progress=False)
    assert [r.status for r in results] == ["skipped", "done"]
    assert _tree(resumed) == _tree(reference)


def test_killed_run_resumes_to_identical_output(tiny_videos, tmp_path):
    """SIGKILL a real extraction right after its first video completes; rerunning gives the same files."""
    videos = [str(v) for v in tiny_videos] + [str(write_video(tmp_path / "clip3.mp4", panning_frames(12, seed=5)))]
    args = ["flow", "extract", *videos, "--method", "tvl1", "--keep-size"]
    reference = tmp_path / "reference"
    assert cli_main([*args, "--out", str(reference)]) == 0

    killed = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-m", "vidnets.flow.commands", *args, "--out", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (killed / "clip0" / "meta.json").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = [v for v in videos if store.is_complete(store.flow_dir_for(killed, v))]
    assert 1 <= len(done) < len(videos), "the kill should land mid-run"
    assert cli_main([*args, "--out", str(killed)]) == 0
    assert _tree(killed) == _tree(reference)


def test_parallel_workers_match_serial(tiny_videos, tmp_path):
    options = FlowOptions(method="dis", **KEEP)
    extract_videos(tiny_videos, tmp_path / "serial", options, progress=False)
    results = extract_videos(tiny_videos, tmp_path / "pool", options, workers=2, progress=False)
    assert [Path(r.video).name for r in results] == ["clip0.mp4", "clip1.mp4", "clip2.mp4"]
    assert _tree(tmp_path / "pool") == _tree(tmp_path / "serial")


def test_options_are_validated():
    with pytest.raises(ValueError, match="--method"):
        FlowOptions(method="brox")
    with pytest.raises(ValueError, match="--bound"):
        FlowOptions(bound=0)
    with pytest.raises(ValueError, match="--dis-preset"):
        FlowOptions(method="dis", dis_preset="fine")


def test_cli_keeps_colliding_stems_apart_and_rejects_bad_shard(tiny_videos, tmp_path, capsys):
    twin = tmp_path / "other"
    twin.mkdir()
    (twin / "clip0.mp4").write_bytes(tiny_videos[0].read_bytes())
    out = ["--out", str(tmp_path / "out")]
    assert cli_main(["flow", "extract", str(tiny_videos[0]), str(twin / "clip0.mp4"), "--keep-size", *out]) == 0
    metas = sorted((tmp_path / "out").rglob("meta.json"))
    assert len(metas) == 2 and all(m.parent.name == "clip0" for m in metas)
    for video in (tiny_videos[0], twin / "clip0.mp4"):
        folder = store.flow_dir_for(tmp_path / "out", video)
        assert store.same_video(store.read_meta(folder), video)
    assert cli_main(["flow", "extract", str(tiny_videos[0]), "--shard", "3/2", *out]) == 2
    assert "--shard" in capsys.readouterr().err
    assert cli_main(["flow", "extract", str(tiny_videos[0]), "--bound", "-1", *out]) == 2


def test_extract_with_no_existing_video_is_a_one_line_error(tmp_path, capsys):
    assert cli_main(["flow", "extract", str(tmp_path / "nothere.mp4"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no such video file" in err and "nothere.mp4" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_flow_written_with_other_method_parameters_is_stale(tiny_videos, tmp_path, capsys):
    """Folders from before the parameters were recorded, or with other TV-L1 scales / DIS preset, are
    never taken as complete: the run stops before any work (one line, exit 2); --overwrite recomputes."""
    import json

    video, out = tiny_videos[0], tmp_path / "out"
    assert extract_video(video, out, FlowOptions(method="tvl1", **KEEP)).status == "done"
    meta_path = store.flow_dir_for(out, video) / store.META_NAME
    meta = json.loads(meta_path.read_text())
    assert meta["params"]["scales"] == 0 and meta["params"]["median_filtering"] == 5
    args = ["flow", "extract", str(video), "--out", str(out), "--keep-size"]
    assert cli_main([*args, "--tvl1-scales", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "other settings" in err and "scales 0 (asked 5)" in err and len(err.splitlines()) == 1
    del meta["params"]  # as written by an older vidnets: OpenCV's 5 scales, not recorded
    meta_path.write_text(json.dumps(meta))
    before = _tree(out)
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "scales 5 (asked 0)" in err and "older vidnets" in err and "--overwrite" in err
    assert len(err.splitlines()) == 1 and _tree(out) == before
    assert cli_main([*args, "--tvl1-scales", "5"]) == 0 and _tree(out) == before  # what it holds: reused
    assert cli_main([*args, "--overwrite"]) == 0
    assert json.loads(meta_path.read_text())["params"] == FlowOptions(method="tvl1").method_params()
    dis = ["flow", "extract", str(tiny_videos[1]), "--out", str(out), "--keep-size", "--method", "dis"]
    assert cli_main([*dis, "--dis-preset", "fast"]) == 0
    assert cli_main(dis) == 2 and "preset 'fast' (asked 'medium')" in capsys.readouterr().err
    assert cli_main([*dis, "--dis-preset", "medium", "--overwrite"]) == 0
    dis_meta = store.flow_dir_for(out, tiny_videos[1]) / store.META_NAME
    old = json.loads(dis_meta.read_text())
    del old["params"]  # DIS output did not change: an older vidnets' DIS flow is still complete
    dis_meta.write_text(json.dumps(old))
    assert cli_main(dis) == 0 and "1 already complete" in capsys.readouterr().out
    assert cli_main([*args, "--tvl1-scales", "-1"]) == 2
