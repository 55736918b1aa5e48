"""Geometric augmentation that keeps flow stacks physically right.

A stack is a float tensor (..., 2L, H, W) with x displacements in the even channels and y in the odd ones.

* horizontal flip mirrors the image *and* negates every x displacement;
* cropping moves no vectors (displacements are relative), it only cuts the field;
* resizing by (sx, sy) = (W'/W, H'/H) multiplies x displacements by sx and y by sy.

Test views follow Two-Stream/TSN: 4 corners + centre, optionally with their mirrors (10 crops), and every
mirrored crop is x-negated too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "flip_flow",
    "crop",
    "resize_flow",
    "random_crop_params",
    "multiscale_crop_params",
    "five_crop_boxes",
    "test_views",
]


def flip_flow(stack: torch.Tensor) -> torch.Tensor:
    """Mirror left-right and negate the x channels (0, 2, 4, …)."""
    out = stack.flip(-1)
    sign = torch.ones(stack.shape[-3], dtype=stack.dtype, device=stack.device)
    sign[0::2] = -1
    return out * sign[:, None, None]


def crop(stack: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    return stack[..., top : top + height, left : left + width]


def resize_flow(stack: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize to ``size`` = (H', W'), scaling x vectors by W'/W and y vectors by H'/H."""
    height, width = stack.shape[-2:]
    new_h, new_w = int(size[0]), int(size[1])
    if (new_h, new_w) == (height, width):
        return stack
    flat = stack.reshape(-1, stack.shape[-3], height, width)
    out = F.interpolate(flat, size=(new_h, new_w), mode="bilinear", align_corners=False)
    scale = torch.ones(stack.shape[-3], dtype=out.dtype)
    scale[0::2] = new_w / width
    scale[1::2] = new_h / height
    return (out * scale[:, None, None]).reshape(*stack.shape[:-2], new_h, new_w)


def random_crop_params(height: int, width: int, size: int, generator: torch.Generator) -> tuple[int, int, int, int]:
    """A uniformly placed ``size``×``size`` window anywhere in the frame (Two-Stream: "from the whole frame")."""
    if height < size or width < size:
        raise ValueError(f"flow of size {height}x{width} is smaller than the crop {size}")
    top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
    return top, left, size, size


def multiscale_crop_params(
    height: int,
    width: int,
    generator: torch.Generator,
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66),
    max_distort: int = 1,
) -> tuple[int, int, int, int]:
    """TSN's corner-cropping multi-scale crop: side lengths from ``scales`` × short side (aspect distortion
    up to ``max_distort`` scale steps), placed at one of 5 fixed positions (corners, centre)."""
    base = min(height, width)
    sides = [int(base * s) for s in scales]
    pairs = [(h, w) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= max_distort]
    crop_h, crop_w = pairs[int(torch.randint(len(pairs), (1,), generator=generator))]
    boxes = five_crop_boxes(height, width, crop_h, crop_w)
    return boxes[int(torch.randint(len(boxes), (1,), generator=generator))]


def five_crop_boxes(height: int, width: int, crop_h: int, crop_w: int | None = None) -> list[tuple[int, int, int, int]]:
    """(top, left, h, w) for the centre and the four corners."""
    crop_w = crop_h if crop_w is None else crop_w
    if height < crop_h or width < crop_w:
        raise ValueError(f"flow of size {height}x{width} is smaller than the crop {crop_h}x{crop_w}")
    bottom, right = height - crop_h, width - crop_w
    return [
        (bottom // 2, right // 2, crop_h, crop_w),
        (0, 0, crop_h, crop_w),
        (0, right, crop_h, crop_w),
        (bottom, 0, crop_h, crop_w),
        (bottom, right, crop_h, crop_w),
    ]


def test_views(stack: torch.Tensor, size: int, crops: int) -> torch.Tensor:
    """(..., 2L, H, W) -> (crops, ..., 2L, size, size) for ``crops`` in {1 (centre), 5, 10 (with mirrors)}."""
    if crops not in (1, 5, 10):
        raise ValueError(f"crops: expected 1, 5 or 10, found {crops}")
    height, width = stack.shape[-2:]
    boxes = five_crop_boxes(height, width, size)[: 1 if crops == 1 else 5]
    views = [crop(stack, *box) for box in boxes]
    if crops == 10:
        views += [flip_flow(view) for view in views]
    return torch.stack(views)
