"""Dense optical flow extraction: videos -> quantised JPEG flow folders (see ``vidnets.flow.store``).

::

    videos ──ids (stem; relative path when stems collide)──► refuse if a complete folder holds another
        video or other settings (recompute with overwrite=True)
        ──shard (--shard i/n or RANK/WORLD_SIZE)──► skip those already complete (same video, same settings)
        └─► process pool, one video per task, tqdm progress; each video under a lock (below)
              decode (vidnets.data.video, PyAV) → resize (short side or W×H) → grayscale
              for each consecutive pair: forward flow [, backward flow] [camera motion removed: --warp]
              quantise to uint8 in [-bound, bound] → JPEG into  out/.<id>.partial/
              meta.json last → rename .<id>.partial → out/<id>       (a killed run leaves no "done" folder)

Methods: ``tvl1`` (``cv2.optflow.DualTVL1OpticalFlow_create``, defaults, as TSN), ``farneback``
(``cv2.calcOpticalFlowFarneback`` with the OpenCV tutorial parameters) and ``dis``
(``cv2.DISOpticalFlow_create``, preset "medium"). All compute flow from the first to the second frame:
``second(p + flow(p)) ≈ first(p)``.

Settings. A folder is "already complete" only when its ``meta.json`` names the same video (by real
path) and the same settings (method, bound, JPEG quality, size, backward, warp). A rerun with other
settings, or another video whose stem matches, into a folder holding such output stops with a
:class:`FlowSettingsError` before any work; ``overwrite=True`` (``--overwrite``) recomputes instead.

Concurrency. Each video is written while holding an exclusive ``fcntl.flock`` on
``out/.vidnets-locks/<id>.lock``: a second writer of the same video waits, then finds the folder
complete (or refuses it, if its settings differ). The kernel drops the lock when its holder dies, so a
killed writer never leaves a stale lock; its ``.partial`` folder is removed by the next writer.

Bad or unreadable videos are reported and skipped; ``extract_videos`` returns one result per video and the
command's exit status is non-zero when any failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from vidnets.flow import store

__all__ = ["METHODS", "FlowSettingsError", "FlowOptions", "VideoResult", "make_flow_fn", "compute_flow", "decode_size",
           "iter_gray_frames", "extract_video", "extract_videos"]

METHODS = ("tvl1", "farneback", "dis")
FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


class FlowSettingsError(ValueError):
    """The output folder holds flow of another video or with other settings."""


@dataclass(frozen=True)
class FlowOptions:
    """How to extract. ``size`` (W, H) wins over ``short_side``; both None keeps the decoded size.

    Frames are decoded by ``vidnets.data.video`` (display rotation applied; short side scaled with the
    long side rounded to the nearest pixel), the same path the RGB datasets use.
    """

    method: str = "tvl1"
    bound: float = store.DEFAULT_BOUND
    jpeg_quality: int = store.DEFAULT_JPEG_QUALITY
    short_side: int | None = 256
    size: tuple[int, int] | None = None
    backward: bool = False
    warp: bool = False

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"--method: expected one of {', '.join(METHODS)}, found {self.method!r}")
        if not 1 <= int(self.jpeg_quality) <= 100:
            raise ValueError(f"jpeg quality must be in 1..100, found {self.jpeg_quality}")
        if not (self.bound > 0 and self.bound != float("inf")):
            raise ValueError(f"--bound must be a finite number > 0, found {self.bound}")
        if self.short_side is not None and self.short_side < 1:
            raise ValueError(f"--short-side must be >= 1, found {self.short_side}")
        if self.size is not None and min(self.size) < 1:
            raise ValueError(f"--size must be WxH with W, H >= 1, found {self.size}")

    @property
    def resize(self) -> int | str | None:
        """The size setting as ``meta.json`` records it."""
        return f"{self.size[0]}x{self.size[1]}" if self.size is not None else self.short_side

    def settings(self) -> dict:
        """What :func:`vidnets.flow.store.flow_settings` reads from a folder written with these options."""
        return {"method": self.method, "bound": float(self.bound), "jpeg_quality": int(self.jpeg_quality),
                "resize": self.resize, "backward": bool(self.backward), "warp": bool(self.warp)}


@dataclass
class VideoResult:
    video: str
    status: str  # "done" | "skipped" (already complete) | "failed"
    fields: int = 0
    seconds: float = 0.0
    bytes: int = 0
    error: str | None = None


def make_flow_fn(method: str) -> FlowFn:
    """A callable ``(first, second) -> (H, W, 2) float32`` for uint8 grayscale frames."""
    import cv2

    if method == "tvl1":
        estimator = cv2.optflow.DualTVL1OpticalFlow_create()
        return lambda a, b: estimator.calc(a, b, None)
    if method == "dis":
        estimator = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda a, b: estimator.calc(a, b, None)
    if method == "farneback":
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    raise ValueError(f"unknown flow method {method!r}; expected one of {', '.join(METHODS)}")


def compute_flow(first: np.ndarray, second: np.ndarray, method: str = "tvl1") -> np.ndarray:
    """Flow (H, W, 2) float32 from ``first`` to ``second`` (uint8 grayscale). One-off convenience."""
    return make_flow_fn(method)(first, second)


def decode_size(options: FlowOptions):
    """The ``size`` argument of ``vidnets.data.video`` (short side, or (H, W)) for these options, so that
    flow and RGB frames decoded with the same setting line up pixel for pixel."""
    if options.size is not None:
        return int(options.size[1]), int(options.size[0])
    return options.short_side


def iter_gray_frames(path: str | Path, size=None) -> Iterator[np.ndarray]:
    """Every frame as contiguous uint8 grayscale (H, W); ``size`` as in ``vidnets.data.video.iter_frames``."""
    import cv2

    from vidnets.data.video import iter_frames

    for rgb in iter_frames(path, size=size):
        yield cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _pair_flows(frames: Iterator[np.ndarray], options: FlowOptions
                ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Yield (first frame, forward flow, backward flow or None) for each consecutive pair."""
    from vidnets.flow.warp import warped_flow

    flow_fn = make_flow_fn(options.method)

    def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return warped_flow(a, b, flow_fn) if options.warp else flow_fn(a, b)

    previous = None
    for frame in frames:
        if previous is not None:
            yield previous, flow(previous, frame), (flow(frame, previous) if options.backward else None)
        previous = frame


