"""Video decoding with PyAV: probe metadata, and decode only the frames a sampler asks for.

Frame ``i`` of a video is the ``i``-th frame the decoder outputs in presentation order, the same
numbering a full decode gives. The index that maps ``i`` to a timestamp comes from demuxing
(reading packet headers, no decoding), so it is exact on variable-frame-rate video too::

    demux packets ──► sorted presentation timestamps (pts[i]) + key-frame timestamps
    wanted indices ──sort/unique──► for each target: seek to the key frame before it unless the
                                     decoder is already between that key frame and the target,
                                     decode forward to pts[i], convert only that frame
                                     (resize inside swscale, rotate by the display matrix)

MPEG-4 Part 2 AVIs (xvid/divx "packed bitstream") carry 1-byte placeholder packets that decode
to no frame; they are left out of the index. If decoding ever disagrees with the index (a frame
with the wanted timestamp never appears) the reader falls back to a sequential decode that counts
frames, which is correct by definition.

Index/stream mismatch. Some files' index lists a few more frames than the stream decodes (an
H.264 MP4 whose index says 239 frames and whose decoder returns 238, when the last packets hold
frames the decoder drops). When the frames that cannot be decoded are only the last
``FRAME_COUNT_TOLERANCE`` or fewer, a request for them is clamped to the last frame that decodes, as
a sampler past the end of a short clip is; more missing frames are a truncated or corrupt file
(:class:`VideoError`).

Checking. :func:`check_video` is what ``vidnets check`` runs: the probe, then every key frame and the
last frame decoded (cheap: about one frame per GOP; catches truncated files and damaged key frames).
``deep=True`` decodes the whole stream and applies the same tolerance as training, so "ok" there
means every frame training can ask for decodes; damage inside a GOP is only seen by the deep check.

Frames come back as uint8 ``(T, H, W, 3)`` RGB numpy arrays.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

#: frames at the end of a stream that may be listed by the index yet not decode (clamped, not rejected)
FRAME_COUNT_TOLERANCE = 4

# codecs whose 1-byte packets are "no frame" placeholders (packed B-frames in AVI)
_PLACEHOLDER_CODECS = {"mpeg4", "msmpeg4v3", "msmpeg4v2", "msmpeg4", "h263"}


class VideoError(RuntimeError):
    """A video could not be opened or decoded; the message names the file."""


@dataclass(frozen=True)
class VideoMeta:
    """What a probe learns about one video (sizes are as displayed, i.e. after rotation)."""

    num_frames: int
    fps: float
    width: int
    height: int
    codec: str
    rotation: int = 0
    duration: float = 0.0
    has_audio: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FrameIndex:
    """Presentation timestamps of every frame and of the key frames (stream time base)."""

    pts: np.ndarray
    keyframe_pts: np.ndarray
    codec: str

    def keyframe_before(self, pts: int) -> int:
        pos = int(np.searchsorted(self.keyframe_pts, pts, side="right")) - 1
        return int(self.keyframe_pts[max(pos, 0)]) if len(self.keyframe_pts) else int(self.pts[0])


def _open(path: str | os.PathLike):
    import av

    path = str(path)
    if not os.path.isfile(path):
        raise VideoError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(path, metadata_errors="ignore")
    except Exception as e:  # PyAV raises several FFmpeg error types
        raise VideoError(f"{path}: not a readable video ({type(e).__name__}: {e})") from e
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: has no video stream")
    if container.streams.video[0].codec_context is None:  # a codec (FourCC) FFmpeg does not know
        container.close()
        raise VideoError(f"{path}: its video codec cannot be decoded by this FFmpeg build")
    return container


def _build_index(container, path: str) -> FrameIndex:
    stream = container.streams.video[0]
    codec = stream.codec_context.name
    skip_tiny = codec in _PLACEHOLDER_CODECS
    pts, keys = [], []
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or (skip_tiny and packet.size <= 1):
                continue
            t = packet.pts if packet.pts is not None else packet.dts
            if t is None:
                continue
            pts.append(t)
            if packet.is_keyframe:
                keys.append(t)
    except Exception as e:
        if not pts:
            raise VideoError(f"{path}: cannot demux video stream ({type(e).__name__}: {e})") from e
        # truncated file: keep what could be read
    if not pts:
        raise VideoError(f"{path}: video stream has no frames")
    return FrameIndex(np.unique(np.asarray(pts, dtype=np.int64)), np.unique(np.asarray(keys, dtype=np.int64)), codec)


@functools.lru_cache(maxsize=256)
def _cached_index(path: str, size: int, mtime_ns: int) -> FrameIndex:
    container = _open(path)
    try:
        return _build_index(container, path)
    finally:
        container.close()


def frame_index(path: str | os.PathLike) -> FrameIndex:
    """The demuxed frame index of ``path`` (kept per process, keyed by path + size + mtime)."""
    path = str(path)
    try:
        st = os.stat(path)
    except OSError as e:
        raise VideoError(f"{path}: no such file") from e
    return _cached_index(path, st.st_size, st.st_mtime_ns)


def _display_rotation(frame) -> int:
    try:
        return int(round(frame.rotation)) % 360
    except Exception:
        return 0


def probe(path: str | os.PathLike) -> VideoMeta:
    """Frame count (exact, from demuxing), fps, displayed size, codec, rotation; decodes one frame.

    Raises :class:`VideoError` naming the file when it is missing, empty, not a video, or has no
    decodable frame.
    """
    path = str(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        index = _build_index(container, path)
        container.seek(int(index.pts[0]), stream=stream, backward=True, any_frame=False)
        first = None
        try:
            for first in container.decode(stream):
                break
        except Exception as e:
            raise VideoError(f"{path}: cannot decode first frame ({type(e).__name__}: {e})") from e
        if first is None:
            raise VideoError(f"{path}: no decodable frame")
        rotation = _display_rotation(first)
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        tb = float(stream.time_base) if stream.time_base else 0.0
        span = float(index.pts[-1] - index.pts[0]) * tb if tb else 0.0
        n = len(index.pts)
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else ((n - 1) / span if span > 0 else 0.0)
        duration = (span + 1.0 / fps) if fps > 0 else span
        return VideoMeta(
            num_frames=n,
            fps=round(fps, 4),
            width=width,
            height=height,
            codec=index.codec,
            rotation=rotation,
            duration=round(duration, 4),
            has_audio=bool(container.streams.audio),
        )
    finally:
        container.close()


def output_size(height: int, width: int, size) -> tuple[int, int]:
    """(H, W) after resizing a ``height``×``width`` image: ``size`` is a short side or (H, W)."""
    if size is None:
        return height, width
    if isinstance(size, int):
        if height <= width:
            return size, max(1, round(width * size / height))
        return max(1, round(height * size / width)), size
    return int(size[0]), int(size[1])


def _to_rgb(frame, size) -> np.ndarray:
    rotation = _display_rotation(frame)
    disp_h, disp_w = (frame.width, frame.height) if rotation in (90, 270) else (frame.height, frame.width)
    out_h, out_w = output_size(disp_h, disp_w, size)
    # resize inside swscale, in the stored orientation, then rotate to the displayed one
    src_h, src_w = (out_w, out_h) if rotation in (90, 270) else (out_h, out_w)
    if (src_h, src_w) == (frame.height, frame.width):
        img = frame.to_ndarray(format="rgb24")
    else:
        img = frame.to_ndarray(format="rgb24", width=src_w, height=src_h, interpolation="BILINEAR")
    if rotation:
        img = np.rot90(img, k=rotation // 90)
    return np.ascontiguousarray(img)


class _IndexMismatch(Exception):
    pass


# files whose decoder output disagreed with the demuxed index (e.g. packed B-frames, whose
# last frames come out of timestamp order): read them sequentially from then on
_SEQUENTIAL_ONLY: set[str] = set()


def _frame_pts(frame) -> int | None:
    return frame.pts if frame.pts is not None else frame.dts


def _decode_sparse(container, index: FrameIndex, wanted: np.ndarray, size, path: str) -> dict[int, np.ndarray]:
    stream = container.streams.video[0]
    out: dict[int, np.ndarray] = {}
    decoder: Iterator | None = None
    pos: int | None = None  # pts of the last decoded frame
    for i in wanted:
        target = int(index.pts[i])
        key = index.keyframe_before(target)
        if decoder is None or pos is None or not (key <= pos < target):
            container.seek(key, stream=stream, backward=True, any_frame=False)
            decoder = container.decode(stream)
            pos = None
        for frame in decoder:
            p = _frame_pts(frame)
            if p is None:
                raise _IndexMismatch
            pos = p
            if p < target:
                continue
            if p > target:
                raise _IndexMismatch
            out[int(i)] = _to_rgb(frame, size)
            break
        else:
            raise _IndexMismatch
    return out


def _decode_sequential(container, wanted: np.ndarray, size) -> dict[int, np.ndarray]:
    """Frames ``wanted`` by counting decoder output. If the stream ends early, the key ``-1`` holds
    its last frame and ``-2`` the number of frames it decoded (for the tail tolerance)."""
    stream = container.streams.video[0]
    wanted_set = set(int(i) for i in wanted)
    last = int(wanted.max())
    out: dict[int, np.ndarray] = {}
    previous, count = None, 0
    try:
        for n, frame in enumerate(container.decode(stream)):
            count = n + 1
            if n in wanted_set:
                out[n] = _to_rgb(frame, size)
            if n >= last:
                return out
            previous = frame
    except Exception:  # damaged data: the stream ends here (the tail tolerance decides)
        if previous is None:
            raise
    if previous is not None:
        out[-1] = _to_rgb(previous, size)
    out[-2] = count
    return out


def _clamp_tail(frames: dict, wanted: np.ndarray, n: int, path: str) -> None:
    """Fill missing frames at the very end of the stream with its last decoded frame, when no more than
    ``FRAME_COUNT_TOLERANCE`` frames are missing; otherwise leave them missing."""
    decoded = frames.pop(-2, None)
    last = frames.pop(-1, None)
    if decoded is None or last is None or n - decoded > FRAME_COUNT_TOLERANCE:
        return
    for i in wanted:
        if int(i) >= decoded:
            frames[int(i)] = last


def read_frames(
    path: str | os.PathLike, indices: Sequence[int] | np.ndarray, *, size=None, threads: int = 1
) -> np.ndarray:
    """Decode frames ``indices`` (any order, repeats allowed) of ``path`` → uint8 (T, H, W, 3) RGB.

    Only the wanted frames are converted, and decoding seeks over the parts it does not need.
    ``size`` resizes while converting: an int short side, an (H, W) pair, or None. ``threads``
    is the decoder thread count (1 suits DataLoader workers). Raises :class:`VideoError` naming
    the file when it cannot be read or an index is past its last decodable frame.
    """
    path = str(path)
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size == 0:
        raise ValueError(f"{path}: no frame indices requested")
    index = frame_index(path)
    n = len(index.pts)
    if indices.min() < 0 or indices.max() >= n:
        raise VideoError(
            f"{path}: frame index out of range: asked for "
            f"{int(indices.min())}..{int(indices.max())}, video has {n} frames"
        )
    wanted = np.unique(indices)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_count = max(1, threads)
        try:
            if path in _SEQUENTIAL_ONLY:
                raise _IndexMismatch
            frames = _decode_sparse(container, index, wanted, size, path)
        except Exception:  # index disagreed with the decoder, or seeking failed: count frames
            _SEQUENTIAL_ONLY.add(path)
            container.close()
            container = _open(path)
            container.streams.video[0].thread_count = max(1, threads)
            try:
                frames = _decode_sequential(container, wanted, size)
            except Exception as e:
                raise VideoError(f"{path}: decoding failed ({type(e).__name__}: {e})") from e
            _clamp_tail(frames, wanted, n, path)
        missing = [int(i) for i in wanted if int(i) not in frames]
        if missing:
            raise VideoError(
                f"{path}: truncated or corrupt: frames {missing[:5]} could not be decoded (index says {n} frames)"
            )
        return np.stack([frames[int(i)] for i in indices])
    finally:
        container.close()


def check_video(path: str | os.PathLike, *, deep: bool = False) -> dict:
    """What ``vidnets check`` reports for one file: the probe's metadata, plus ``decoded`` (frames
    the stream really decodes) with ``deep``. Raises :class:`VideoError` when training could not
    read every frame the index lists (see the module docstring for what each mode decodes)."""
    path = str(path)
    meta = probe(path).to_dict()
    n = meta["num_frames"]
    container = _open(path)
    try:
        stream = container.streams.video[0]
        if deep:
            _video_stream_for_full_decode(container, 0)
        else:
            stream.codec_context.skip_frame = "NONKEY"
        decoded, error = 0, None
        try:
            for _ in container.decode(stream):
                decoded += 1
        except Exception as e:  # noqa: BLE001 - judged below, as training would
            error = f" ({type(e).__name__}: {e})"
    finally:
        container.close()
    if deep:
        meta["decoded"] = decoded
        if n - decoded > FRAME_COUNT_TOLERANCE:
            raise VideoError(
                f"{path}: truncated or corrupt: decodes {decoded} of the {n} frames its index lists{error or ''}"
            )
    else:
        read_frames(path, [n - 1])  # the end of the stream (clamped within the tolerance)
        if error:
            read_frames(path, np.arange(n))  # a key frame failed: decode it all, as training would
    return meta


def _video_stream_for_full_decode(container, threads: int):
    """The first video stream, threaded for decoding whole runs of frames (``threads=0``: FFmpeg chooses)."""
    stream = container.streams.video[0]
    if threads:
        stream.thread_count = threads
    else:
        stream.thread_type = "AUTO"
    return stream


def read_frames_sequential(
    path: str | os.PathLike, indices: Sequence[int] | np.ndarray, *, size=None, threads: int = 0
) -> np.ndarray:
    """Like :func:`read_frames` but decoding every frame from the start up to the last wanted one
    (no seeking; only wanted frames are converted) — the reference the sparse reader is checked
    and benchmarked against."""
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    container = _open(path)
    try:
        _video_stream_for_full_decode(container, threads)
        frames = _decode_sequential(container, np.unique(indices), size)
    finally:
        container.close()
    missing = [int(i) for i in np.unique(indices) if int(i) not in frames]
    if missing:
        raise VideoError(f"{path}: frames {missing[:5]} could not be decoded")
    return np.stack([frames[int(i)] for i in indices])


def iter_frames(path: str | os.PathLike, *, size=None, threads: int = 0) -> Iterator[np.ndarray]:
    """Every frame of ``path`` in order, as uint8 (H, W, 3) RGB (full sequential decode).

    ``threads=0`` lets FFmpeg choose (fastest for a whole-file decode).
    """
    container = _open(path)
    try:
        stream = _video_stream_for_full_decode(container, threads)
        try:
            for frame in container.decode(stream):
                yield _to_rgb(frame, size)
        except Exception as e:
            raise VideoError(f"{path}: decoding failed ({type(e).__name__}: {e})") from e
    finally:
        container.close()


def read_all_frames(path: str | os.PathLike, *, size=None, threads: int = 0) -> np.ndarray:
    """All frames of ``path`` as uint8 (T, H, W, 3) RGB — the full-decode reference."""
    frames = list(iter_frames(path, size=size, threads=threads))
    if not frames:
        raise VideoError(f"{path}: no decodable frames")
    return np.stack(frames)


def is_video_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


VIDEO_EXTENSIONS = {".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".gif", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp"}
