"""Which frames to read: per-paper temporal samplers, and torch Samplers over videos.

A frame sampler is a callable ``sampler(num_frames, rng) -> SampledIndices`` that never decodes.
``SampledIndices.indices`` has shape ``(V, S, L)``: V temporal views (test clips or test frames),
S segments per view (TSN), L consecutive frames per segment (a clip, an RGB-diff snippet or a flow
stack). ``rng`` is a ``numpy.random.Generator`` (training) — test modes ignore it and are fixed.

=================  ==========================================================================
paper              sampler
=================  ==========================================================================
C3D                ``ClipSampler(16)``: train random 16-frame clip; test ``views`` evenly spaced
Res3D              ``ClipSampler(8, stride=2)``
P3D                ``ClipSampler(16)``: test 20 clips per video (evenly spaced; paper: random)
T3D                ``ClipSampler(32)``; test ``mode="non_overlapping"`` (all 32-frame clips)
Two-Stream         ``SegmentSampler(1)`` one frame per video; test ``SegmentSampler(25,
                   as_views=True)`` 25 evenly spaced frames (× 10 crops in the transform)
TSN                ``SegmentSampler(3)``: one snippet per segment, random offset in training,
                   segment centre in testing (25 segments at test)
=================  ==========================================================================

Videos shorter than a clip are looped (``looped=True``) for the 3D-clip samplers, as C3D-style
training implies; ``loop=False`` makes them raise :class:`TooShortError` so they are skipped.

Over videos: ``ClipsPerVideoSampler`` yields every video k times per epoch (C3D's five random
2-second clips per Sports-1M video); ``ClassBalancedSampler`` draws a class uniformly, then a video
of it (Two-Stream's class-balanced sampling).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Sampler


class TooShortError(ValueError):
    """The video has fewer frames than the sampler needs and looping is off."""


@dataclass
class SampledIndices:
    indices: np.ndarray  # (V, S, L) int64, 0-based frame numbers
    looped: bool = False

    @property
    def views(self) -> int:
        return int(self.indices.shape[0])


class ClipSampler:
    """``frames`` frames at ``stride`` (span ``(frames-1)*stride+1``), C3D / Res3D / P3D / T3D.

    Modes: ``"random"`` (training; ``views`` independent random clips), ``"center"`` (one clip in
    the middle), ``"uniform"`` (``views`` clips with evenly spaced starts, first at frame 0, last
    ending at the last frame), ``"non_overlapping"`` (consecutive clips tiling the video; all of
    them, or ``views`` evenly chosen ones when ``views`` is set).
    """

    def __init__(self, frames: int, stride: int = 1, *, mode: str = "random", views: int | None = 1, loop: bool = True):
        if mode not in ("random", "center", "uniform", "non_overlapping"):
            raise ValueError(f"ClipSampler mode must be random|center|uniform|non_overlapping, got {mode!r}")
        if frames < 1 or stride < 1:
            raise ValueError(f"frames and stride must be >= 1, got {frames}, {stride}")
        self.frames, self.stride, self.mode, self.views, self.loop = frames, stride, mode, views, loop

    @property
    def span(self) -> int:
        return (self.frames - 1) * self.stride + 1

    def __call__(self, num_frames: int, rng: np.random.Generator | None = None) -> SampledIndices:
        if num_frames < 1:
            raise TooShortError("video has no frames")
        offsets = np.arange(self.frames) * self.stride
        looped = num_frames < self.span
        if looped:
            if not self.loop:
                raise TooShortError(f"video has {num_frames} frames, the sampler needs {self.span}")
            views = 1 if self.mode in ("center", "non_overlapping") else (self.views or 1)
            clip = offsets % num_frames
            return SampledIndices(np.tile(clip, (views, 1))[:, None, :], looped=True)
        last_start = num_frames - self.span
        if self.mode == "random":
            rng = rng if rng is not None else np.random.default_rng()
            starts = rng.integers(0, last_start + 1, size=self.views or 1)
        elif self.mode == "center":
            starts = np.array([last_start // 2])
        elif self.mode == "uniform":
            starts = np.round(np.linspace(0, last_start, self.views or 1)).astype(np.int64)
            if (self.views or 1) == 1:
                starts = np.array([last_start // 2])
        else:  # non_overlapping
            starts = np.arange(0, last_start + 1, self.span)
            if self.views and self.views < len(starts):
                starts = starts[np.round(np.linspace(0, len(starts) - 1, self.views)).astype(np.int64)]
        idx = starts[:, None] + offsets[None, :]
        return SampledIndices(idx[:, None, :].astype(np.int64), looped=False)


class SegmentSampler:
    """TSN / Two-Stream: the video cut into ``segments`` equal parts, one snippet of ``length``
    consecutive frames from each.

    Training (``mode="random"``) takes a random offset inside each segment; testing
    (``mode="center"``) the segment centres — 25 segments give the 25 evenly spaced test frames.
    Follows tsn-pytorch ``_sample_indices`` / ``_get_test_indices``: with fewer frames than
    segments, random mode draws sorted random offsets (or repeats frame 0). A video shorter than
    ``length`` has its snippet clamped to the last frame and is reported as looped.
    ``as_views=True`` returns the segments as separate views ``(segments, 1, length)``
    (Two-Stream testing scores each frame on its own); otherwise ``(1, segments, length)``.
    """

    def __init__(self, segments: int, length: int = 1, *, mode: str = "random", as_views: bool = False):
        if mode not in ("random", "center"):
            raise ValueError(f"SegmentSampler mode must be random|center, got {mode!r}")
        if segments < 1 or length < 1:
            raise ValueError(f"segments and length must be >= 1, got {segments}, {length}")
        self.segments, self.length, self.mode, self.as_views = segments, length, mode, as_views

    def __call__(self, num_frames: int, rng: np.random.Generator | None = None) -> SampledIndices:
        if num_frames < 1:
            raise TooShortError("video has no frames")
        k, n = self.segments, num_frames
        usable = max(n - self.length + 1, 1)
        if self.mode == "random":
            rng = rng if rng is not None else np.random.default_rng()
            avg = usable // k
            if avg > 0:
                starts = np.arange(k) * avg + rng.integers(0, avg, size=k)
            elif usable > k:
                starts = np.sort(rng.integers(0, usable, size=k))
            else:
                starts = np.zeros(k, dtype=np.int64)
        else:
            tick = usable / k
            starts = (tick / 2.0 + tick * np.arange(k)).astype(np.int64)
        idx = starts[:, None] + np.arange(self.length)[None, :]
        looped = bool(idx.max() >= n)
        idx = np.minimum(idx, n - 1).astype(np.int64)
        shape = (k, 1, self.length) if self.as_views else (1, k, self.length)
        return SampledIndices(idx.reshape(shape), looped=looped)


class ClipsPerVideoSampler(Sampler[int]):
    """Every video index ``clips_per_video`` times per epoch, shuffled (C3D Sports-1M protocol:
    five random 2-second clips per training video). The clip itself is drawn by the dataset's
    frame sampler each time, so the k items of one video are k different random clips.
    Call ``set_epoch(e)`` for a different order each epoch (also under DDP sharding by the
    caller)."""

    def __init__(self, num_videos: int, clips_per_video: int = 5, *, shuffle: bool = True, seed: int = 0):
        self.num_videos, self.clips_per_video, self.shuffle, self.seed = num_videos, clips_per_video, shuffle, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_videos * self.clips_per_video

    def __iter__(self) -> Iterator[int]:
        order = np.repeat(np.arange(self.num_videos), self.clips_per_video)
        if self.shuffle:
            np.random.default_rng((self.seed, self.epoch)).shuffle(order)
        return iter(order.tolist())


class ClassBalancedSampler(Sampler[int]):
    """Draws ``num_samples`` video indices per epoch: a class uniformly at random, then a video of
    that class uniformly (Two-Stream: "class-balanced" sampling of videos). ``num_samples``
    defaults to the number of videos."""

    def __init__(self, labels: Sequence[int], num_samples: int | None = None, *, seed: int = 0):
        labels = np.asarray(labels)
        self.by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        self.num_samples = int(num_samples or len(labels))
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng((self.seed, self.epoch))
        classes = rng.integers(0, len(self.by_class), size=self.num_samples)
        return iter(int(rng.choice(self.by_class[c])) for c in classes)


def worker_rng() -> np.random.Generator:
    """A numpy Generator seeded from torch's RNG, so DataLoader workers (which torch seeds
    differently per worker from the loader's generator) draw different, reproducible clips."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
