from __future__ import annotations

import numpy as np
import pytest

from vidnets.flow import store

RAWFRAMES = "mmaction2/rawframes_test_avi"


@pytest.mark.parametrize("bound", [20.0, 8.0])
def test_quantisation_error_is_at_most_bound_over_255(bound):
    values = np.linspace(-bound, bound, 100_001, dtype=np.float32)
    restored = store.dequantize(store.quantize(values, bound), bound)
    assert np.abs(restored - values).max() <= bound / 255 + 1e-5
    # outside the bound values clip to ±bound
    outside = np.float32([-3 * bound, 3 * bound])
    assert store.dequantize(store.quantize(outside, bound), bound).tolist() == [-bound, bound]


def test_jpeg_round_trip_error_is_small(tmp_path):
    """Quantisation alone is ≤ bound/255 ≈ 0.078 px at bound 20; JPEG q95 on a smooth field adds little."""
    import cv2

    ys, xs = np.mgrid[0:64, 0:80].astype(np.float32)
    flow = np.stack([4 * np.sin(xs / 9) + 1.5, 3 * np.cos(ys / 7) - 2], axis=-1)
    store.write_field(tmp_path, 0, flow, bound=20.0, quality=95)
    frames = store.FlowFrames(tmp_path, bound=20.0)
    restored = frames.read(0)
    assert restored.shape == (2, 64, 80) and restored.dtype == np.float32
    error = np.abs(restored - flow.transpose(2, 0, 1))
    quant_only = np.abs(store.dequantize(store.quantize(flow, 20.0), 20.0) - flow)
    assert quant_only.max() <= 20 / 255 + 1e-5
    assert error.mean() < 0.1 and error.max() < 0.5  # measured: mean ≈ 0.04, max ≈ 0.2 px
    assert cv2.imread(str(tmp_path / "flow_x_00001.jpg"), cv2.IMREAD_GRAYSCALE).shape == (64, 80)


def test_incomplete_folder_is_not_done(tmp_path):
    folder = tmp_path / "video"
    folder.mkdir()
    store.write_field(folder, 0, np.zeros((8, 8, 2), np.float32), 20.0, 95)
    assert not store.is_complete(folder)
    (folder / "meta.json").write_text("{not json")
    assert not store.is_complete(folder)


def test_flow_dir_mapping():
    assert (
        store.flow_dir_for("/flow", "/data/ucf/v_ApplyEyeMakeup_g01_c01.avi").as_posix()
        == "/flow/v_ApplyEyeMakeup_g01_c01"
    )


def test_reads_real_rawframes_flow(shared_videos):
    """mmaction2's test flow (x_/y_00001–00005.jpg, 128 = no motion) reads as float displacements."""
    frames = store.FlowFrames(shared_videos / RAWFRAMES, bound=20)
    assert len(frames) == 5 and frames.prefixes == ("x", "y") and not frames.has_backward
    stack = frames.read_many(range(5))
    assert stack.shape == (5, 2, 240, 320) and stack.dtype == np.float32
    assert np.abs(stack).max() <= 20
    raw = frames.read_quantized(1)
    assert np.allclose(frames.read(1), store.dequantize(raw, 20))
    # a mostly still webcam clip: the median displacement is within two quantisation steps of zero
    assert np.abs(np.median(stack, axis=(0, 2, 3))).max() < 2 * 40 / 255
    with pytest.raises(FileNotFoundError, match="backward"):
        frames.read(0, backward=True)
    with pytest.raises(IndexError):
        frames.read(5)