def conflict(folder: Path, video: str | Path, options: FlowOptions) -> str | None:
    """Why the complete flow in ``folder`` cannot stand for ``video`` with ``options``; None if it can
    (or the folder is not complete)."""
    if not store.is_complete(folder):
        return None
    meta = store.read_meta(folder)
    if not store.same_video(meta, video):
        return f"{folder} holds the flow of another video, {meta.video}"
    stored, wanted = store.flow_settings(meta), options.settings()
    if stored != wanted:
        diff = ", ".join(f"{k} {stored[k]!r} (asked {wanted[k]!r})" for k in wanted if stored[k] != wanted[k])
        return f"{folder} holds flow with other settings: {diff}"
    return None


@contextlib.contextmanager
def video_lock(out_root: Path, vid: str):
    """Exclusive lock on one video's output (waits while another process holds it)."""
    import fcntl

    locks = Path(out_root) / ".vidnets-locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / (vid.replace("/", "__") + ".lock"), "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def extract_video(video: str | Path, out_root: str | Path, options: FlowOptions,
                  *, overwrite: bool = False, vid: str | None = None) -> VideoResult:
    """Extract one video into ``out_root/<vid>/`` (default id: its stem) atomically, holding its lock;
    never raises for a bad video."""
    vid = vid or store.video_id(video)
    with video_lock(Path(out_root), vid):
        return _extract_locked(video, Path(out_root) / vid, options, overwrite)


