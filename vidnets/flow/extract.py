"""Dense optical flow extraction: videos -> quantised JPEG flow folders (see ``vidnets.flow.store``).

::

    videos ──shard (--shard i/n or RANK/WORLD_SIZE)──► skip those already complete (meta.json present)
        └─► process pool, one video per task, tqdm progress
              decode (vidnets.data.video, PyAV) → resize (short side or W×H) → grayscale
              for each consecutive pair: forward flow [, backward flow] [camera motion removed: --warp]
              quantise to uint8 in [-bound, bound] → JPEG into  out/.<id>.partial/
              meta.json last → rename .<id>.partial → out/<id>       (a killed run leaves no "done" folder)

Methods: ``tvl1`` (``cv2.optflow.DualTVL1OpticalFlow_create``, defaults, as TSN), ``farneback``
(``cv2.calcOpticalFlowFarneback`` with the OpenCV tutorial parameters) and ``dis``
(``cv2.DISOpticalFlow_create``, preset "medium"). All compute flow from the first to the second frame:
``second(p + flow(p)) ≈ first(p)``.

Bad or unreadable videos are reported and skipped; ``extract_videos`` returns one result per video and the
command's exit status is non-zero when any failed.
"""

from __future__ import annotations

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

__all__ = ["METHODS", "FlowOptions", "VideoResult", "make_flow_fn", "compute_flow", "decode_size",
           "iter_gray_frames", "extract_video", "extract_videos"]

METHODS = ("tvl1", "farneback", "dis")
FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


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
        if self.bound <= 0:
            raise ValueError(f"--bound must be > 0, found {self.bound}")


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


def extract_video(video: str | Path, out_root: str | Path, options: FlowOptions,
                  *, overwrite: bool = False) -> VideoResult:
    """Extract one video into ``out_root/<id>/`` atomically; never raises for a bad video."""
    import cv2

    cv2.setNumThreads(1)  # one process per video; let the pool use the cores
    start = time.perf_counter()
    final = store.flow_dir_for(out_root, video)
    if store.is_complete(final) and not overwrite:
        return VideoResult(str(video), "skipped", fields=store.read_meta(final).num_fields)
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
                              warp=options.warp)
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


def _check_unique_ids(videos: Sequence[str | Path]) -> None:
    seen: dict[str, str] = {}
    for video in videos:
        key = store.video_id(video)
        if key in seen and seen[key] != str(video):
            raise ValueError(f"two videos map to the same flow folder {key!r}: {seen[key]} and {video}")
        seen[key] = str(video)


def extract_videos(videos: Sequence[str | Path], out_root: str | Path, options: FlowOptions, *,
                   workers: int = 1, shard: str | None = None, overwrite: bool = False,
                   progress: bool = True) -> list[VideoResult]:
    """Extract this shard's videos with ``workers`` processes; complete folders are skipped (resume)."""
    from tqdm import tqdm

    from vidnets.utils.sharding import current_shard, take_shard

    _check_unique_ids(videos)
    index, count = current_shard(shard)
    mine = take_shard(list(videos), index, count)
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    results: list[VideoResult] = []
    todo = []
    for video in mine:
        if not overwrite and store.is_complete(store.flow_dir_for(out_root, video)):
            results.append(VideoResult(str(video), "skipped"))
        else:
            todo.append(video)
    bar = tqdm(total=len(mine), initial=len(results), unit="video", desc=f"flow {options.method}",
               disable=not progress)
    if workers <= 1:
        for video in todo:
            results.append(_report(extract_video(video, out_root, options, overwrite=overwrite), bar))
    else:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(extract_video, video, out_root, options, overwrite=overwrite) for video in todo]
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
