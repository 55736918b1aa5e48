"""Colour-coded flow images: hue = direction, value = magnitude (saturation full), and RGB|flow strips.

``flow_to_color`` maps angle 0 (rightwards) to red and goes round the OpenCV hue circle; the magnitude is
divided by ``max_magnitude`` (default: the field's 99th percentile, so one outlier does not darken all)
and clipped to 1. ``show`` writes ``flow_00001.png`` … per field and ``strip.png`` with the RGB frames on
top and the colour flow below, for a stored flow folder or a video (flow computed on the fly). The strip
carries a key (``legend``): a colour wheel whose every point is coloured as a pixel moving from the
wheel's centre to that point, its rim being the magnitude that shows at full brightness (px/frame).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["flow_to_color", "make_strip", "legend", "with_legend", "show"]


def flow_to_color(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """(2, H, W) or (H, W, 2) float flow -> (H, W, 3) uint8 RGB."""
    import cv2

    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim == 3 and flow.shape[0] == 2 and flow.shape[-1] != 2:
        flow = flow.transpose(1, 2, 0)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow must be (2, H, W) or (H, W, 2), found {flow.shape}")
    magnitude, angle = cv2.cartToPolar(
        np.ascontiguousarray(flow[..., 0]), np.ascontiguousarray(flow[..., 1]), angleInDegrees=True
    )
    if max_magnitude is None:
        max_magnitude = float(np.percentile(magnitude, 99))
    value = np.clip(magnitude / max(max_magnitude, 1e-6), 0, 1)
    hsv = np.empty((*flow.shape[:2], 3), np.uint8)
    hsv[..., 0] = (angle / 2).astype(np.uint8)  # OpenCV hue is 0..179
    hsv[..., 1] = 255
    hsv[..., 2] = np.rint(value * 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def make_strip(frames: Sequence[np.ndarray], colors: Sequence[np.ndarray], max_columns: int = 8) -> np.ndarray:
    """Two rows: RGB frames above their flow colours, up to ``max_columns`` evenly chosen pairs."""
    import cv2

    count = min(len(frames), len(colors))
    if count == 0:
        raise ValueError("no frames to put in the strip")
    picks = np.unique(np.linspace(0, count - 1, min(count, max_columns)).round().astype(int))
    height, width = colors[0].shape[:2]
    top = [cv2.resize(frames[i], (width, height)) for i in picks]
    bottom = [colors[i] for i in picks]
    return np.concatenate([np.concatenate(top, axis=1), np.concatenate(bottom, axis=1)], axis=0)


#: the key's size in pixels (wide enough for its text at OpenCV's smallest legible font)
LEGEND_SIZE = (200, 180)  # (height, width)


def legend(max_magnitude: float, size: tuple[int, int] = LEGEND_SIZE) -> np.ndarray:
    """A key to :func:`flow_to_color` at ``max_magnitude``: ``(H, W, 3)`` uint8 RGB.

    A colour wheel on grey: each point has the colour of a pixel that moves from the centre towards
    it (so the right of the wheel is rightward motion, its bottom downward), brighter with distance;
    the rim is ``max_magnitude``, written below in px/frame.
    """
    import cv2

    height, width = size
    panel = np.full((height, width, 3), 64, np.uint8)
    radius = min(width - 20, height - 70) // 2
    ys, xs = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float32)
    wheel = flow_to_color(np.stack([xs, ys]) / radius, max_magnitude=1.0)
    inside = xs**2 + ys**2 <= radius**2
    top, left = 8, (width - 2 * radius - 1) // 2
    region = panel[top : top + 2 * radius + 1, left : left + 2 * radius + 1]
    region[inside] = wheel[inside]
    centre = (left + radius, top + radius)
    cv2.circle(panel, centre, radius, (255, 255, 255), 1, cv2.LINE_AA)
    for dx, dy, text in ((1, 0, "right"), (0, 1, "down")):  # two directions named; the hue does the rest
        at = (centre[0] + dx * (radius - 34) - 14 * dy, centre[1] + dy * (radius - 12) + 4)
        glyphs = np.zeros((height, width), np.uint8)
        cv2.putText(glyphs, text, at, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 255, 1, cv2.LINE_AA)
        panel[cv2.dilate(glyphs, np.ones((3, 3), np.uint8)) > 0] = 0  # a dark halo: legible on any hue
        cv2.putText(panel, text, at, cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    lines = ("colour: direction of motion", "brightness: speed", f"rim: {max_magnitude:.2f} px/frame")
    for i, text in enumerate(lines):
        cv2.putText(
            panel,
            text,
            (6, top + 2 * radius + 18 + 16 * i),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.38,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return panel


def with_legend(image: np.ndarray, max_magnitude: float) -> np.ndarray:
    """``image`` with the :func:`legend` at its right (the shorter of the two padded with black below)."""
    key = legend(max_magnitude)
    height = max(image.shape[0], key.shape[0])

    def pad(part: np.ndarray) -> np.ndarray:
        return np.pad(part, ((0, height - part.shape[0]), (0, 0), (0, 0)))

    return np.concatenate([pad(image), pad(key)], axis=1)


def _rgb_frames(video: str | Path, size: tuple[int, int], limit: int) -> list[np.ndarray]:
    """The first ``limit`` frames of ``video`` as RGB at ``size`` = (H, W)."""
    from itertools import islice

    from vidnets.data.video import iter_frames

    return list(islice(iter_frames(video, size=size), limit))


def _rawframes(folder: Path, limit: int) -> list[np.ndarray]:
    import cv2

    names = sorted(folder.glob("img_*.jpg"))[:limit]
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in names]


def show(
    source: str | Path,
    out_dir: str | Path,
    *,
    max_fields: int = 16,
    method: str = "dis",
    short_side: int | None = 256,
    video: str | Path | None = None,
    field_legend: bool = False,
) -> list[Path]:
    """Write colour PNGs and ``strip.png`` for a flow folder or a video; returns the written paths.

    For a flow folder the RGB frames come from ``video`` if given, else the video named in meta.json,
    else ``img_*.jpg`` in the same folder (raw-frame datasets); without any, the strip has flow only.
    All fields share one brightness scale, the largest of their 99th percentiles of the magnitude; the
    strip carries its :func:`legend`, and so does every field's PNG with ``field_legend``.
    """
    import cv2

    from vidnets.flow.extract import iter_gray_frames, make_flow_fn
    from vidnets.flow.store import FlowFrames

    source, out_dir = Path(source), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        flow = FlowFrames(source)
        fields = [flow.read(i) for i in range(min(flow.num_fields, max_fields))]
        rgb_source = video or (flow.meta.video if flow.meta else None)
    else:
        flow_fn = make_flow_fn(method)
        fields, previous = [], None
        for gray in iter_gray_frames(source, short_side):
            if previous is not None:
                fields.append(flow_fn(previous, gray).transpose(2, 0, 1))
                if len(fields) >= max_fields:
                    break
            previous = gray
        rgb_source = source
    if not fields:
        raise ValueError(f"{source}: no flow fields to show")
    height, width = fields[0].shape[-2:]
    if rgb_source and Path(rgb_source).is_file():
        frames = _rgb_frames(rgb_source, (height, width), len(fields))
    elif source.is_dir():
        frames = _rawframes(source, len(fields))
    else:
        frames = []
    scale = max(float(np.percentile(np.hypot(f[0], f[1]), 99)) for f in fields)  # one scale for all
    colors = [flow_to_color(f, scale) for f in fields]
    written = []
    for i, color in enumerate(colors):
        path = out_dir / f"flow_{i + 1:05d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(with_legend(color, scale) if field_legend else color, cv2.COLOR_RGB2BGR))
        written.append(path)
    strip = make_strip(frames, colors) if frames else np.concatenate(colors[:8], axis=1)
    strip = with_legend(strip, scale)
    path = out_dir / "strip.png"
    cv2.imwrite(str(path), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    written.append(path)
    return written
