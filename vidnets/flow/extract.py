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

Methods: ``tvl1`` (``cv2.optflow.DualTVL1OpticalFlow_create``: TSN's dense_flow parameters with a
pyramid as deep as the frame allows, see :class:`TVL1Params`), ``farneback``
(``cv2.calcOpticalFlowFarneback`` with the OpenCV tutorial parameters) and ``dis``
(``cv2.DISOpticalFlow_create``, preset "medium" unless asked). All compute flow from the first to the
second frame: ``second(p + flow(p)) ≈ first(p)``. End-point error and speed of each on known answers:
``python -m benchmarks.flow_quality`` (BENCHMARKS.md).

Settings. A folder is "already complete" only when its ``meta.json`` names the same video (by real
path) and the same settings (method and its parameters, bound, JPEG quality, size, backward, warp);
folders written before the parameters were recorded hold those of that time (:func:`unrecorded_params`:
TV-L1 with 5 scales, so its old flow is stale, while DIS and Farneback are unchanged). A rerun with other
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from vidnets.flow import store

__all__ = [
    "METHODS",
    "FlowSettingsError",
    "FlowOptions",
    "VideoResult",
    "TVL1Params",
    "TVL1_DEFAULT",
    "TSN_TVL1",
    "OPENCV_DEFAULT_TVL1",
    "DIS_PRESETS",
    "method_params",
    "make_flow_fn",
    "compute_flow",
    "decode_size",
    "iter_gray_frames",
    "extract_video",
    "extract_videos",
]

METHODS = ("tvl1", "farneback", "dis")
FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


class FlowSettingsError(ValueError):
    """The output folder holds flow of another video or with other settings."""


@dataclass(frozen=True)
class TVL1Params:
    """Parameters of OpenCV's dual TV-L1 flow (``cv2.optflow.DualTVL1OpticalFlow_create``), named as there.

    Sources. The flow of TSN comes from ``dense_flow`` (``extract_gpu -t 1``), which calls
    ``cv::cuda::OpticalFlowDual_TVL1::create()`` with its defaults: tau 0.25, lambda 0.15, theta 0.3,
    5 scales, scale step 0.8, 5 warps, epsilon 0.01, 300 iterations per warp, no median filtering
    (:data:`TSN_TVL1`); mmaction2's ``denseflow`` makes the same call. OpenCV's CPU defaults are the same
    except that the 300 iterations are split into 10 outer × 30 inner ones with a 5×5 median filter of the
    flow between outer iterations (:data:`OPENCV_DEFAULT_TVL1`). (The Two-Stream paper used OpenCV's GPU
    Brox et al. flow instead, which has no CPU implementation in OpenCV.)

    What is changed, and why. Five scales of 0.8 make the coarsest level 0.8⁴ = 0.41 of the frame, so a
    motion of 6.7 px is still 2.7 px there. The linearised data term of TV-L1 only reaches about a pixel,
    so on fine texture (blur σ 1.2 px) such a motion is never found: an object moving (+6, −3) px comes
    out as (+1.1, −0.1) px, and a 3° rotation is off by 0.8 px on average (``python -m
    benchmarks.flow_quality``). The reference implementation of the method (Sánchez Pérez,
    Meinhardt-Llopis, Facciolo, "TV-L1 Optical Flow Estimation", IPOL 2013, whose code OpenCV's is based
    on) asks for 100 scales and caps them so that the coarsest image stays above 16 px. ``scales=0`` (the default here) does the same with OpenCV's own stop rule: as many scales as
    keep the short side ≥ 16 px (13 at 340×256 and at 320×240). Every other value is the dense_flow /
    OpenCV default.
    """

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    scales: int = 0  # 0: as many as keep the short side >= MIN_PYRAMID_SIDE
    scale_step: float = 0.8
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    median_filtering: int = 5

    def scales_for(self, height: int, width: int) -> int:
        """The number of pyramid levels used for a ``height`` × ``width`` frame."""
        if self.scales > 0:
            return self.scales
        levels, side = 1, min(height, width) * self.scale_step
        while side >= MIN_PYRAMID_SIDE:
            levels, side = levels + 1, side * self.scale_step
        return levels

    def create(self, height: int, width: int):
        import cv2

        return cv2.optflow.DualTVL1OpticalFlow_create(
            tau=self.tau,
            lambda_=self.lambda_,
            theta=self.theta,
            nscales=self.scales_for(height, width),
            warps=self.warps,
            epsilon=self.epsilon,
            innnerIterations=self.inner_iterations,
            outerIterations=self.outer_iterations,
            scaleStep=self.scale_step,
            medianFiltering=self.median_filtering,
        )


