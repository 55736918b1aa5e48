"""On-disk optical flow: linear uint8 quantisation, JPEG files per field, a metadata JSON per video.

Layout (the raw-frame layout that Two-Stream, TSN, dense_flow and mmaction2 read)::

    flow_root/<video id>/                 <video id> = the video file's stem (see ``video_id``), or its
                                          relative path without suffix when stems collide (``video_ids``)
        flow_x_00001.jpg  flow_y_00001.jpg     forward field 1: frame 1 -> frame 2
        flow_x_00002.jpg  flow_y_00002.jpg     forward field 2: frame 2 -> frame 3  ...
        flow_bx_00001.jpg flow_by_00001.jpg    backward field 1: frame 2 -> frame 1 (only with --backward)
        meta.json                              written last: its presence means "complete"

Field ``k`` (1-based in file names, 0-based in the API) always belongs to the frame pair (k, k+1), so the
backward field with the same number covers the same pair in the other direction. A video of N decoded
frames has N-1 fields.

Quantisation (``quantize``/``dequantize``) maps [-bound, bound] linearly onto [0, 255] and clips outside::

    q = round((v + bound) * 255 / (2 * bound))        v' = q * 2 * bound / 255 - bound

as in the Two-Stream paper and dense_flow's ``convertFlowToImage`` (so 127.5 is zero motion and a stored 128
reads back as +bound/255). The rounding error is at most one half step, ``bound / 255``; JPEG adds its own
error on top (measured by ``benchmarks/flow.py`` and bounded in the tests).

Settings. ``meta.json`` records what produced the flow (method and its parameters, bound, JPEG quality,
size, backward, warp) and the source video's real path. A folder counts as complete for a run only when it holds
flow of the same video with the same settings (:func:`flow_settings`); a folder of another video or
other settings is never reused silently (``vidnets flow extract`` refuses, or recomputes with
``--overwrite``).

Folders written by other tools (``x_00001.jpg``/``y_00001.jpg`` as in mmaction2's test data, or
``flow_x_*`` without metadata) are read too: pass ``bound`` (default 20, the common dense_flow ``-b``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence, Union

import numpy as np

__all__ = [
    "FLOW_FORMAT",
    "FlowMeta",
    "FlowFrames",
    "quantize",
    "dequantize",
    "video_id",
    "flow_dir_for",
    "video_ids",
    "flow_settings",
    "same_video",
    "is_complete",
    "field_name",
    "write_field",
    "read_meta",
]

FLOW_FORMAT = "vidnets-flow/1"
META_NAME = "meta.json"
DEFAULT_BOUND = 20.0
DEFAULT_JPEG_QUALITY = 95  # OpenCV's imwrite default, which dense_flow uses

# (x prefix, y prefix) per direction, in the order FlowFrames tries them for folders without metadata.
FORWARD_PREFIXES = (("flow_x", "flow_y"), ("x", "y"))
BACKWARD_PREFIXES = (("flow_bx", "flow_by"),)


@dataclass
class FlowMeta:
    """What ``meta.json`` records for one video's flow."""

    video: str
    method: str
    bound: float
    jpeg_quality: int
    width: int
    height: int
    num_frames: int
    num_fields: int
    backward: bool = False
    warp: bool = False
    format: str = FLOW_FORMAT
    #: decode size setting: short side (int), "WxH", or None (decoded size)
    resize: Union[int, str, None] = None
    #: the video's real path (symlinks resolved) when the flow was written
    source: str = ""
    #: the flow method's own parameters (``vidnets.flow.extract.method_params``); None in folders written
    #: before they were recorded (``vidnets.flow.extract.unrecorded_params`` says what those used)
    params: dict | None = None


def flow_settings(meta: FlowMeta) -> dict:
    """What must match for stored flow to be reused: method and its parameters, bound, quality, size,
    backward, warp."""
    return {
        "method": meta.method,
        "bound": float(meta.bound),
        "jpeg_quality": int(meta.jpeg_quality),
        "resize": meta.resize,
        "backward": bool(meta.backward),
        "warp": bool(meta.warp),
        "params": meta.params,
    }


def same_video(meta: FlowMeta, video: str | Path) -> bool:
    """Whether ``meta`` describes flow of ``video`` (compared by real path)."""
    return (meta.source or os.path.realpath(meta.video)) == os.path.realpath(video)


def video_ids(videos: Sequence[str | Path]) -> dict[str, str]:
    """``{video: id}``: the stem, or for videos whose stems collide the path relative to their common
    folder without suffix (``a/clip.avi``, ``b/clip.avi`` -> ``a/clip``, ``b/clip``)."""
    from vidnets.utils.io import unique_names

    names = unique_names(videos, key=video_id)
    return {v: (n if n == video_id(v) else Path(n).with_suffix("").as_posix()) for v, n in names.items()}


def quantize(flow: np.ndarray, bound: float) -> np.ndarray:
    """Float displacements -> uint8, linear on [-bound, bound] (values outside are clipped)."""
    if bound <= 0:
        raise ValueError(f"flow bound must be > 0, found {bound}")
    scaled = (np.asarray(flow, dtype=np.float32) + bound) * (255.0 / (2.0 * bound))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def dequantize(image: np.ndarray, bound: float) -> np.ndarray:
    """uint8 -> float32 displacements in [-bound, bound]; inverse of ``quantize`` up to bound/255."""
    return image.astype(np.float32) * np.float32(2.0 * bound / 255.0) - np.float32(bound)


def video_id(video_path: str | Path) -> str:
    """The folder name of a video's flow: its file stem (``v_ApplyEyeMakeup_g01_c01.avi`` -> ``v_Apply…c01``)."""
    return Path(video_path).stem


