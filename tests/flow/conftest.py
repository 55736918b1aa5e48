"""Synthetic inputs with known flow, and tiny encoded videos, for the flow tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """Smoothed random noise, uint8: enough texture for every flow method to lock on."""
    import cv2

    noise = np.random.default_rng(seed).random((height, width)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), 1.5)
    return ((noise - noise.min()) / (noise.max() - noise.min()) * 255).astype(np.uint8)


def affine_pair(image: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """second(M p) = first(p), so the true flow at p is M p - p; returns (second, flow (H, W, 2))."""
    import cv2

    height, width = image.shape
    second = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    flow = np.stack(
        [
            matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2] - xs,
            matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2] - ys,
        ],
        axis=-1,
    )
    return second, flow


def write_video(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    """Encode grayscale uint8 frames as a lossless-ish H.264 mp4 (PyAV)."""
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "10", "preset": "ultrafast"}
        for gray in frames:
            rgb = np.repeat(gray[..., None], 3, axis=2)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def panning_frames(count: int, size: int = 64, step: int = 2, seed: int = 0) -> list[np.ndarray]:
    """A window sliding right over a large texture by ``step`` px per frame (scene moves left)."""
    big = texture(size, size + step * count, seed)
    return [np.ascontiguousarray(big[:, i * step : i * step + size]) for i in range(count)]


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory) -> list[Path]:
    """Three 64×64 clips of 8 frames each, panning at 2, 1 and 3 px/frame."""
    root = tmp_path_factory.mktemp("videos")
    return [
        write_video(root / f"clip{i}.mp4", panning_frames(8, step=step, seed=i)) for i, step in enumerate((2, 1, 3))
    ]
