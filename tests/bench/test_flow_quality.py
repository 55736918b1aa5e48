"""benchmarks/flow_quality.py: its synthetic pairs carry their exact true flow, and a quick run reports."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import flow_quality  # noqa: E402


def _warp_back(second: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """second(p + flow(p)) for every pixel p, bicubic."""
    import cv2

    height, width = second.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    flow = flow.astype(np.float32)
    return cv2.remap(second.astype(np.float32), xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_CUBIC)


def test_true_flow_maps_first_onto_second():
    """For each case, following the true flow into the second frame gives back the first one (up to
    interpolation and the case's own noise), and a flow off by one pixel does not."""
    cases = flow_quality.make_cases(96, 72)
    assert [c.name for c in cases][-1].startswith("object")
    for case in cases:
        keep = case.valid.copy()
        keep[:3], keep[-3:], keep[:, :3], keep[:, -3:] = False, False, False, False
        error = np.abs(_warp_back(case.second, case.flow) - case.first)[keep].mean()
        wrong = np.abs(_warp_back(case.second, case.flow + (1, 0)) - case.first)[keep].mean()
        assert error < (7 if "noise" in case.name else 2.5) < wrong, case.name
    obj = cases[-1]
    assert set(map(tuple, obj.flow[obj.object_mask])) == {(6.0, -3.0)}
    assert not obj.flow[~obj.object_mask].any() and (~obj.valid).sum() > 0  # occluded background not scored


def test_end_point_error_scores_only_valid_pixels():
    case = flow_quality.make_cases(96, 72)[-1]
    assert flow_quality.end_point_error(case.flow, case) == 0
    off = case.flow.copy()
    off[~case.valid] += 100  # errors where nothing is scored do not count
    assert flow_quality.end_point_error(off, case) == 0
    assert flow_quality.end_point_error(case.flow + (3, 4), case) == 5


def test_quick_run_reports_every_case(capsys):
    assert flow_quality.main(["--quick", "--no-write", "--only", "dis", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "| dis medium (vidnets' dis) |" in out and "EPE object alone" in out and "UCF101" in out
    assert "tvl1" not in out.split("### End-point error")[1].split("###")[0]
