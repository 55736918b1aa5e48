from __future__ import annotations

import numpy as np
import pytest

from vidnets.flow.commands import main as cli_main
from vidnets.flow.visualize import flow_to_color


@pytest.mark.parametrize("vector, rgb", [((3, 0), (255, 0, 0)),     # right: red
                                         ((-3, 0), (0, 255, 255)),  # left: cyan
                                         ((0, 3), (127, 255, 0))])  # down (90°): yellow-green
def test_hue_is_direction_and_value_is_magnitude(vector, rgb):
    flow = np.zeros((2, 4, 6), np.float32)
    flow[0, :, 3:], flow[1, :, 3:] = vector
    flow[:, 0, 5] = np.array(vector) / 3  # a third of the magnitude: a third of the value
    color = flow_to_color(flow, max_magnitude=3.0).astype(int)
    assert color.shape == (4, 6, 3)
    assert (color[:, :3] == 0).all()  # no motion: black
    assert np.abs(color[1, 4] - rgb).max() <= 2
    assert max(color[0, 5]) == pytest.approx(85, abs=2)


def test_show_writes_pngs_and_strip(tiny_videos, tmp_path, shared_videos):
    import cv2

    assert cli_main(["flow", "show", str(tiny_videos[0]), "--out", str(tmp_path / "video"), "--max-fields", "4"]) == 0
    strip = cv2.imread(str(tmp_path / "video" / "strip.png"))
    assert strip.shape[0] == 2 * 256 and len(list((tmp_path / "video").glob("flow_*.png"))) == 4  # 64 -> 256
    rawframes = shared_videos / "mmaction2" / "rawframes_test_avi"
    assert cli_main(["flow", "show", str(rawframes), "--out", str(tmp_path / "raw")]) == 0
    strip = cv2.imread(str(tmp_path / "raw" / "strip.png"))
    assert strip.shape == (480, 5 * 320, 3)  # RGB frames above, flow below
    assert strip[:240].mean() > strip[240:].mean()  # the top row is the photographs
