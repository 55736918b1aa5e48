"""Clip transforms: shared crops, layouts, flow-aware flips (also in 10-crop testing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidnets.data.transforms import (
    CenterCrop,
    ClipTransform,
    HorizontalFlip,
    MultiCrop,
    MultiScaleCrop,
    RandomCrop,
    Resize,
)


def _frames(v=1, s=1, length=4, h=20, w=30, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (v, s, length, h, w, c), dtype=np.uint8)


def test_one_random_crop_shared_by_all_frames():
    frames = _frames(length=6)
    frames[0, 0] = frames[0, 0, :1]  # all frames identical
    out = RandomCrop(10)([frames[0, 0]], np.random.default_rng(0))[0]
    assert out.shape == (6, 10, 10, 3)
    for t in range(1, 6):
        np.testing.assert_array_equal(out[t], out[0])


def test_flow_flip_negates_x_only():
    flow = _frames(c=2)[0, 0]
    out = HorizontalFlip(1.0)([flow], np.random.default_rng(0))[0]
    np.testing.assert_array_equal(out[..., 0], 255 - flow[:, :, ::-1, 0])
    np.testing.assert_array_equal(out[..., 1], flow[:, :, ::-1, 1])
    rgb = _frames(c=3)[0, 0]
    np.testing.assert_array_equal(HorizontalFlip(1.0)([rgb], np.random.default_rng(0))[0], rgb[:, :, ::-1])
    fl = np.random.default_rng(1).normal(size=(2, 4, 6, 2)).astype(np.float32)
    flipped = HorizontalFlip(1.0)([fl], np.random.default_rng(0))[0]
    np.testing.assert_allclose(flipped[..., 0], -fl[:, :, ::-1, 0])


def test_flow_cannot_be_flipped_without_negating_x():
    with pytest.raises(TypeError):
        HorizontalFlip(1.0, flow=False)
    with pytest.raises(TypeError):
        MultiCrop(8, 10, flow=False)


def _constant_flow(dx: float, dy: float, h: int, w: int, dtype=np.float32) -> np.ndarray:
    flow = np.empty((2, h, w, 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    return flow if dtype == np.float32 else np.clip(np.rint(flow * 4 + 127.5), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "op, size",
    [
        (Resize((32, 40)), (32, 40)),  # 64×80 → 32×40
        (MultiScaleCrop(32, scales=(1,), max_distort=0), (32, 32)),
    ],
)  # 64² crop → 32²
def test_flow_resize_scales_the_vectors(op, size):
    """Halving the image halves every displacement: (7.92, -4.00) px becomes (3.96, -2.00)."""
    out = op([_constant_flow(7.92, -4.0, 64, 80)], np.random.default_rng(0))[0]
    assert out.shape == (2, *size, 2)
    np.testing.assert_allclose(out[..., 0], 3.96, atol=1e-5)
    np.testing.assert_allclose(out[..., 1], -2.0, atol=1e-5)
    quantised = op([_constant_flow(7.92, -4.0, 64, 80, np.uint8)], np.random.default_rng(0))[0]
    assert quantised.dtype == np.uint8  # 4 levels per pixel around 127.5: ±1 level of rounding
    np.testing.assert_allclose((quantised[..., 0].astype(float) - 127.5) / 4, 3.96, atol=0.25)
    np.testing.assert_allclose((quantised[..., 1].astype(float) - 127.5) / 4, -2.0, atol=0.25)
    rgb = np.full((2, 64, 80, 3), 200, np.uint8)
    assert (op([rgb], np.random.default_rng(0))[0] == 200).all()  # RGB is only resized


def test_ten_crop_flips_negate_flow_x():
    flow = _frames(c=2, h=16, w=16)[0, 0]
    crops = MultiCrop(8, 10)([flow], None)
    assert len(crops) == 10
    for plain, flipped in zip(crops[:5], crops[5:]):
        np.testing.assert_array_equal(flipped[..., 0], 255 - plain[:, :, ::-1, 0])
        np.testing.assert_array_equal(flipped[..., 1], plain[:, :, ::-1, 1])
    np.testing.assert_array_equal(crops[1], flow[:, :8, :8])  # top-left corner
    np.testing.assert_array_equal(crops[4], flow[:, 8:, 8:])  # bottom-right corner


def test_tsn_multiscale_crop_sizes():
    """256×340 frames: crop sides from {256, 224, 192, 168}, at most one step apart, then 224²."""
    op = MultiScaleCrop(224)
    pairs = op.crop_sizes(256, 340)
    assert {h for h, _ in pairs} == {256, 224, 192, 168}
    assert all(abs([256, 224, 192, 168].index(h) - [256, 224, 192, 168].index(w)) <= 1 for h, w in pairs)
    frames = np.zeros((1, 256, 340, 3), np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert op([frames], rng)[0].shape == (1, 224, 224, 3)


@pytest.mark.parametrize("layout,shape", [("cthw", (3, 4, 10, 10)), ("kchw", (1, 12, 10, 10)), ("chw", (12, 10, 10))])
def test_layouts(layout, shape):
    t = ClipTransform([CenterCrop(10)], mean=(0, 0, 0), std=(1, 1, 1), layout=layout)
    frames = _frames()
    out = t(frames, np.random.default_rng(0))
    assert out.shape == shape and out.dtype == torch.float32
    centre = frames[0, 0, :, 5:15, 10:20].astype(np.float32)  # (T, H, W, C)
    if layout == "cthw":
        np.testing.assert_array_equal(out.numpy(), centre.transpose(3, 0, 1, 2))
    else:  # frame-major channel stacking: frame 1's RGB are channels 3..5
        np.testing.assert_array_equal(out.reshape(-1, 10, 10)[3:6].numpy(), centre[1].transpose(2, 0, 1))


def test_normalise_segments_diff_and_views():
    frames = _frames(v=2, s=3, length=6, h=12, w=12)
    t = ClipTransform([MultiCrop(8, 10)], mean=(10, 20, 30), std=(2, 2, 2), layout="kchw", stack_views=True, diff=True)
    out = t(frames, None)
    assert out.shape == (20, 3, 15, 8, 8)  # 2 temporal views × 10 crops, K=3, 5 diffs × RGB
    f = frames[0, 1, :, 2:10, 2:10].astype(np.float32) / 2  # centre crop, segment 1
    expect = (f[1:] - f[:-1]).transpose(0, 3, 1, 2).reshape(15, 8, 8)
    np.testing.assert_allclose(out[0, 1].numpy(), expect, rtol=1e-6)
    with pytest.raises(ValueError, match="stack_views"):
        ClipTransform([MultiCrop(8, 3)], mean=(0,) * 3, std=(1,) * 3)(frames[:1], None)
