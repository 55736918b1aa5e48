"""Video descriptors from a network layer over sliding windows: the C3D feature protocol.

C3D §3.4 (quoted in papers.md §1.4): "we split videos into 16 frame long clips with a 8-frame
overlap between two consecutive clips … extract fc6 activations. These clip fc6 activations are
averaged to form a 4096-dim video descriptor which is then followed by an L2-normalization."::

    video ─► frames, decoded one by one ─► windows [0,16) [8,24) [16,32) …  (window 16, stride 8;
          ─► preprocess ─► model ─► layer "fc6" per window (K, D)          only one window in memory)
          ─► average over windows ─► L2-normalise ─► descriptor (D,)   (normalize="mean_l2")

The order is a parameter (``normalize``): ``"mean_l2"`` is the paper's (average, then L2);
``"l2_mean_l2"`` L2-normalises every window first (so long, high-activation windows do not
dominate) and normalises the average again; ``"none"`` keeps the plain average. Videos shorter
than one window are padded by repeating their last frame (one window), so every video yields a
descriptor.

Output: one file per video, ``OUT/<video path relative to the root>.<fmt>`` written atomically
(temp + rename), so an interrupted run resumes by skipping videos whose file exists. Formats:

* ``npz`` (default): ``feature`` (D,), ``label`` (int, -1 if unknown), ``num_windows``, ``layer``,
  and with ``keep_windows`` also ``window_features`` (K, D) and ``window_starts`` (K,);
* ``h5``: the same names as HDF5 datasets/attributes (h5py);
* ``npy``: the descriptor only.

Bad videos (unreadable, corrupt) are skipped, reported, and listed in ``OUT/failed.txt``. A model
that cannot take the windows (every window has the same shape, so every video would fail alike: C3D's
fc6 after another crop, for example) stops the run at the first one with :class:`ModelInputError`.
"""

from __future__ import annotations

import io
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal, Sequence, TypeVar

import numpy as np
import torch
from torch import nn

from vidnets.utils.io import atomic_open, atomic_write_text

__all__ = [
    "FORMATS",
    "PRE_LOGITS",
    "window_starts",
    "sliding_windows",
    "stack_frames",
    "video_descriptor",
    "feature_path",
    "feature_file",
    "write_feature_file",
    "read_feature_file",
    "feature_source",
    "windows_features",
    "window_features",
    "VideoItem",
    "ExtractionReport",
    "ModelInputError",
    "extract_to_dir",
]

F = TypeVar("F")  # a decoded frame, in whatever form the caller's ``to_clip`` accepts
FORMATS = ("npz", "h5", "npy")
PRE_LOGITS = "pre_logits"
Normalize = Literal["mean_l2", "l2_mean_l2", "none"]


def window_starts(num_frames: int, window: int = 16, stride: int = 8) -> list[int]:
    """First frame of each window: ``0, stride, 2·stride, …`` while the window fits (at least one)."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be ≥ 1, found window={window}, stride={stride}")
    if num_frames < 1:
        raise ValueError("a video with no frames has no windows")
    return list(range(0, max(num_frames - window, 0) + 1, stride))


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def video_descriptor(window_feats: np.ndarray, normalize: Normalize = "mean_l2") -> np.ndarray:
    """Pool per-window features ``(K, D)`` into one descriptor ``(D,)`` (order: module docstring)."""
    window_feats = np.asarray(window_feats, dtype=np.float32).reshape(len(window_feats), -1)
    if normalize == "mean_l2":
        return _l2(window_feats.mean(axis=0))
    if normalize == "l2_mean_l2":
        return _l2(_l2(window_feats).mean(axis=0))
    if normalize == "none":
        return window_feats.mean(axis=0)
    raise ValueError(f"normalize: expected mean_l2|l2_mean_l2|none, found {normalize!r}")


# -- files --------------------------------------------------------------------------------------
def feature_path(out_dir: str | Path, video: str, fmt: str = "npz") -> Path:
    """Where the descriptor of ``video`` (a path relative to the dataset root) is written."""
    if fmt not in FORMATS:
        raise ValueError(f"feature format: expected one of {FORMATS}, found {fmt!r}")
    rel = Path(video)
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"feature path: {video!r} must be relative to the dataset root")
    return Path(out_dir) / f"{rel}.{fmt}"


def feature_file(out_dir: str | Path, video: str) -> Path | None:
    """The existing feature file of ``video`` in any format, or None."""
    for fmt in FORMATS:
        path = feature_path(out_dir, video, fmt)
        if path.is_file():
            return path
    return None


def write_feature_file(
    path: str | Path,
    feature: np.ndarray,
    label: int = -1,
    layer: str = "",
    window_feats: np.ndarray | None = None,
    starts: Sequence[int] | None = None,
    source: str = "",
) -> None:
    """Write one video's descriptor atomically in the format given by ``path``'s suffix.

    ``source`` (the video's real path) is kept in npz and h5 files, so a later run can tell the
    file of another video with the same name from its own (:func:`feature_source`)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".")
    arrays = {
        "feature": np.asarray(feature, dtype=np.float32),
        "label": np.int64(label),
        "num_windows": np.int64(0 if window_feats is None else len(window_feats)),
    }
    if window_feats is not None:
        arrays["window_features"] = np.asarray(window_feats, dtype=np.float32)
        arrays["window_starts"] = np.asarray(starts if starts is not None else [], dtype=np.int64)
    if fmt == "npy":
        with atomic_open(path, "wb") as f:
            np.save(f, arrays["feature"])
    elif fmt == "npz":
        with atomic_open(path, "wb") as f:
            np.savez(f, layer=np.str_(layer), source=np.str_(source), **arrays)
    elif fmt == "h5":
        import h5py

        buffer = io.BytesIO()  # build in memory, then one atomic write
        with h5py.File(buffer, "w") as h5:
            for name, value in arrays.items():
                h5.create_dataset(name, data=value)
            h5.attrs["layer"] = layer
            h5.attrs["source"] = source
        with atomic_open(path, "wb") as f:
            f.write(buffer.getvalue())
    else:
        raise ValueError(f"{path}: feature format must be one of {FORMATS}")


