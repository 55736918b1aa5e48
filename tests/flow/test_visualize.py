from __future__ import annotations

import numpy as np
import pytest

from vidnets.flow.commands import main as cli_main
from vidnets.flow.visualize import LEGEND_SIZE, flow_to_color

from .conftest import texture, write_video


@pytest.mark.parametrize(
    "vector, rgb",
    [
        ((3, 0), (255, 0, 0)),  # right: red
        ((-3, 0), (0, 255, 255)),  # left: cyan
        ((0, 3), (127, 255, 0)),
    ],
)  # down (90°): yellow-green
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
    assert strip.shape == (480, 5 * 320 + LEGEND_SIZE[1], 3)  # RGB frames above, flow below, the key beside
    assert strip[:240, :1600].mean() > strip[240:, :1600].mean()  # the top row is the photographs


def moving_object_clip(path, frames: int = 10, step=(3, -1)):
    """A still background of fine texture with sensor noise, and a small textured square moving
    ``step`` px/frame: 96×128 px. Returns the video and the square's (x, y, side) per frame."""
    rng = np.random.default_rng(0)
    background = 128 + (texture(96, 128, seed=1).astype(np.float32) - 128) * 0.3
    patch, side, boxes, images = texture(14, 14, seed=2), 14, [], []
    for t in range(frames):
        x, y = 30 + step[0] * t, 50 + step[1] * t
        image = background + rng.normal(0, 4, background.shape)  # static scene, noisy sensor
        image[y : y + side, x : x + side] = patch
        images.append(np.clip(image, 0, 255).astype(np.uint8))
        boxes.append((x, y, side))
    return write_video(path, images), boxes


def test_moving_object_is_visible_and_the_strip_has_a_key(tmp_path):
    """On a still, noisy background a small moving object must stand out (brightness is scaled to a
    percentile of the magnitude, not its maximum), and the strip carries the colour key."""
    import cv2

    video, boxes = moving_object_clip(tmp_path / "object.mp4")
    assert cli_main(["flow", "show", str(video), "--out", str(tmp_path / "viz"), "--max-fields", "6"]) == 0
    scale = 256 / 96  # flow of a video is computed at short side 256
    for i in (1, 4):
        value = cv2.imread(str(tmp_path / "viz" / f"flow_{i + 1:05d}.png")).max(axis=2).astype(float)  # HSV value
        x, y, side = (round(v * scale) for v in boxes[i])
        inner = value[y + 6 : y + side - 6, x + 6 : x + side - 6]
        away = np.ones_like(value, bool)
        away[max(0, y - 40) : y + side + 40, max(0, x - 40) : x + side + 40] = False
        assert inner.mean() > 120 and inner.mean() > 4 * value[away].mean(), (inner.mean(), value[away].mean())

    strip = cv2.imread(str(tmp_path / "viz" / "strip.png"))
    width = 6 * round(128 * scale)  # six fields (RGB above flow), then the key
    assert strip.shape[1] == width + LEGEND_SIZE[1]
    hsv = cv2.cvtColor(np.ascontiguousarray(strip[: LEGEND_SIZE[0], width:]), cv2.COLOR_BGR2HSV)
    vivid = hsv[(hsv[..., 1] > 200) & (hsv[..., 2] > 200)]
    assert len(np.unique(vivid[:, 0] // 10)) == 18  # every hue of the wheel
    assert (
        cli_main(["flow", "show", str(video), "--out", str(tmp_path / "fields"), "--max-fields", "2", "--field-legend"])
        == 0
    )
    assert cv2.imread(str(tmp_path / "fields" / "flow_00001.png")).shape[1] == round(128 * scale) + LEGEND_SIZE[1]
