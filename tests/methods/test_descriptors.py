"""Sliding-window video descriptors: windows, pooling order, files, resume, bad videos."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from vidnets.methods.descriptors import (
    VideoItem,
    extract_to_dir,
    feature_file,
    read_feature_file,
    sliding_windows,
    video_descriptor,
    window_features,
    window_starts,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_net() -> nn.Module:
    """A stand-in with C3D's layer names: fc6 → relu6 (what 'fc6' features are read from)."""
    torch.manual_seed(0)
    net = nn.Sequential(
        OrderedDict(
            pool=nn.AdaptiveAvgPool3d((2, 2, 2)),
            flat=nn.Flatten(),
            fc6=nn.Linear(24, 10),
            relu6=nn.ReLU(),
            fc8=nn.Linear(10, 3),
        )
    )
    net.feature_aliases = {"fc6": "relu6"}
    return net


def test_window_starts_c3d_protocol():
    assert window_starts(40) == [0, 8, 16, 24]  # 16-frame windows, 8-frame overlap
    assert window_starts(16) == [0]
    assert window_starts(5) == [0]  # short video: one (padded) window
    assert window_starts(40, window=8, stride=16) == [0, 16, 32]


def test_sliding_windows_stream_a_sequence_read_once():
    frames = iter(range(40))  # an iterator: it can be consumed only once, as a decoder is
    windows = list(sliding_windows(frames, 16, 8))
    assert [start for start, _ in windows] == window_starts(40)
    assert windows[1][1] == list(range(8, 24))
    assert list(sliding_windows(iter(range(5)), 16, 8)) == [(0, [0, 1, 2, 3, 4] + [4] * 11)]
    with pytest.raises(ValueError, match="no frames"):
        list(sliding_windows(iter([]), 16, 8))


def test_pooling_orders():
    feats = np.array([[3.0, 4.0], [0.0, 10.0]])
    np.testing.assert_allclose(video_descriptor(feats, "mean_l2"), np.array([1.5, 7.0]) / np.hypot(1.5, 7.0))
    l2_first = np.array([0.3, 0.9]) / np.hypot(0.3, 0.9)  # mean of [0.6, 0.8] and [0, 1]
    np.testing.assert_allclose(video_descriptor(feats, "l2_mean_l2"), l2_first, rtol=1e-6)
    np.testing.assert_allclose(video_descriptor(feats, "none"), [1.5, 7.0])
    with pytest.raises(ValueError, match="normalize"):
        video_descriptor(feats, "l2")


def test_window_features_match_per_window_forward():
    net = tiny_net().eval()
    clip = torch.randn(3, 20, 8, 8)
    feats, starts = window_features(net, clip, "fc6", window=8, stride=4, batch_size=2)
    assert starts == [0, 4, 8, 12]
    with torch.no_grad():
        expected = torch.relu(net.fc6(net.flat(net.pool(clip[:, 4:12].unsqueeze(0)))))
    np.testing.assert_allclose(feats[1], expected[0].numpy(), rtol=1e-5, atol=1e-6)
    short, starts = window_features(net, clip[:, :3], "fc6", window=8, stride=4)
    assert short.shape == (1, 10) and starts == [0]


@pytest.mark.parametrize("fmt", ["npz", "h5", "npy"])
def test_extract_writes_resumes_and_skips_bad_videos(tmp_path, fmt):
    rng = torch.Generator().manual_seed(0)
    clips = {f"class{i % 2}/v{i}.avi": torch.rand(3, 12 + 4 * i, 8, 8, generator=rng) for i in range(4)}

    def read_frames(path: str):
        if path.endswith("broken.avi"):
            raise RuntimeError(f"{path}: truncated")
        return iter(clips[path].unbind(1))  # (C, H, W) frames, one at a time

    items = [VideoItem(key, key, i % 2) for i, key in enumerate(clips)] + [VideoItem("x/broken.avi", "x/broken.avi")]
    out = tmp_path / "feats"
    report = extract_to_dir(
        tiny_net(), items, read_frames, out, layer="fc6", window=8, stride=4, fmt=fmt, progress=False
    )
    assert sorted(report.written) == sorted(clips) and [k for k, _ in report.failed] == ["x/broken.avi"]
    assert "x/broken.avi" in (out / "failed.txt").read_text()
    for i, key in enumerate(clips):
        path = feature_file(out, key)
        assert path is not None and path.name == f"v{i}.avi.{fmt}"
        vector, label = read_feature_file(path)
        assert vector.shape == (10,)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
        assert label == (None if fmt == "npy" else i % 2)
    mtimes = {k: feature_file(out, k).stat().st_mtime_ns for k in clips}
    again = extract_to_dir(
        tiny_net(), items, read_frames, out, layer="fc6", window=8, stride=4, fmt=fmt, progress=False
    )
    assert sorted(again.skipped_done) == sorted(clips) and not again.written
    assert mtimes == {k: feature_file(out, k).stat().st_mtime_ns for k in clips}
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_wrong_layer_is_an_error_not_a_bad_video(tmp_path):
    with pytest.raises(KeyError, match="fc9"):
        extract_to_dir(
            tiny_net(),
            [VideoItem("a", "a.avi")],
            lambda p: torch.rand(3, 8, 8, 8).unbind(1),
            tmp_path,
            layer="fc9",
            window=8,
            progress=False,
        )