def read_feature_file(path: str | Path) -> tuple[np.ndarray, int | None]:
    """``(descriptor, label or None)`` from a file :func:`write_feature_file` wrote."""
    path = Path(path)
    fmt = path.suffix.lstrip(".")
    try:
        if fmt == "npy":
            return np.load(path, allow_pickle=False), None
        if fmt == "npz":
            with np.load(path, allow_pickle=False) as data:
                return data["feature"], int(data["label"])
        if fmt == "h5":
            import h5py

            with h5py.File(path, "r") as h5:
                return h5["feature"][()], int(h5["label"][()])
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"feature file {path}: unreadable ({type(e).__name__}: {e})") from e
    raise ValueError(f"feature file {path}: unknown format {fmt!r}")


def feature_source(path: str | Path) -> str:
    """The source video recorded in a feature file ("" when the format or an older file has none)."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return str(data["source"]) if "source" in data.files else ""
        if path.suffix == ".h5":
            import h5py

            with h5py.File(path, "r") as h5:
                return str(h5.attrs.get("source", ""))
    except (OSError, KeyError, ValueError):
        return ""
    return ""


# -- extraction ---------------------------------------------------------------------------------
def sliding_windows(frames: Iterable[F], window: int = 16, stride: int = 8) -> Iterator[tuple[int, list[F]]]:
    """``(start, frames of the window)`` over a frame sequence read once, holding only one window.

    Windows start at ``0, stride, 2·stride, …`` while they fit (:func:`window_starts`); a sequence
    shorter than ``window`` gives one window padded with its last frame. Raises ``ValueError`` for
    an empty sequence.
    """
    window_starts(1, window, stride)  # validates window and stride
    buffer: deque[F] = deque(maxlen=window)
    count = 0
    for frame in frames:
        buffer.append(frame)
        count += 1
        if count >= window and (count - window) % stride == 0:
            yield count - window, list(buffer)
    if count == 0:
        raise ValueError("no frames to make windows from")
    if count < window:
        yield 0, list(buffer) + [buffer[-1]] * (window - count)


def stack_frames(frames: list[torch.Tensor]) -> torch.Tensor:
    """Frames ``(C, H, W)`` → clip ``(C, T, H, W)``: the default window-to-clip step."""
    return torch.stack(frames, dim=1)


class ModelInputError(ValueError):
    """The model fails on the windows themselves (their shape, not a video's content): every video would."""


@torch.no_grad()
def windows_features(
    model: nn.Module,
    clips: Iterable[tuple[int, torch.Tensor]],
    layer: str,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, list[int]]:
    """Activations of ``layer`` for ``(start, clip (C, T, H, W))`` windows, ``batch_size`` at a time.

    ``layer`` is a submodule name (``extract_features``; C3D's ``"fc6"`` is the post-ReLU blob) or
    ``"pre_logits"``: the pooled vector before the classifier of any :class:`VideoClassifier`.
    Returns ``(K, D)`` features (flattened per window) and the window start frames. An error of the
    model's forward pass is a :class:`ModelInputError`.
    """
    from vidnets.models.features import extract_features

    def run(batch: list[torch.Tensor]) -> torch.Tensor:
        x = torch.stack(batch).to(device)
        try:
            if layer == PRE_LOGITS:
                out = model.forward_head(model.forward_features(x), pre_logits=True)
            else:
                out = extract_features(model, x, [layer])[layer]
        except (RuntimeError, ValueError) as e:  # a size mismatch inside the net
            shape = "×".join(map(str, x.shape[1:]))
            raise ModelInputError(
                f"{type(model).__name__} cannot take windows of {shape} (C×T×H×W): {str(e).splitlines()[0]}"
            ) from e
        return out.flatten(1).float().cpu()

    outputs, starts, pending = [], [], []
    for start, clip in clips:
        starts.append(start)
        pending.append(clip)
        if len(pending) == batch_size:
            outputs.append(run(pending))
            pending = []
    if pending:
        outputs.append(run(pending))
    if not outputs:
        raise ValueError("no windows")
    return torch.cat(outputs).numpy(), starts


def window_features(
    model: nn.Module,
    clip: torch.Tensor,
    layer: str,
    window: int = 16,
    stride: int = 8,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, list[int]]:
    """:func:`windows_features` over the sliding windows of one preprocessed clip ``(C, T, H, W)``."""
    if clip.ndim != 4:
        raise ValueError(f"expected a clip (C, T, H, W), found shape {tuple(clip.shape)}")
    windows = ((start, stack_frames(frames)) for start, frames in sliding_windows(clip.unbind(1), window, stride))
    return windows_features(model, windows, layer, batch_size, device)


@dataclass(frozen=True)
class VideoItem:
    path: str  # file to read
    key: str  # path relative to the dataset root: names the output file
    label: int = -1


@dataclass
class ExtractionReport:
    written: list[str] = field(default_factory=list)
    skipped_done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)

    def summary(self) -> str:
        return f"{len(self.written)} written, {len(self.skipped_done)} already done, {len(self.failed)} failed"


