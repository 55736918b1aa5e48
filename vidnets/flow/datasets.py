"""Datasets of stored optical flow for the temporal streams of Two-Stream and TSN.

Records point at *videos* (``record.path``, ``record.label``, as ``vidnets.data.datasets.VideoRecord``);
their flow is read from ``flow_root/<video id>/`` where ``<video id>`` is the video file's stem
(``vidnets.flow.store.flow_dir_for``), i.e. the folder ``vidnets flow extract VIDEOS --out flow_root``
writes. Items follow the ``vidnets.data`` contract::

    {"clip": FloatTensor, "label": int, "index": int, "path": str}      or
    {"error": str, "path": str, "index": int}                            (missing/corrupt flow; skipped
                                                                          by vidnets.data's collate_skip_bad)

Clip shapes (values: displacements in pixels of the stored resolution, times ``scale``, default 1)::

    recipe                 train                 test
    two_stream_temporal    (2L, C, C)            (views·crops, 2L, C, C)      L=10, C=224, 25 views × 10 crops
    tsn_flow               (K, 10, C, C)         (crops, segments, 10, C, C)  K=3; test 25 segments × 10 crops

Two-Stream training (§5): one random window of L fields, a random C×C crop from anywhere in the frame,
random horizontal flip (x negated); inputs are mean-flow subtracted by default (Table 1b's better setting).
TSN training: K segments, one random window of 5 fields in each, TSN's corner multi-scale crop resized to
C×C (vectors rescaled), flip. Test: windows evenly spaced, 4 corners + centre and their mirrors.
A window that runs past the last field repeats the last field (videos shorter than L+1 frames).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from vidnets.flow import augment
from vidnets.flow.stacking import REPRESENTATIONS, build_stack, mean_subtraction_mode
from vidnets.flow.store import FlowFrames, flow_dir_for

__all__ = ["FlowStackDataset", "build_flow_dataset", "override_keys", "window_starts"]

LAYOUTS = ("two_stream", "tsn")

RECIPES: dict[str, dict[str, Any]] = {
    # Simonyan & Zisserman 2014 §3.1, §5: L=10, 224 crops, 25 frames × 10 crops at test.
    "two_stream_temporal": dict(
        layout="two_stream",
        length=10,
        segments=1,
        views=25,
        crops=10,
        crop=224,
        representation="stack",
        mean_subtraction=True,
        multiscale=False,
    ),
    # Wang et al. 2016: new_length 5 (10 channels), K=3 segments, 25 × 10 crops at test.
    "tsn_flow": dict(
        layout="tsn",
        length=5,
        segments=3,
        views=25,
        crops=10,
        crop=224,
        representation="stack",
        mean_subtraction=False,
        multiscale=True,
    ),
}


def window_starts(
    num_fields: int, length: int, count: int, *, train: bool, generator: torch.Generator | None = None
) -> list[int]:
    """First field of ``count`` windows of ``length`` fields.

    Train: one random start per equal segment of the valid range (TSN segment sampling; count=1 is a
    uniformly random window). Test: the centres of ``count`` equal segments (evenly spaced).
    """
    valid = max(num_fields - length + 1, 1)
    if train:
        bounds = np.linspace(0, valid, count + 1)
        starts = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            lo_i, hi_i = int(np.floor(lo)), max(int(np.floor(hi)), int(np.floor(lo)) + 1)
            starts.append(min(int(torch.randint(lo_i, hi_i, (1,), generator=generator)), valid - 1))
        return starts
    tick = valid / count
    return [min(int(tick / 2 + tick * i), valid - 1) for i in range(count)]


class FlowStackDataset(Dataset):
    """Flow stacks per video; see the module docstring for shapes and the recipes."""

    def __init__(
        self,
        records: Sequence[Any],
        flow_root: str | Path,
        *,
        train: bool,
        layout: str = "two_stream",
        length: int = 10,
        segments: int = 1,
        views: int = 25,
        crops: int = 10,
        crop: int = 224,
        representation: str = "stack",
        mean_subtraction: bool | str = False,
        multiscale: bool = False,
        flip: bool = True,
        scale: float = 1.0,
        bound: float | None = None,
        on_error: str = "skip",
    ):
        if layout not in LAYOUTS:
            raise ValueError(f"layout: expected one of {LAYOUTS}, found {layout!r}")
        if representation not in REPRESENTATIONS:
            raise ValueError(f"representation: expected one of {REPRESENTATIONS}, found {representation!r}")
        if representation == "bidirectional" and length % 2:
            raise ValueError(f"bidirectional stacking needs an even length, found {length}")
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error: expected 'skip' or 'raise', found {on_error!r}")
        self.records = list(records)
        self.flow_root = Path(flow_root)
        self.train, self.layout, self.length = train, layout, int(length)
        self.segments, self.views, self.crops, self.crop = int(segments), int(views), int(crops), int(crop)
        self.representation, self.mean_subtraction = representation, mean_subtraction_mode(mean_subtraction)
        self.multiscale, self.flip, self.bound, self.on_error = bool(multiscale), bool(flip), bound, on_error
        self.scale = float(scale)

    def __len__(self) -> int:
        return len(self.records)

    def flow_dir(self, index: int) -> Path:
        return flow_dir_for(self.flow_root, self.records[index].path)

    def _stack(self, flow: FlowFrames, start: int) -> np.ndarray:
        indices = [min(start + k, flow.num_fields - 1) for k in range(self.length)]
        backward = flow.read_many(indices, backward=True) if self.representation == "bidirectional" else None
        return build_stack(
            flow.read_many(indices),
            self.representation,
            backward_fields=backward,
            mean_subtraction=self.mean_subtraction,
        )

    def _train_view(self, stacks: torch.Tensor) -> torch.Tensor:
        height, width = stacks.shape[-2:]
        if self.multiscale:
            box = augment.multiscale_crop_params(height, width, None)
            out = augment.resize_flow(augment.crop(stacks, *box), (self.crop, self.crop))
        else:
            out = augment.crop(stacks, *augment.random_crop_params(height, width, self.crop, None))
        if self.flip and bool(torch.rand(()) < 0.5):
            out = augment.flip_flow(out)
        return out.contiguous()

    def load(self, index: int) -> torch.Tensor:
        flow = FlowFrames(self.flow_dir(index), bound=self.bound)
        count = self.segments if self.train else self.views
        starts = window_starts(flow.num_fields, self.length, count, train=self.train)
        stacks = torch.from_numpy(np.stack([self._stack(flow, s) for s in starts]))  # (count, 2L, H, W)
        if self.scale != 1.0:
            stacks = stacks * self.scale
        if self.train:
            clip = self._train_view(stacks)
            return clip[0] if self.layout == "two_stream" else clip
        views = augment.test_views(stacks, self.crop, self.crops)  # (crops, count, 2L, C, C)
        if self.layout == "two_stream":  # every (window, crop) is one view
            return views.transpose(0, 1).reshape(-1, *views.shape[2:]).contiguous()
        return views.contiguous()

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        try:
            clip = self.load(index)
        except Exception as error:
            if self.on_error == "raise":
                raise
            return {
                "error": f"{self.flow_dir(index)}: {type(error).__name__}: {error}",
                "path": str(record.path),
                "index": index,
            }
        return {"clip": clip, "label": int(record.label), "index": index, "path": str(record.path)}


def override_keys(recipe: str) -> frozenset[str]:
    """The keywords :func:`build_flow_dataset` takes for ``recipe`` (``frames`` and ``size`` as aliases)."""
    return frozenset(RECIPES[recipe]) | {"flip", "scale", "bound", "on_error", "frames", "size"}


def build_flow_dataset(
    recipe: str, records: Sequence[Any], *, train: bool, flow_root: str | Path, **overrides: Any
) -> FlowStackDataset:
    """The flow dataset of a paper recipe ("two_stream_temporal" or "tsn_flow").

    Overrides: ``length`` (L), ``segments``, ``views`` (test windows), ``crops`` (1, 5, 10), ``crop`` (side),
    ``representation`` ("stack", "trajectory", "bidirectional"), ``mean_subtraction`` (true = "field", the
    paper's per-field mean vector; "channel"; false), ``multiscale``,
    ``flip``, ``scale`` (multiplies the displacements; 255 / (2·bound) gives the scale of the Caffe models'
    "uint8 flow minus 128" inputs), ``bound`` (only for folders without meta.json), ``on_error``.
    ``frames`` is accepted as an alias of ``length`` and ``size`` is ignored (the stored flow already has its size).
    """
    if recipe not in RECIPES:
        raise ValueError(f"flow recipe: expected one of {', '.join(RECIPES)}, found {recipe!r}")
    settings = dict(RECIPES[recipe])
    overrides = dict(overrides)
    if "frames" in overrides:
        overrides["length"] = overrides.pop("frames")
    overrides.pop("size", None)
    unknown = set(overrides) - override_keys(recipe)
    if unknown:
        raise TypeError(f"build_flow_dataset({recipe!r}): unknown override(s) {sorted(unknown)}")
    settings.update(overrides)
    return FlowStackDataset(records, flow_root, train=train, **settings)
