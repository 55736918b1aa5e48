"""Per-paper data recipes: ``build_dataset(recipe, records, train=..., **overrides)``.

==================  =========================  ==========================  =========================
recipe              frames / resize            train                       test (output)
==================  =========================  ==========================  =========================
c3d                 16 consecutive, 128×171    random clip, crop 112, flip 10 clips × centre crop
                                                                           (V=10, 3, 16, 112, 112)
res3d               8 at stride 2, 128×171     random clip, crop 112, flip 10 clips × centre crop
p3d                 16, 182×242                random clip, crop 160, flip 20 clips × centre crop
t3d                 32, short side 256         corner crop 224, flip       all non-overlapping 32-frame
                                                                           clips × centre 224 (batch 1)
two_stream_spatial  1 frame, short side 256    random 224 anywhere, flip,  25 frames × 10 crops
                                               RGB jitter → (3, 224, 224)  (V=250, 3, 224, 224)
tsn_rgb             K=3 snippets, 256×340      multi-scale corner crop     25 segments × 10 crops
                                               {256,224,192,168}→224, flip (V=10, 25, 3, 224, 224)
tsn_rgbdiff         K=3 × 6 frames → 5 diffs   scales (1, .875, .75)       (V=10, 25, 15, 224, 224)
==================  =========================  ==========================  =========================

Test views: C3D's own test script scores clips; video accuracy averages clips (C3D issue #9), and
mmaction2 uses 10 clips × 1 crop — we take 10 evenly spaced clips. P3D: "20 random clips, single
centre crop" — evenly spaced here so testing is deterministic. T3D: every non-overlapping 32-frame
clip (a varying number of views: evaluate with batch size 1, or cap with ``views=N``). TSN test
tensors keep the 25 frames as segments so the model's consensus averages them; the 10 crops are
the views.

Normalisation (0–255 scale, RGB order; models are trained from scratch here, so these follow the
papers' released code but only the scale matters):
  C3D: the Sports-1M mean *volume* (per pixel and frame) is approximated by its per-channel mean,
       ≈ (102, 98, 90) RGB, as the common PyTorch ports do; std 1.
  Res3D: ``mean_value 128`` (C3D-v1.1 prototxt), std 1.
  TSN, P3D: [104, 117, 123] BGR = (123, 117, 104) RGB, scale 1 (TSN caffe / P3D README).
  Two-Stream spatial: the ImageNet mean (123.7, 116.8, 103.9), std 1 (VGG-M Caffe).
  T3D: ImageNet mean/std (its DenseNet code is PyTorch).
Overrides: ``frames, stride, size, crop, segments, views, crops, scales, mean, std, flip, jitter,
loop, flip_label_map, on_error, cache, decode_threads`` (e.g. ``frames=8, size=64, crop=56`` for a
CPU demo; an int ``size`` is a short side, a pair is (H, W)). ``flip=False`` turns the training
flip off; ``flip_label_map`` ({class index: class index}) relabels flipped training clips instead,
for classes a mirror turns into each other (moving left / right).

Flow recipes live in :mod:`vidnets.flow.datasets`; :mod:`vidnets.engine.recipes` is the table of
every recipe and its builder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from vidnets.data.datasets import VideoDataset, VideoRecord
from vidnets.data.sampling import ClipSampler, SegmentSampler
from vidnets.data.transforms import (
    CenterCrop,
    ClipTransform,
    ColorJitter,
    HorizontalFlip,
    MultiCrop,
    MultiScaleCrop,
    RandomCrop,
)

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
C3D_MEAN = (102.0, 98.0, 90.0)
CAFFE_BGR_MEAN_AS_RGB = (123.0, 117.0, 104.0)
UNIT_STD = (1.0, 1.0, 1.0)

RGB_RECIPES = ("c3d", "res3d", "p3d", "t3d", "two_stream_spatial", "tsn_rgb", "tsn_rgbdiff")


@dataclass(frozen=True)
class Recipe:
    """The numbers one paper uses; ``build_dataset`` turns them into sampler + transform."""

    kind: str  # "clip" (3D nets) | "frame" (Two-Stream) | "segments" (TSN)
    frames: int  # clip length, or frames per snippet
    size: int | tuple[int, int]  # resize (short side or (H, W))
    crop: int
    mean: Sequence[float]
    std: Sequence[float]
    stride: int = 1
    segments: int = 1
    views: int | None = 10  # temporal test views (None = all non-overlapping clips)
    crops: int = 1  # spatial test crops
    train_crop: str = "random"  # "random" | "corner" (fixed-size corner/centre) | "multiscale"
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
    test_mode: str = "uniform"  # ClipSampler test mode
    flip: bool = True
    jitter: bool = False
    loop: bool = True
    diff: bool = False
    flip_label_map: dict | None = None  # class index → class index of its mirror image


def recipe_defaults(recipe: str) -> Recipe:
    """The paper settings of ``recipe`` (see the module table)."""
    if recipe == "c3d":
        return Recipe("clip", 16, (128, 171), 112, C3D_MEAN, UNIT_STD)
    if recipe == "res3d":
        return Recipe("clip", 8, (128, 171), 112, (128.0,) * 3, UNIT_STD, stride=2)
    if recipe == "p3d":
        return Recipe("clip", 16, (182, 242), 160, CAFFE_BGR_MEAN_AS_RGB, UNIT_STD, views=20)
    if recipe == "t3d":
        return Recipe(
            "clip",
            32,
            256,
            224,
            IMAGENET_MEAN,
            IMAGENET_STD,
            views=None,
            train_crop="corner",
            test_mode="non_overlapping",
        )
    if recipe == "two_stream_spatial":
        return Recipe("frame", 1, 256, 224, IMAGENET_MEAN, UNIT_STD, views=25, crops=10, jitter=True)
    if recipe == "tsn_rgb":
        return Recipe(
            "segments",
            1,
            (256, 340),
            224,
            CAFFE_BGR_MEAN_AS_RGB,
            UNIT_STD,
            segments=3,
            views=25,
            crops=10,
            train_crop="multiscale",
        )
    if recipe == "tsn_rgbdiff":
        return Recipe(
            "segments",
            6,
            (256, 340),
            224,
            CAFFE_BGR_MEAN_AS_RGB,
            UNIT_STD,
            segments=3,
            views=25,
            crops=10,
            train_crop="multiscale",
            scales=(1.0, 0.875, 0.75),
            diff=True,
        )
    raise ValueError(
        f"unknown RGB recipe {recipe!r}; expected one of {', '.join(RGB_RECIPES)} (flow recipes are "
        "built by vidnets.flow.datasets.build_flow_dataset)"
    )


def _sampler(r: Recipe, train: bool):
    if r.kind == "clip":
        if train:
            return ClipSampler(r.frames, r.stride, mode="random", loop=r.loop)
        return ClipSampler(r.frames, r.stride, mode=r.test_mode, views=r.views, loop=r.loop)
    if r.kind == "frame":
        return SegmentSampler(
            1 if train else (r.views or 25), r.frames, mode="random" if train else "center", as_views=True
        )
    return SegmentSampler(r.segments if train else (r.views or 25), r.frames, mode="random" if train else "center")


def _transform(r: Recipe, train: bool) -> ClipTransform:
    layout = {"clip": "cthw", "frame": "chw", "segments": "kchw"}[r.kind]
    if train:
        if r.train_crop == "multiscale":
            ops = [MultiScaleCrop(r.crop, r.scales)]
        elif r.train_crop == "corner":
            ops = [_CornerCrop(r.crop)]
        else:
            ops = [RandomCrop(r.crop)]
        if r.flip:
            ops.append(HorizontalFlip(0.5, label_map=r.flip_label_map))
        if r.jitter:
            ops.append(ColorJitter())
    else:
        ops = [MultiCrop(r.crop, r.crops)] if r.crops > 1 else [CenterCrop(r.crop)]
    return ClipTransform(ops, mean=r.mean, std=r.std, layout=layout, stack_views=not train, diff=r.diff)


class _CornerCrop:
    """A fixed-size crop at the centre or one of the 4 corners, chosen at random (T3D training)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, views, rng):
        out = []
        for v in views:
            crops = MultiCrop(self.size, 5)([v], rng)
            out.append(crops[int(rng.integers(5))])
        return out