def extract_to_dir(
    model: nn.Module,
    videos: Iterable[VideoItem],
    read_frames: Callable[[str], Iterable[F]],
    out_dir: str | Path,
    to_clip: Callable[[list[F]], torch.Tensor] = stack_frames,
    layer: str = "fc6",
    window: int = 16,
    stride: int = 8,
    normalize: Normalize = "mean_l2",
    fmt: str = "npz",
    keep_windows: bool = False,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    progress: bool = True,
    failed_file: str = "failed.txt",
) -> ExtractionReport:
    """Write one descriptor file per video into ``out_dir``; resumable and robust to bad videos.

    ``read_frames(path)`` yields the video's frames in order (decoded lazily, so memory holds one
    window, not the video); ``to_clip(frames)`` turns one window's frames into the model's input
    ``(C, window, H, W)`` (preprocessing goes there; default: stack ``(C, H, W)`` tensors).
    Videos whose output file already exists (in any format) are skipped. A video that fails to
    load or run is recorded in the report and in ``out_dir/<failed_file>`` (one per shard when a
    job is split), and the run goes on.
    """
    from tqdm import tqdm

    model.eval()
    report = ExtractionReport()
    items = list(videos)
    for item in tqdm(items, desc=f"features {layer}", unit="video", disable=not progress):
        existing = feature_file(out_dir, item.key)
        if existing is not None:
            source = feature_source(existing)
            if source and source != os.path.realpath(item.path):
                report.failed.append(
                    (
                        item.key,
                        f"{existing} holds the features of another video, {source}; "
                        "give --root so names keep their folders, or another --out",
                    )
                )
            else:
                report.skipped_done.append(item.key)
            continue
        try:
            windows = (
                (start, to_clip(frames)) for start, frames in sliding_windows(read_frames(item.path), window, stride)
            )
            feats, starts = windows_features(model, windows, layer, batch_size, device)
        except (KeyError, TypeError, ModelInputError):  # a wrong layer name or model: not the video's fault
            raise
        except Exception as e:  # noqa: BLE001 - a bad video must not stop a long job
            report.failed.append((item.key, f"{type(e).__name__}: {e}"))
            continue
        write_feature_file(
            feature_path(out_dir, item.key, fmt),
            video_descriptor(feats, normalize),
            item.label,
            layer,
            feats if keep_windows else None,
            starts if keep_windows else None,
            source=os.path.realpath(item.path),
        )
        report.written.append(item.key)
    failed_path = Path(out_dir) / failed_file
    if report.failed:
        atomic_write_text(failed_path, "".join(f"{k}\t{r}\n" for k, r in report.failed))
    elif failed_path.is_file():
        os.unlink(failed_path)  # every video of this run is done now
    return report
