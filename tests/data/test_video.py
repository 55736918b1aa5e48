"""Decoding: probing and sparse seeking on the real clips, rotation, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from vidnets.data import video
from vidnets.data.video import VideoError, iter_frames, probe, read_all_frames, read_frames

SMALL = 480 * 360  # clips up to this size are fully decoded for the equality check


def test_probe_matches_clips_meta(shared_clips):
    for row in shared_clips:
        meta = probe(row["abspath"])
        assert meta.num_frames == int(row["frames"]), row["path"]
        assert (meta.width, meta.height) == (int(row["width"]), int(row["height"])), row["path"]
        assert meta.fps == pytest.approx(float(row["fps"]), abs=0.01), row["path"]
        assert meta.codec == row["codec"], row["path"]


def _indices(n: int, rng) -> np.ndarray:
    sparse = rng.choice(n, size=min(6, n), replace=False)
    dense = np.arange(n // 2, min(n, n // 2 + 5))
    return np.concatenate([sparse, dense, [0, n - 1]])  # unsorted, with repeats


def test_sparse_seek_equals_full_decode(shared_clips):
    """Frames read by seeking equal the full decode at the same indices, pixel for pixel."""
    rng = np.random.default_rng(0)
    for row in shared_clips:
        n = int(row["frames"])
        if int(row["width"]) * int(row["height"]) <= SMALL:
            idx = _indices(n, rng)
            full = read_all_frames(row["abspath"], size=48)
            assert len(full) == n, row["path"]
        else:  # large clip: compare against the first frames of a sequential decode
            idx = np.array([3, 40, 11, 12, 59])
            full = np.stack([f for f, _ in zip(iter_frames(row["abspath"], size=48), range(60))])
        got = read_frames(row["abspath"], idx, size=48)
        assert got.dtype == np.uint8 and got.shape[-1] == 3
        np.testing.assert_array_equal(got, full[idx], err_msg=row["path"])


def test_native_resolution_and_shape(shared_videos):
    path = shared_videos / "ask-anything" / "making_cake.mp4"  # portrait 320×426
    frames = read_frames(path, [0, 150, 299])
    assert frames.shape == (3, 426, 320, 3)
    short = read_frames(path, [5], size=128)
    assert short.shape == (1, 170, 128, 3)
    fixed = read_frames(path, [5], size=(128, 171))
    assert fixed.shape == (1, 128, 171, 3)


def test_h264_seek_skips_decoding(shared_videos, monkeypatch):
    """Sparse reads on a long-GOP h264 clip convert only the wanted frames."""
    calls = []
    real = video._to_rgb
    monkeypatch.setattr(video, "_to_rgb", lambda f, s: calls.append(1) or real(f, s))
    read_frames(shared_videos / "bmt" / "women_long_jump.mp4", [10, 500, 860], size=32)
    assert len(calls) == 3


class _FakeFrame:
    """Stands in for a PyAV frame with display-matrix rotation (no encoder here writes one)."""

    def __init__(self, img, rotation):
        self.img, self.rotation = img, rotation
        self.height, self.width = img.shape[:2]

    def to_ndarray(self, format, width=None, height=None, interpolation=None):
        import cv2

        return self.img if width is None else cv2.resize(self.img, (width, height))


@pytest.mark.parametrize("rotation,k", [(90, 1), (270, 3), (-90, 3), (180, 2)])
def test_rotation_is_applied(rotation, k):
    img = np.zeros((40, 60, 3), np.uint8)
    img[:5, :10] = 255  # a mark in the top-left corner of the stored frame
    out = video._to_rgb(_FakeFrame(img, rotation), None)
    np.testing.assert_array_equal(out, np.rot90(img, k))
    resized = video._to_rgb(_FakeFrame(img, rotation), (30, 20) if k % 2 else (20, 30))
    assert resized.shape[:2] == ((30, 20) if k % 2 else (20, 30))


def test_bad_files_raise_clear_errors(tmp_path, shared_videos):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.avi"
    text.write_text("not a video")
    truncated = tmp_path / "trunc.mp4"
    truncated.write_bytes((shared_videos / "mmaction2" / "test.mp4").read_bytes()[:100_000])
    for path, words in [
        (tmp_path / "missing.mp4", "no such file"),
        (empty, "empty"),
        (text, "not a readable video"),
        (truncated, "not a readable video"),
    ]:
        with pytest.raises(VideoError, match=words) as info:
            probe(path)
        assert str(path) in str(info.value)
    with pytest.raises(VideoError, match="out of range"):
        read_frames(shared_videos / "mmaction2" / "test.avi", [164])


def test_truncated_avi_keeps_readable_part(tmp_path, shared_videos):
    part = tmp_path / "part.avi"
    part.write_bytes((shared_videos / "mmaction2" / "test.avi").read_bytes()[:150_000])
    n = probe(part).num_frames
    assert 0 < n < 164
    assert read_frames(part, [0, n - 1], size=32).shape == (2, 32, 43, 3)


def test_variable_frame_rate(tmp_path):
    """Irregular timestamps: frame i is still the i-th decoded frame, sparse or sequential."""
    from fractions import Fraction

    import av

    path = tmp_path / "vfr.mkv"
    rng = np.random.default_rng(0)
    gaps = rng.integers(10, 90, size=40)  # milliseconds between frames
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        stream.codec_context.gop_size = 6
        pts = np.concatenate([[0], np.cumsum(gaps)[:-1]])
        for i, t in enumerate(pts):
            img = np.full((32, 32, 3), (i * 6) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = int(t), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert probe(path).num_frames == 40
    idx = [39, 3, 17, 18, 30]
    from vidnets.data.video import read_frames_sequential

    np.testing.assert_array_equal(read_frames(path, idx), read_frames_sequential(path, idx))
    grey = read_frames(path, idx)[:, 16, 16, 0].astype(int)
    np.testing.assert_allclose(grey, [(i * 6) % 256 for i in idx], atol=6)
