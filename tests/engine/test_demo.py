"""``vidnets demo --quick``: generates data, trains the 3D net and the 2D baseline, prints the table."""

from __future__ import annotations

import json

import pytest

from vidnets.cli import main


@pytest.mark.slow
def test_demo_quick(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "clip top-1" in out and "chance" in out and "curves" in out
    three_d = json.loads((tmp_path / "3d_clips_quick" / "test_metrics.json").read_text())
    two_d = json.loads((tmp_path / "2d_single_frame_quick" / "test_metrics.json").read_text())
    for run in ("3d_clips_quick", "2d_single_frame_quick"):
        for name in ("curves.png", "test_confusion.png", "last.pt"):
            assert (tmp_path / run / name).is_file()
    # Single frames carry no class information by construction; motion does.
    assert three_d["clip_top1"] > three_d["chance"] + 0.1, three_d
    assert three_d["video_top1"] > two_d["video_top1"], (three_d, two_d)