def flow_dir_for(flow_root: str | Path, video_path: str | Path) -> Path:
    """The folder holding ``video_path``'s flow: ``flow_root/<stem>/``, or, when that folder's metadata
    names another video (stems collided at extraction), ``flow_root/<parent>/<stem>/`` and so on up the
    video's path (the names ``video_ids`` gives)."""
    root = Path(flow_root)
    default = root / video_id(video_path)
    parts = Path(os.path.realpath(video_path)).with_suffix("").parts
    for depth in range(1, len(parts)):
        candidate = root.joinpath(*parts[-depth:])
        if (candidate / META_NAME).is_file():
            try:
                if same_video(read_meta(candidate), video_path):
                    return candidate
            except (OSError, ValueError, TypeError, KeyError):
                continue
        elif depth == 1 and candidate.is_dir():
            return candidate  # flow written by another tool: no metadata to check
    return default


def is_complete(directory: str | Path) -> bool:
    """True only when the folder's metadata is present and readable (it is written last)."""
    try:
        return read_meta(directory).format == FLOW_FORMAT
    except (OSError, ValueError, TypeError, KeyError):
        return False


def read_meta(directory: str | Path) -> FlowMeta:
    path = Path(directory) / META_NAME
    data = json.loads(path.read_text())
    return FlowMeta(**data)


def meta_to_json(meta: FlowMeta) -> dict:
    return asdict(meta)


def field_name(prefix: str, index: int) -> str:
    """File name of field ``index`` (0-based): ``field_name("flow_x", 0) == "flow_x_00001.jpg"``."""
    return f"{prefix}_{index + 1:05d}.jpg"


def write_field(
    directory: Path, index: int, flow: np.ndarray, bound: float, quality: int, backward: bool = False
) -> int:
    """Write one (H, W, 2) float field as two JPEGs; returns the bytes written."""
    import cv2

    x_prefix, y_prefix = BACKWARD_PREFIXES[0] if backward else FORWARD_PREFIXES[0]
    q = quantize(flow, bound)
    total = 0
    for prefix, channel in ((x_prefix, 0), (y_prefix, 1)):
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(q[..., channel]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {directory / field_name(prefix, index)}")
        (directory / field_name(prefix, index)).write_bytes(buf.tobytes())
        total += len(buf)
    return total


class FlowFrames:
    """Read one video's stored flow as float displacements.

    ``read(i)`` gives field ``i`` (0-based) as a float32 array (2, H, W): channel 0 = x (rightwards
    positive), channel 1 = y (downwards positive), in pixels of the stored resolution.
    """

    def __init__(self, directory: str | Path, *, bound: float | None = None):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise FileNotFoundError(f"flow folder not found: {self.directory}")
        self.meta: FlowMeta | None = read_meta(self.directory) if (self.directory / META_NAME).is_file() else None
        if self.meta is not None:
            if bound is not None and float(bound) != float(self.meta.bound):
                raise ValueError(f"{self.directory}: bound {bound} given but meta.json records {self.meta.bound}")
            self.bound = float(self.meta.bound)
        else:
            self.bound = float(DEFAULT_BOUND if bound is None else bound)
        self.prefixes = self._find_prefixes(FORWARD_PREFIXES)
        self.backward_prefixes = self._find_prefixes(BACKWARD_PREFIXES, required=False)
        self.num_fields = self.meta.num_fields if self.meta is not None else self._count(self.prefixes[0])
        if self.num_fields < 1:
            raise ValueError(f"{self.directory}: no flow fields found (expected flow_x_00001.jpg or x_00001.jpg)")

    @property
    def has_backward(self) -> bool:
        return self.backward_prefixes is not None

    def _find_prefixes(self, options: Sequence[tuple[str, str]], required: bool = True):
        for x_prefix, y_prefix in options:
            if (self.directory / field_name(x_prefix, 0)).is_file():
                return x_prefix, y_prefix
        if required:
            names = ", ".join(field_name(x, 0) for x, _ in options)
            raise FileNotFoundError(f"{self.directory}: no flow images found (expected one of {names})")
        return None

    def _count(self, prefix: str) -> int:
        pattern = re.compile(re.escape(prefix) + r"_(\d{5})\.jpg$")
        numbers = [int(m.group(1)) for p in self.directory.iterdir() if (m := pattern.match(p.name))]
        return max(numbers, default=0)

    def __len__(self) -> int:
        return self.num_fields

    def read_quantized(self, index: int, backward: bool = False) -> np.ndarray:
        """Field ``index`` as stored: uint8 (2, H, W)."""
        import cv2

        if not 0 <= index < self.num_fields:
            raise IndexError(f"{self.directory}: field {index} out of range [0, {self.num_fields})")
        prefixes = self.backward_prefixes if backward else self.prefixes
        if prefixes is None:
            raise FileNotFoundError(f"{self.directory}: no backward flow stored (extract with --backward)")
        planes = []
        for prefix in prefixes:
            path = self.directory / field_name(prefix, index)
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise OSError(f"cannot read flow image {path}")
            planes.append(image)
        return np.stack(planes)

    def read(self, index: int, backward: bool = False) -> np.ndarray:
        """Field ``index`` (0-based) as float32 (2, H, W) displacements in pixels."""
        return dequantize(self.read_quantized(index, backward), self.bound)

    def read_many(self, indices: Sequence[int], backward: bool = False) -> np.ndarray:
        """Fields at ``indices`` as float32 (n, 2, H, W); repeated indices are read once."""
        cache: dict[int, np.ndarray] = {}
        out = []
        for i in indices:
            if i not in cache:
                cache[i] = self.read(int(i), backward)
            out.append(cache[i])
        return np.stack(out)