def _extract_locked(video: str | Path, final: Path, options: FlowOptions, overwrite: bool) -> VideoResult:
    import cv2

    cv2.setNumThreads(1)  # one process per video; let the pool use the cores
    start = time.perf_counter()
    if store.is_complete(final) and not overwrite:
        problem = conflict(final, video, options)
        if problem is None:
            return VideoResult(str(video), "skipped", fields=store.read_meta(final).num_fields)
        return VideoResult(str(video), "failed", error=f"FlowSettingsError: {problem}; rerun with --overwrite "
                                                        "to recompute, or use another --out")
    partial = final.parent / f".{final.name}.partial"
    try:
        shutil.rmtree(partial, ignore_errors=True)  # left by a killed run
        partial.mkdir(parents=True)
        count, written, shape = 0, 0, None
        for _, forward, backward in _pair_flows(
                iter_gray_frames(video, decode_size(options)), options):
            written += store.write_field(partial, count, forward, options.bound, options.jpeg_quality)
            if backward is not None:
                written += store.write_field(partial, count, backward, options.bound, options.jpeg_quality,
                                             backward=True)
            shape = forward.shape
            count += 1
        if count == 0:
            raise ValueError(f"{video}: fewer than 2 decodable frames")
        meta = store.FlowMeta(video=str(video), method=options.method, bound=float(options.bound),
                              jpeg_quality=int(options.jpeg_quality), width=int(shape[1]), height=int(shape[0]),
                              num_frames=count + 1, num_fields=count, backward=options.backward,
                              warp=options.warp, resize=options.resize, source=os.path.realpath(video))
        # Plain write is enough: the folder only becomes visible by the rename below.
        (partial / store.META_NAME).write_text(json.dumps(store.meta_to_json(meta), indent=2))
        if final.exists():  # an incomplete folder from another tool, or --overwrite
            shutil.rmtree(final)
        os.replace(partial, final)
        return VideoResult(str(video), "done", fields=count, seconds=time.perf_counter() - start, bytes=written)
    except Exception as error:  # a bad video must not stop the run
        from vidnets.data.video import VideoError

        shutil.rmtree(partial, ignore_errors=True)
        detail = f"{type(error).__name__}: {error}"
        if not isinstance(error, (OSError, ValueError, VideoError)):  # unexpected: keep where it happened
            detail += "\n" + traceback.format_exc(limit=3)
        return VideoResult(str(video), "failed", seconds=time.perf_counter() - start, error=detail)


def check_existing(videos: Sequence[str | Path], ids: dict[str, str], out_root: Path, options: FlowOptions) -> None:
    """Raise :class:`FlowSettingsError` if a complete folder holds another video or other settings."""
    problems = [p for v in videos if (p := conflict(out_root / ids[str(v)], v, options))]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise FlowSettingsError(f"{problems[0]}{more}; rerun with --overwrite to recompute, or use another --out")


def extract_videos(videos: Sequence[str | Path], out_root: str | Path, options: FlowOptions, *,
                   workers: int = 1, shard: str | None = None, overwrite: bool = False,
                   progress: bool = True) -> list[VideoResult]:
    """Extract this shard's videos with ``workers`` processes; complete folders are skipped (resume)."""
    from tqdm import tqdm

    from vidnets.utils.sharding import current_shard, take_shard

    from vidnets.utils.io import ensure_writable_dir

    videos = list(dict.fromkeys(str(v) for v in videos))
    ids = store.video_ids(videos)
    index, count = current_shard(shard)
    mine = take_shard(videos, index, count)
    out_root = ensure_writable_dir(out_root, "flow output folder")
    if not overwrite:
        check_existing(mine, ids, out_root, options)
    results: list[VideoResult] = []
    todo = []
    for video in mine:
        if not overwrite and store.is_complete(out_root / ids[video]):
            results.append(VideoResult(str(video), "skipped"))
        else:
            todo.append(video)
    bar = tqdm(total=len(mine), initial=len(results), unit="video", desc=f"flow {options.method}",
               disable=not progress)
    if workers <= 1:
        for video in todo:
            results.append(_report(extract_video(video, out_root, options, overwrite=overwrite, vid=ids[video]),
                                   bar))
    else:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(extract_video, video, out_root, options, overwrite=overwrite, vid=ids[video])
                       for video in todo]
            for future in as_completed(futures):
                results.append(_report(future.result(), bar))
    bar.close()
    order = {str(v): i for i, v in enumerate(mine)}
    return sorted(results, key=lambda r: order.get(r.video, 0))


def _report(result: VideoResult, bar) -> VideoResult:
    bar.update(1)
    if result.status == "failed":
        bar.write(f"FAILED {result.video}: {result.error}")
    return result