MIN_PYRAMID_SIDE = 16  # OpenCV's TV-L1 stops its pyramid below 16 px, IPOL's at about 16 px
TVL1_DEFAULT = TVL1Params()
#: dense_flow's CUDA call (TSN, mmaction2), as closely as the CPU implementation allows
TSN_TVL1 = TVL1Params(scales=5, inner_iterations=300, outer_iterations=1, median_filtering=1)
#: ``cv2.optflow.DualTVL1OpticalFlow_create()`` with no arguments (what vidnets called before)
OPENCV_DEFAULT_TVL1 = TVL1Params(scales=5)

#: ``cv2.calcOpticalFlowFarneback`` arguments (pyr_scale, levels, winsize, iterations, poly_n, poly_sigma,
#: flags): OpenCV's dense optical flow tutorial, also mmaction2's ``tools/misc/flow_extraction.py``.
FARNEBACK_ARGS = (0.5, 3, 15, 3, 5, 1.2, 0)
DIS_PRESETS = ("ultrafast", "fast", "medium")


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
    tvl1: TVL1Params = TVL1_DEFAULT
    dis_preset: str = "medium"

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"--method: expected one of {', '.join(METHODS)}, found {self.method!r}")
        if self.dis_preset not in DIS_PRESETS:
            raise ValueError(f"--dis-preset: expected one of {', '.join(DIS_PRESETS)}, found {self.dis_preset!r}")
        if self.tvl1.scales < 0:
            raise ValueError(
                f"--tvl1-scales must be >= 0 (0: as many as the frame size allows), found {self.tvl1.scales}"
            )
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
        return {
            "method": self.method,
            "bound": float(self.bound),
            "jpeg_quality": int(self.jpeg_quality),
            "resize": self.resize,
            "backward": bool(self.backward),
            "warp": bool(self.warp),
            "params": self.method_params(),
        }

    def method_params(self) -> dict:
        """The flow method's own parameters, as ``meta.json`` records them."""
        return method_params(self.method, tvl1=self.tvl1, dis_preset=self.dis_preset)

    def flow_fn(self) -> FlowFn:
        return make_flow_fn(self.method, tvl1=self.tvl1, dis_preset=self.dis_preset)


@dataclass
class VideoResult:
    video: str
    status: str  # "done" | "skipped" (already complete) | "failed"
    fields: int = 0
    seconds: float = 0.0
    bytes: int = 0
    error: str | None = None


def method_params(method: str, *, tvl1: TVL1Params = TVL1_DEFAULT, dis_preset: str = "medium") -> dict:
    """The parameters of ``method`` as ``meta.json`` records them (so that a change makes old flow stale)."""
    if method == "tvl1":
        return asdict(tvl1)
    if method == "dis":
        return {"preset": dis_preset}
    if method == "farneback":
        names = ("pyr_scale", "levels", "winsize", "iterations", "poly_n", "poly_sigma", "flags")
        return dict(zip(names, FARNEBACK_ARGS))
    raise ValueError(f"unknown flow method {method!r}; expected one of {', '.join(METHODS)}")


def make_flow_fn(method: str, *, tvl1: TVL1Params = TVL1_DEFAULT, dis_preset: str = "medium") -> FlowFn:
    """A callable ``(first, second) -> (H, W, 2) float32`` for uint8 grayscale frames.

    ``tvl1`` sets TV-L1's parameters (:class:`TVL1Params`); ``dis_preset`` picks DIS's preset
    (OpenCV's ``DISOPTICAL_FLOW_PRESET_*``: ultrafast, fast, medium).
    """
    import cv2

    if method == "tvl1":
        estimators: dict[tuple[int, ...], object] = {}  # the scale count depends on the frame size

        def tvl1_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            if a.shape not in estimators:
                estimators[a.shape] = tvl1.create(*a.shape[:2])
            return estimators[a.shape].calc(a, b, None)

        return tvl1_flow
    if method == "dis":
        if dis_preset not in DIS_PRESETS:
            raise ValueError(f"DIS preset: expected one of {', '.join(DIS_PRESETS)}, found {dis_preset!r}")
        estimator = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{dis_preset.upper()}"))
        return lambda a, b: estimator.calc(a, b, None)
    if method == "farneback":
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, *FARNEBACK_ARGS)
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


