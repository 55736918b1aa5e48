"""Clip transforms: one crop / flip / jitter decision shared by every frame of a view.

A transform takes the decoded frames ``(V, S, L, H, W, C)`` uint8 (views × segments × frames per
segment; C = 3 for RGB, 2 for flow x/y) and returns a float tensor::

    frames ──► spatial ops on each view, as (S·L, H, W, C) uint8
               (Resize, RandomCrop, CenterCrop, MultiScaleCrop, HorizontalFlip, ColorJitter;
                MultiCrop turns each view into 1/3/5/10 views)
           ──► Normalize ((x - mean) / std, float32) ──► layout
                 "cthw":  (C, T, H, W)          3D networks (S = 1, T = L)
                 "kchw":  (K, L·C, H, W)        TSN segments, snippet channels stacked frame-major
                 "chw":   (L·C, H, W)           one frame / one flow stack (Two-Stream)
               ──► train: that tensor;  test (``stack_views=True``): (V, ...) all views

Flow is any view with 2 channels (x, y); RGB has 3. On flow, every horizontal flip — random
training flips and the flipped test crops of ``MultiCrop(10)`` alike — also negates the x component
(channel 0): ``255 - x`` on uint8 flow quantised around 127.5, ``-x`` on float flow. There is no way
to flip flow without it (mmaction2's ``TenCrop`` forgets this). Every resize of flow
(``Resize``, ``MultiScaleCrop``) scales the vectors with the image: x by W'/W, y by H'/H
(``scale_flow_vectors``), as ``vidnets.flow.augment.resize_flow`` does for float stacks.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from vidnets.data.video import output_size

View = np.ndarray  # (N, H, W, C)
FLOW_ZERO_UINT8 = 127.5  # zero motion in quantised flow images (vidnets.flow.store)


def is_flow(view: np.ndarray) -> bool:
    """Flow views carry 2 channels (x, y) in the last axis; RGB carries 3."""
    return view.shape[-1] == 2


def scale_flow_vectors(flow: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """Multiply flow x by ``scale_x`` and y by ``scale_y`` (last axis = (x, y)).

    uint8 flow is scaled about its zero, 127.5, then rounded and clipped to 0–255; float flow is
    scaled as it is.
    """
    scale = np.asarray([scale_x, scale_y], np.float32)
    if flow.dtype != np.uint8:
        return (flow * scale).astype(flow.dtype, copy=False)
    scaled = (flow.astype(np.float32) - FLOW_ZERO_UINT8) * scale + FLOW_ZERO_UINT8
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _flip(view: View) -> View:
    out = view[:, :, ::-1, :].copy()
    if is_flow(out):  # a mirrored motion field points the other way along x
        out[..., 0] = (255 - out[..., 0]) if out.dtype == np.uint8 else -out[..., 0]
    return out


def _crop(view: View, top: int, left: int, h: int, w: int) -> View:
    H, W = view.shape[1:3]
    if h > H or w > W:
        raise ValueError(f"crop {h}x{w} is larger than the frames {H}x{W}")
    return view[:, top : top + h, left : left + w]


def _resize_view(view: View, h: int, w: int) -> View:
    if view.shape[1:3] == (h, w):
        return view
    H, W = view.shape[1:3]
    interp = cv2.INTER_AREA if h < H else cv2.INTER_LINEAR
    out = np.stack([cv2.resize(f, (w, h), interpolation=interp).reshape(h, w, -1) for f in view])
    return scale_flow_vectors(out, w / W, h / H) if is_flow(out) else out


def _pair(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class Resize:
    """Resize every frame: ``size`` = short side (int) or (H, W). Usually done while decoding."""

    def __init__(self, size):
        self.size = size

    def __call__(self, views: list[View], rng) -> list[View]:
        return [_resize_view(v, *output_size(v.shape[1], v.shape[2], self.size)) for v in views]


class RandomCrop:
    """A ``size`` crop at one random position per view (anywhere in the frame)."""

    def __init__(self, size):
        self.size = _pair(size)

    def __call__(self, views: list[View], rng) -> list[View]:
        h, w = self.size
        out = []
        for v in views:
            H, W = v.shape[1:3]
            top = int(rng.integers(0, H - h + 1)) if H >= h else 0
            left = int(rng.integers(0, W - w + 1)) if W >= w else 0
            out.append(_crop(v, top, left, h, w))
        return out


class CenterCrop:
    def __init__(self, size):
        self.size = _pair(size)

    def __call__(self, views: list[View], rng) -> list[View]:
        h, w = self.size
        return [_crop(v, (v.shape[1] - h) // 2, (v.shape[2] - w) // 2, h, w) for v in views]


def _corner_offsets(H: int, W: int, h: int, w: int, more: bool = False) -> list[tuple[int, int]]:
    """(top, left) of centre + 4 corners (TSN ``fix_crop``); ``more`` adds the 8 extra offsets
    of ``more_fix_crop`` (13 in all)."""
    sh, sw = (H - h) // 4, (W - w) // 4
    offs = [(2 * sh, 2 * sw), (0, 0), (0, 4 * sw), (4 * sh, 0), (4 * sh, 4 * sw)]
    if more:
        offs += [
            (2 * sh, 0),
            (2 * sh, 4 * sw),
            (4 * sh, 2 * sw),
            (0, 2 * sw),
            (sh, sw),
            (sh, 3 * sw),
            (3 * sh, sw),
            (3 * sh, 3 * sw),
        ]
    return offs


class MultiScaleCrop:
    """TSN corner cropping with scale jittering, then resize to ``out_size``.

    Crop height and width are each drawn from ``scales × short side`` (on 256×340 frames with
    scales (1, .875, .75, .66): {256, 224, 192, 168}) with at most ``max_distort`` steps between
    them (aspect-ratio jitter), placed at the centre or a corner (``more_fix_crop`` adds 8 more
    fixed positions). Mirrors tsn-pytorch ``GroupMultiScaleCrop``.
    """

    def __init__(
        self,
        out_size,
        scales: Sequence[float] = (1, 0.875, 0.75, 0.66),
        *,
        max_distort: int = 1,
        more_fix_crop: bool = False,
    ):
        self.out_size, self.scales = _pair(out_size), tuple(scales)
        self.max_distort, self.more_fix_crop = max_distort, more_fix_crop

    def crop_sizes(self, H: int, W: int) -> list[tuple[int, int]]:
        """The (h, w) crop sizes allowed on H×W frames."""
        sizes = [int(min(H, W) * s) for s in self.scales]
        # snap to the output size when close, like tsn-pytorch (within 3 pixels)
        sizes = [self.out_size[0] if abs(s - self.out_size[0]) < 3 else s for s in sizes]
        return [
            (sizes[i], sizes[j]) for i in range(len(sizes)) for j in range(len(sizes)) if abs(i - j) <= self.max_distort
        ]

    def __call__(self, views: list[View], rng) -> list[View]:
        out = []
        for v in views:
            H, W = v.shape[1:3]
            pairs = self.crop_sizes(H, W)
            h, w = pairs[int(rng.integers(len(pairs)))]
            offs = _corner_offsets(H, W, h, w, self.more_fix_crop)
            top, left = offs[int(rng.integers(len(offs)))]
            out.append(_resize_view(_crop(v, top, left, h, w), *self.out_size))
        return out


class HorizontalFlip:
    """Flip each view with probability ``p``; flow views also have x negated (module docstring).

    ``label_map`` (class index → class index, e.g. "swiping left" ↔ "swiping right") gives the
    class a flipped clip belongs to, as mmaction2's ``flip_label_map``; :meth:`labelled` applies it.
    """

    def __init__(self, p: float = 0.5, *, label_map: dict[int, int] | None = None):
        self.p, self.label_map = p, dict(label_map or {})

    def __call__(self, views: list[View], rng) -> list[View]:
        return self.labelled(views, rng, None)[0]

    def labelled(self, views: list[View], rng, label: int | None) -> tuple[list[View], int | None]:
        """The views, each flipped with probability ``p``, and the label of the flipped clip (a
        training clip is one view; its label changes when that view is flipped)."""
        flips = [rng.random() < self.p for _ in views]
        if label is not None and any(flips):
            label = self.label_map.get(label, label)
        return [_flip(v) if f else v for v, f in zip(views, flips)], label


class MultiCrop:
    """Deterministic test crops of ``size``: 1 = centre, 3 = start/centre/end along the long
    side, 5 = centre + 4 corners, 10 = those 5 and their horizontal flips (x negated on flow).
    Each input view becomes ``crops`` views, crop-major inside the view."""

    def __init__(self, size, crops: int = 10):
        if crops not in (1, 3, 5, 10):
            raise ValueError(f"crops must be 1, 3, 5 or 10, got {crops}")
        self.size, self.crops = _pair(size), crops

    def __call__(self, views: list[View], rng) -> list[View]:
        h, w = self.size
        out = []
        for v in views:
            H, W = v.shape[1:3]
            if self.crops == 1:
                offs = [((H - h) // 2, (W - w) // 2)]
            elif self.crops == 3:
                if W >= H:
                    offs = [((H - h) // 2, x) for x in (0, (W - w) // 2, W - w)]
                else:
                    offs = [(y, (W - w) // 2) for y in (0, (H - h) // 2, H - h)]
            else:
                offs = [((H - h) // 2, (W - w) // 2), (0, 0), (0, W - w), (H - h, 0), (H - h, W - w)]
            crops = [_crop(v, t, l, h, w) for t, l in offs]
            if self.crops == 10:
                crops += [_flip(c) for c in crops]
            out.extend(crops)
        return out


class ColorJitter:
    """RGB jitter with one draw per view: brightness, contrast and saturation factors in
    ``[1 - x, 1 + x]``. The Two-Stream paper says only "RGB jittering"; these ranges are a
    choice (torchvision-style), kept small by default."""

    def __init__(self, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2):
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation

    def __call__(self, views: list[View], rng) -> list[View]:
        out = []
        for v in views:
            x = v.astype(np.float32)
            b = rng.uniform(1 - self.brightness, 1 + self.brightness)
            c = rng.uniform(1 - self.contrast, 1 + self.contrast)
            s = rng.uniform(1 - self.saturation, 1 + self.saturation)
            x = x * b
            x = (x - x.mean()) * c + x.mean()
            grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            x = (x - grey[..., None]) * s + grey[..., None]
            out.append(np.clip(x + 0.5, 0, 255).astype(np.uint8))
        return out


class ClipTransform:
    """Spatial ``ops`` (uint8), then normalisation and the tensor ``layout`` (see module doc).

    ``mean``/``std`` are per channel on the 0–255 scale, in the channel order of the frames
    (RGB for video, (x, y) for flow). ``diff=True`` (TSN RGB-difference) turns each snippet of
    L frames into its L-1 consecutive differences of the normalised frames.
    """

    def __init__(
        self,
        ops: Sequence,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        layout: str = "cthw",
        stack_views: bool = False,
        diff: bool = False,
    ):
        if layout not in ("cthw", "kchw", "chw"):
            raise ValueError(f"layout must be cthw|kchw|chw, got {layout!r}")
        self.ops, self.layout, self.stack_views, self.diff = list(ops), layout, stack_views, diff
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        return self.labelled(frames, rng, None)[0]

    def labelled(
        self, frames: np.ndarray, rng: np.random.Generator, label: int | None
    ) -> tuple[torch.Tensor, int | None]:
        """The clip tensor and its label, which an op with a ``labelled`` method (a flip with a
        label map) may change."""
        V, S, L = frames.shape[:3]
        views = [frames[i].reshape(S * L, *frames.shape[3:]) for i in range(V)]
        for op in self.ops:
            if hasattr(op, "labelled"):
                views, label = op.labelled(views, rng, label)
            else:
                views = op(views, rng)
        tensors = [self._to_tensor(v, S, L) for v in views]
        if self.stack_views:
            return torch.stack(tensors), label
        if len(tensors) != 1:
            raise ValueError(f"{len(tensors)} views but stack_views=False (a training transform expects one view)")
        return tensors[0], label

    def _to_tensor(self, view: View, S: int, L: int) -> torch.Tensor:
        x = (view.astype(np.float32) - self.mean) / self.std  # (S·L, H, W, C)
        N, H, W, C = x.shape
        x = x.reshape(S, L, H, W, C)
        if self.diff:
            x = x[:, 1:] - x[:, :-1]
            L = L - 1
        t = torch.from_numpy(np.ascontiguousarray(x))
        if self.layout == "cthw":
            return t.reshape(S * L, H, W, C).permute(3, 0, 1, 2).contiguous()
        t = t.permute(0, 1, 4, 2, 3).reshape(S, L * C, H, W)  # frame-major channel stacking
        return t.contiguous() if self.layout == "kchw" else t.reshape(S * L * C, H, W).contiguous()
