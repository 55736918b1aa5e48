"""Damaged streams: a short tail is clamped, not rejected, and `check --deep` agrees with training."""

from __future__ import annotations

import numpy as np
import pytest

from vidnets.data import video as V


def _h264(path, frames: np.ndarray, faststart: bool = False):
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _packets(path):
    import av

    with av.open(str(path)) as container:
        return [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> dict:
    """A good H.264 MP4 and damaged copies: last packet zeroed (index lists 3 more frames than decode),
    a packet mid-stream garbled, and a faststart file cut short."""
    folder = tmp_path_factory.mktemp("damaged")
    frames = np.random.default_rng(0).integers(0, 255, (30, 32, 32, 3), dtype=np.uint8)
    good = _h264(folder / "good.mp4", frames)
    data = good.read_bytes()
    packets = _packets(good)
    files = {"good": good}
    tail = bytearray(data)
    pos, size = packets[-1]
    tail[pos : pos + size] = bytes(size)
    files["short_tail"] = folder / "short_tail.mp4"
    files["short_tail"].write_bytes(bytes(tail))
    mid = bytearray(data)
    pos, size = packets[15]
    mid[pos : pos + size] = b"\xff" * size
    files["garbled_mid"] = folder / "garbled_mid.mp4"
    files["garbled_mid"].write_bytes(bytes(mid))
    faststart = _h264(folder / "faststart.mp4", frames, faststart=True).read_bytes()
    files["cut_short"] = folder / "cut_short.mp4"
    files["cut_short"].write_bytes(faststart[: len(faststart) * 2 // 3])
    files["cut_moov"] = folder / "cut_moov.mp4"
    files["cut_moov"].write_bytes(data[: len(data) * 2 // 3])
    return files


def test_a_short_tail_is_clamped_to_the_last_decodable_frame(damaged, faults):
    path = damaged["short_tail"]
    n = len(V.frame_index(path).pts)
    frames = V.read_frames(path, np.arange(n))
    assert frames.shape[0] == n
    decoded = V.check_video(path, deep=True)["decoded"]
    assert 0 < n - decoded <= V.FRAME_COUNT_TOLERANCE
    assert all(np.array_equal(frames[i], frames[decoded - 1]) for i in range(decoded, n))
    faults.bad_input()


def _training_reads(path) -> bool:
    try:
        V.read_frames(path, np.arange(len(V.frame_index(path).pts)))
        return True
    except (V.VideoError, ValueError):
        return False


@pytest.mark.parametrize("name", ["good", "short_tail", "garbled_mid", "cut_short", "cut_moov"])
def test_check_agrees_with_training(damaged, faults, name):
    path = damaged[name]
    reads = _training_reads(path)
    for deep in (True, False):
        try:
            V.check_video(path, deep=deep)
            ok = True
        except V.VideoError:
            ok = False
        assert ok == reads, (name, deep, ok, reads)
    assert reads == (name in ("good", "short_tail", "cut_short"))
    faults.bad_input()