def _pair_flows(
    frames: Iterator[np.ndarray], options: FlowOptions
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Yield (first frame, forward flow, backward flow or None) for each consecutive pair."""
    from vidnets.flow.warp import warped_flow

    flow_fn = options.flow_fn()

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
    if stored["params"] is None:
        stored["params"] = unrecorded_params(meta.method)
    if stored != wanted:
        diff = ", ".join(_describe(k, stored[k], wanted[k]) for k in wanted if stored[k] != wanted[k])
        older = (
            " (written by an older vidnets, which used these without recording them)"
            if meta.params is None and stored["params"] != wanted["params"]
            else ""
        )
        return f"{folder} holds flow with other settings: {diff}{older}"
    return None


def unrecorded_params(method: str) -> dict:
    """The parameters of folders written before ``meta.json`` recorded them: OpenCV's TV-L1 defaults
    (5 scales), DIS medium and the Farneback arguments above (the last two unchanged since)."""
    return method_params(method, tvl1=OPENCV_DEFAULT_TVL1) if method in METHODS else {}


def _describe(key: str, stored, wanted) -> str:
    """One setting that differs, for the error message."""
    if key != "params" or not isinstance(stored, dict):
        return f"{key} {stored!r} (asked {wanted!r})"
    return "parameters " + ", ".join(
        f"{k} {stored.get(k)!r} (asked {v!r})" for k, v in wanted.items() if stored.get(k) != v
    )


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


def extract_video(
    video: str | Path, out_root: str | Path, options: FlowOptions, *, overwrite: bool = False, vid: str | None = None
) -> VideoResult:
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
        return VideoResult(
            str(video),
            "failed",
            error=f"FlowSettingsError: {problem}; rerun with --overwrite to recompute, or use another --out",
        )
    partial = final.parent / f".{final.name}.partial"
    try:
        shutil.rmtree(partial, ignore_errors=True)  # left by a killed run
        partial.mkdir(parents=True)
        count, written, shape = 0, 0, None
        for _, forward, backward in _pair_flows(iter_gray_frames(video, decode_size(options)), options):
            written += store.write_field(partial, count, forward, options.bound, options.jpeg_quality)
            if backward is not None:
                written += store.write_field(
                    partial, count, backward, options.bound, options.jpeg_quality, backward=True
                )
            shape = forward.shape
            count += 1
        if count == 0:
            raise ValueError(f"{video}: fewer than 2 decodable frames")
        meta = store.FlowMeta(
            video=str(video),
            method=options.method,
            bound=float(options.bound),
            jpeg_quality=int(options.jpeg_quality),
            width=int(shape[1]),
            height=int(shape[0]),
            num_frames=count + 1,
            num_fields=count,
            backward=options.backward,
            warp=options.warp,
            resize=options.resize,
            source=os.path.realpath(video),
            params=options.method_params(),
        )
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


def extract_videos(
    videos: Sequence[str | Path],
    out_root: str | Path,
    options: FlowOptions,
    *,
    workers: int = 1,
    shard: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> list[VideoResult]:
    """Extract this shard's videos with ``workers`` processes; complete folders are skipped (resume)."""
    from tqdm import tqdm

    from vidnets.utils.io import ensure_writable_dir
    from vidnets.utils.sharding import current_shard, take_shard

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
    bar = tqdm(total=len(mine), initial=len(results), unit="video", desc=f"flow {options.method}", disable=not progress)
    if workers <= 1:
        for video in todo:
            results.append(_report(extract_video(video, out_root, options, overwrite=overwrite, vid=ids[video]), bar))
    else:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [
                pool.submit(extract_video, video, out_root, options, overwrite=overwrite, vid=ids[video])
                for video in todo
            ]
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