_FIELDS = {
    "frames",
    "stride",
    "size",
    "crop",
    "segments",
    "views",
    "crops",
    "scales",
    "mean",
    "std",
    "flip",
    "jitter",
    "loop",
    "flip_label_map",
}
_DATASET_KW = {"on_error", "cache", "decode_threads", "backend", "probe_workers"}
#: every keyword ``build_dataset`` takes besides the recipe's own
OVERRIDE_KEYS = frozenset(_FIELDS | _DATASET_KW)


def build_dataset(recipe: str, records: Sequence[VideoRecord], *, train: bool, **overrides) -> VideoDataset:
    """A :class:`VideoDataset` with the sampling and transforms of ``recipe`` (module table).

    Training items are one view; test items stack views in front: ``(V, ...)``.
    """
    r = recipe_defaults(recipe)
    unknown = set(overrides) - _FIELDS - _DATASET_KW
    if unknown:
        raise ValueError(
            f"build_dataset({recipe!r}): unknown override(s) {sorted(unknown)}; "
            f"expected some of {sorted(_FIELDS | _DATASET_KW)}"
        )
    fields = {k: v for k, v in overrides.items() if k in _FIELDS}
    if "scales" in fields:
        fields["scales"] = tuple(fields["scales"])
    r = replace(r, **fields)
    kwargs = {k: v for k, v in overrides.items() if k in _DATASET_KW}
    return VideoDataset(records, _sampler(r, train), _transform(r, train), decode_size=r.size, **kwargs)
