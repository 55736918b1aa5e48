"""Raw-frame folders: one JPEG per frame, as written by the usual extraction scripts.

Naming conventions that are recognised (1-based numbering, 5 digits)::

    img_00001.jpg                        RGB frames (TSN / mmaction2)
    flow_x_00001.jpg, flow_y_00001.jpg   optical flow, x and y (TSN / dense_flow)
    x_00001.jpg, y_00001.jpg             optical flow, x and y (mmaction2)

Flow images are 8-bit greyscale with 127.5 meaning zero motion. ``read_frame_folder`` returns
RGB as uint8 ``(T, H, W, 3)`` and flow as uint8 ``(T, H, W, 2)`` (x, y); resized flow has its
vectors scaled with the image (x by W'/W, y by H'/H).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from vidnets.data.transforms import is_flow, scale_flow_vectors
from vidnets.data.video import VideoError, output_size

RGB_TEMPLATES = ("img_{:05d}.jpg",)
FLOW_TEMPLATES = (("flow_x_{:05d}.jpg", "flow_y_{:05d}.jpg"), ("x_{:05d}.jpg", "y_{:05d}.jpg"))
_NUMBERED = re.compile(r"^(img_|flow_x_|flow_y_|x_|y_)(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)


def count_frames(folder: str | os.PathLike, modality: str = "rgb") -> int:
    """Frames in a raw-frame folder: RGB images, or flow (x, y) pairs when ``modality="flow"``."""
    names = os.listdir(folder)
    prefixes: dict[str, int] = {}
    for name in names:
        m = _NUMBERED.match(name)
        if m:
            prefixes[m.group(1).lower()] = prefixes.get(m.group(1).lower(), 0) + 1
    if modality == "rgb":
        return prefixes.get("img_", 0)
    return max(
        min(prefixes.get("flow_x_", 0), prefixes.get("flow_y_", 0)), min(prefixes.get("x_", 0), prefixes.get("y_", 0))
    )


def _resolve_flow_templates(folder: Path) -> tuple[str, str]:
    for tx, ty in FLOW_TEMPLATES:
        if (folder / tx.format(1)).is_file():
            return tx, ty
    raise VideoError(f"{folder}: no flow frames (expected flow_x_00001.jpg or x_00001.jpg)")


def _read(path: Path, flags: int) -> np.ndarray:
    img = cv2.imread(str(path), flags)
    if img is None:
        raise VideoError(f"{path}: missing or unreadable image")
    return img


def _resize(img: np.ndarray, size) -> np.ndarray:
    h, w = img.shape[:2]
    out_h, out_w = output_size(h, w, size)
    if (out_h, out_w) == (h, w):
        return img
    out = cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    return scale_flow_vectors(out, out_w / w, out_h / h) if is_flow(out) else out


def read_frame_folder(
    folder: str | os.PathLike, indices: Sequence[int] | np.ndarray, *, modality: str = "rgb", size=None, start: int = 1
) -> np.ndarray:
    """Read frames ``indices`` (0-based) of a raw-frame folder.

    ``modality="rgb"`` reads ``img_XXXXX.jpg`` → uint8 (T, H, W, 3) RGB; ``"flow"`` reads the x/y
    pair (either naming) → uint8 (T, H, W, 2). ``size`` resizes (short side or (H, W)); flow vectors
    are scaled with the image.
    ``start`` is the number of the first file (1 in every common layout).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoError(f"{folder}: raw-frame folder not found")
    out = []
    if modality == "rgb":
        for i in np.asarray(indices).reshape(-1):
            bgr = _read(folder / RGB_TEMPLATES[0].format(int(i) + start), cv2.IMREAD_COLOR)
            out.append(_resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size))
    elif modality == "flow":
        tx, ty = _resolve_flow_templates(folder)
        for i in np.asarray(indices).reshape(-1):
            x = _read(folder / tx.format(int(i) + start), cv2.IMREAD_GRAYSCALE)
            y = _read(folder / ty.format(int(i) + start), cv2.IMREAD_GRAYSCALE)
            out.append(_resize(np.stack([x, y], axis=-1), size))
    else:
        raise ValueError(f"modality must be 'rgb' or 'flow', got {modality!r}")
    return np.stack(out)
