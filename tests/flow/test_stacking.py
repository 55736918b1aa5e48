from __future__ import annotations

import numpy as np
import pytest
import torch

from vidnets.flow import augment
from vidnets.flow.stacking import bidirectional_stack, build_stack, flow_stack, subtract_mean_flow, trajectory_stack


def _fields(length=3, height=6, width=7, seed=0):
    return np.random.default_rng(seed).normal(size=(length, 2, height, width)).astype(np.float32)


def test_flow_stack_orders_x_then_y_per_field():
    fields = _fields()
    stack = flow_stack(fields)
    assert stack.shape == (6, 6, 7)
    for k in range(3):
        assert np.array_equal(stack[2 * k], fields[k, 0]) and np.array_equal(stack[2 * k + 1], fields[k, 1])


def test_trajectory_matches_hand_computed_path():
    """Field 1 moves everything by (+1, 0); field 2 is 10·x + y at integer pixels, field 3 is sampled at a
    half pixel. From p = (x=2, y=3): p2 = (3, 3); p3 = p2 + d2(p2) with d2 = (0.5, 1) => (3.5, 4)."""
    height, width = 8, 10
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    fields = np.zeros((3, 2, height, width), np.float32)
    fields[0, 0] = 1.0  # d1 = (1, 0) everywhere
    fields[1, 0] = 0.5  # d2 = (0.5, 1) everywhere
    fields[1, 1] = 1.0
    fields[2, 0] = 10 * xs + ys  # d3 has a value that identifies the pixel
    fields[2, 1] = xs - ys
    stack = trajectory_stack(fields)
    x, y = 2, 3
    assert stack[0, y, x] == pytest.approx(1.0) and stack[1, y, x] == pytest.approx(0.0)
    assert stack[2, y, x] == pytest.approx(0.5) and stack[3, y, x] == pytest.approx(1.0)
    # bilinear at (3.5, 4): 10·3.5 + 4 = 39 and 3.5 - 4 = -0.5
    assert stack[4, y, x] == pytest.approx(39.0) and stack[5, y, x] == pytest.approx(-0.5)
    # plain stacking would read d3 at (2, 3)
    assert flow_stack(fields)[4, y, x] == pytest.approx(23.0)


def test_trajectory_equals_stack_for_zero_motion_and_clamps_at_border():
    fields = np.zeros((2, 2, 5, 5), np.float32)
    fields[1, 0] = np.arange(5, dtype=np.float32)  # x component varies with column
    assert np.allclose(trajectory_stack(fields), flow_stack(fields))
    fields[0, 0] = 100.0  # jumps far right: sampled at the last column
    assert np.allclose(trajectory_stack(fields)[2], 4.0)


def test_bidirectional_takes_backward_first_half_and_forward_second_half():
    forward, backward = _fields(4, seed=1), _fields(4, seed=2)
    stack = build_stack(forward, "bidirectional", backward_fields=backward)
    assert stack.shape == (8, 6, 7)
    assert np.array_equal(stack[:4], flow_stack(backward[:2])) and np.array_equal(stack[4:], flow_stack(forward[2:]))
    assert np.array_equal(bidirectional_stack(backward[:2], forward[2:]), stack)
    with pytest.raises(ValueError, match="backward"):
        build_stack(forward, "bidirectional")


def test_mean_subtraction_removes_each_fields_mean_vector():
    fields = _fields() + np.float32([[[[3.0]], [[-2.0]]]])
    stack = build_stack(fields, "stack", mean_subtraction=True)
    assert np.allclose(stack.mean(axis=(1, 2)), 0, atol=1e-5)
    assert np.allclose(stack, flow_stack(fields - fields.mean(axis=(2, 3), keepdims=True)), atol=1e-5)
    assert np.allclose(subtract_mean_flow(np.ones((2, 3, 3))), 0)


def test_trajectory_mean_subtraction_uses_each_fields_own_mean_vector():
    """§3.1: each displacement field loses its own mean vector, not the mean of the values sampled from it."""
    rng = np.random.default_rng(3)
    fields = rng.integers(-3, 4, size=(4, 2, 9, 11)).astype(np.float32)
    raw = trajectory_stack(fields)
    paper = build_stack(fields, "trajectory", mean_subtraction=True)
    assert np.array_equal(paper, build_stack(fields, "trajectory", mean_subtraction="field"))
    assert np.allclose(paper, raw - fields.mean(axis=(2, 3)).reshape(-1, 1, 1), atol=1e-5)
    per_channel = build_stack(fields, "trajectory", mean_subtraction="channel")
    assert np.allclose(per_channel, subtract_mean_flow(raw), atol=1e-5)
    assert np.abs(paper - per_channel).max() > 0.1  # the two really differ on trajectories
    for representation in ("stack", "bidirectional"):  # there channel k is field k: both agree
        kw = {"backward_fields": fields[::-1].copy()} if representation == "bidirectional" else {}
        a = build_stack(fields, representation, mean_subtraction="field", **kw)
        b = build_stack(fields, representation, mean_subtraction="channel", **kw)
        assert np.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="mean_subtraction"):
        build_stack(fields, "trajectory", mean_subtraction="global")


def test_unknown_representation_is_named():
    with pytest.raises(ValueError, match="representation"):
        build_stack(_fields(), "optical")


def test_flip_negates_x_only():
    stack = torch.from_numpy(flow_stack(_fields()))
    flipped = augment.flip_flow(stack)
    assert torch.equal(flipped[0::2], -stack[0::2].flip(-1))
    assert torch.equal(flipped[1::2], stack[1::2].flip(-1))
    assert torch.equal(augment.flip_flow(flipped), stack)
    batched = augment.flip_flow(stack[None].repeat(3, 1, 1, 1))  # (K, 2L, H, W)
    assert torch.equal(batched[1], flipped)


def test_rescale_scales_vectors_and_crop_keeps_them():
    stack = torch.zeros(4, 20, 30)
    stack[0::2] = 2.0  # x
    stack[1::2] = -1.0  # y
    resized = augment.resize_flow(stack, (10, 60))  # sy = 0.5, sx = 2
    assert resized.shape == (4, 10, 60)
    assert torch.allclose(resized[0::2], torch.full_like(resized[0::2], 4.0))
    assert torch.allclose(resized[1::2], torch.full_like(resized[1::2], -0.5))
    assert torch.equal(augment.crop(stack, 2, 3, 5, 6), stack[:, 2:7, 3:9])


def test_test_views_flip_mirrored_crops():
    stack = torch.from_numpy(flow_stack(_fields(2, 12, 14)))
    views = augment.test_views(stack, 8, 10)
    assert views.shape == (10, 4, 8, 8)
    assert torch.equal(views[5], augment.flip_flow(views[0]))
    assert torch.equal(views[0], stack[:, 2:10, 3:11])  # centre first
