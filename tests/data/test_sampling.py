"""Temporal samplers (per paper) and the samplers over videos."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from vidnets.data.sampling import ClassBalancedSampler, ClipSampler, ClipsPerVideoSampler, SegmentSampler, TooShortError


def test_c3d_random_clip_is_16_consecutive_frames():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(50):
        s = ClipSampler(16)(100, rng)
        assert s.indices.shape == (1, 1, 16) and not s.looped
        np.testing.assert_array_equal(np.diff(s.indices[0, 0]), 1)
        assert 0 <= s.indices.min() and s.indices.max() < 100
        starts.add(int(s.indices[0, 0, 0]))
    assert len(starts) > 10


def test_res3d_eight_frames_stride_two():
    s = ClipSampler(8, stride=2, mode="center")(40)
    np.testing.assert_array_equal(s.indices[0, 0], np.arange(12, 28, 2))


def test_uniform_test_clips_cover_the_video():
    s = ClipSampler(16, mode="uniform", views=20)(200)  # P3D: 20 clips
    assert s.indices.shape == (20, 1, 16)
    assert s.indices[0, 0, 0] == 0 and s.indices[-1, 0, -1] == 199
    np.testing.assert_array_equal(ClipSampler(16, mode="uniform", views=20)(200).indices, s.indices)


def test_t3d_non_overlapping_clips():
    s = ClipSampler(32, mode="non_overlapping", views=None)(100)
    np.testing.assert_array_equal(s.indices[:, 0, 0], [0, 32, 64])
    assert len(np.unique(s.indices)) == s.indices.size  # no frame twice
    assert ClipSampler(32, mode="non_overlapping", views=2)(300).views == 2


def test_short_video_loops_or_raises():
    s = ClipSampler(16)(5, np.random.default_rng(0))
    assert s.looped
    np.testing.assert_array_equal(s.indices[0, 0], np.arange(16) % 5)
    with pytest.raises(TooShortError):
        ClipSampler(16, loop=False)(5)


def test_tsn_segments_train_and_test():
    rng = np.random.default_rng(1)
    for _ in range(30):
        idx = SegmentSampler(3)(90, rng).indices
        assert idx.shape == (1, 3, 1)
        for k in range(3):  # one snippet inside each third
            assert 30 * k <= idx[0, k, 0] < 30 * (k + 1)
    centre = SegmentSampler(3, mode="center")(90).indices
    np.testing.assert_array_equal(centre[0, :, 0], [15, 45, 75])


def test_tsn_test_25_frames_and_rgbdiff_snippets():
    s = SegmentSampler(25, mode="center", as_views=True)(250)  # Two-Stream test frames
    assert s.indices.shape == (25, 1, 1)
    np.testing.assert_array_equal(s.indices[:, 0, 0], np.arange(5, 250, 10))
    diff = SegmentSampler(3, 6, mode="center")(60).indices
    assert diff.shape == (1, 3, 6)
    np.testing.assert_array_equal(np.diff(diff[0], axis=1), 1)
    short = SegmentSampler(3, 6)(4, np.random.default_rng(0))
    assert short.looped and short.indices.max() == 3


def test_clips_per_video_sampler():
    sampler = ClipsPerVideoSampler(7, clips_per_video=5, seed=0)
    order = list(sampler)
    assert len(order) == len(sampler) == 35
    assert Counter(order) == {i: 5 for i in range(7)}
    sampler.set_epoch(1)
    assert list(sampler) != order


def test_class_balanced_sampler():
    labels = [0] * 90 + [1] * 10  # heavily unbalanced videos
    drawn = [labels[i] for i in ClassBalancedSampler(labels, num_samples=2000, seed=0)]
    assert abs(np.mean(drawn) - 0.5) < 0.05
