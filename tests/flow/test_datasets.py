from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from vidnets.flow.datasets import build_flow_dataset, window_starts
from vidnets.flow.extract import FlowOptions, extract_videos


@dataclass
class Record:
    path: str
    label: int


@pytest.fixture(scope="module")
def flow_root(tiny_videos, tmp_path_factory):
    root = tmp_path_factory.mktemp("flow")
    extract_videos(tiny_videos, root, FlowOptions(method="dis", short_side=None, backward=True), progress=False)
    return root


@pytest.fixture(scope="module")
def records(tiny_videos):
    return [Record(str(v), i) for i, v in enumerate(tiny_videos)]


def test_two_stream_shapes(records, flow_root):
    train = build_flow_dataset("two_stream_temporal", records, train=True, flow_root=flow_root, length=4, crop=32)
    item = train[0]
    assert item["clip"].shape == (8, 32, 32) and item["label"] == 0 and item["index"] == 0
    assert item["path"] == records[0].path and item["clip"].dtype == torch.float32
    test = build_flow_dataset(
        "two_stream_temporal", records, train=False, flow_root=flow_root, length=4, crop=32, views=3
    )
    assert test[1]["clip"].shape == (3 * 10, 8, 32, 32)


def test_tsn_shapes(records, flow_root):
    train = build_flow_dataset("tsn_flow", records, train=True, flow_root=flow_root, length=2, crop=24)
    assert train[2]["clip"].shape == (3, 4, 24, 24)
    test = build_flow_dataset("tsn_flow", records, train=False, flow_root=flow_root, crops=10, views=4, crop=24)
    assert test[2]["clip"].shape == (10, 4, 10, 24, 24)  # default new_length 5 -> 10 channels


@pytest.mark.parametrize("representation", ["stack", "trajectory"])
def test_values_follow_the_pan(records, flow_root, representation):
    """clip0 pans 2 px/frame: x ≈ -2 everywhere; mean subtraction takes it to ≈ 0."""
    common = dict(train=False, flow_root=flow_root, length=4, crop=32, views=1, crops=1, representation=representation)
    raw = build_flow_dataset("two_stream_temporal", records, mean_subtraction=False, **common)[0]["clip"][0]
    assert raw.shape == (8, 32, 32)
    assert raw[0::2].median().item() == pytest.approx(-2, abs=0.3)
    assert raw[1::2].median().item() == pytest.approx(0, abs=0.3)
    centred = build_flow_dataset("two_stream_temporal", records, mean_subtraction=True, **common)[0]["clip"][0]
    assert centred[0::2].median().abs().item() < 0.3


def test_bidirectional_and_flip(records, flow_root):
    common = dict(flow_root=flow_root, length=4, crop=32, mean_subtraction=False)
    clip = build_flow_dataset(
        "two_stream_temporal", records, train=False, views=1, crops=10, representation="bidirectional", **common
    )[0]["clip"]
    assert clip.shape == (10, 8, 32, 32)
    centre, mirrored = clip[0], clip[5]
    assert centre[0:4:2].median().item() == pytest.approx(2, abs=0.3)  # backward fields point right
    assert centre[4:8:2].median().item() == pytest.approx(-2, abs=0.3)  # forward fields point left
    assert torch.equal(mirrored[0::2], -centre[0::2].flip(-1))  # the mirrored crop negates x
    torch.manual_seed(0)
    train = build_flow_dataset("two_stream_temporal", records, train=True, **common)
    signs = {float(np.sign(train[0]["clip"][0::2].median().item())) for _ in range(12)}
    assert signs == {-1.0, 1.0}  # random flips negate x


def test_missing_flow_is_an_error_item(records, tmp_path):
    dataset = build_flow_dataset("tsn_flow", records, train=True, flow_root=tmp_path)
    item = dataset[1]
    assert set(item) == {"error", "path", "index"} and item["index"] == 1 and "clip1" in item["error"]


def test_recipe_and_override_errors(records, tmp_path):
    with pytest.raises(ValueError, match="flow recipe"):
        build_flow_dataset("c3d", records, train=True, flow_root=tmp_path)
    with pytest.raises(TypeError, match="lenght"):
        build_flow_dataset("tsn_flow", records, train=True, flow_root=tmp_path, lenght=3)
    with pytest.raises(ValueError, match="even"):
        build_flow_dataset("tsn_flow", records, train=True, flow_root=tmp_path, representation="bidirectional")


def test_window_starts():
    assert window_starts(100, 10, 1, train=False) == [45]
    assert window_starts(12, 10, 25, train=False) == [0] * 8 + [1] * 9 + [2] * 8
    generator = torch.Generator().manual_seed(0)
    starts = window_starts(30, 5, 3, train=True, generator=generator)
    assert 0 <= starts[0] < 8 <= starts[1] < 17 <= starts[2] < 26
    assert window_starts(3, 5, 3, train=True) == [0, 0, 0]  # too short: every window starts at 0


def test_real_rawframes_through_the_dataset(shared_videos):
    folder = shared_videos / "mmaction2" / "rawframes_test_avi"
    dataset = build_flow_dataset(
        "two_stream_temporal",
        [Record(str(folder), 0)],
        train=False,
        flow_root=folder.parent,
        length=5,
        views=1,
        crops=1,
        bound=20,
        mean_subtraction=False,
    )
    clip = dataset[0]["clip"]
    assert clip.shape == (1, 10, 224, 224)
    assert clip.abs().max() <= 20


def test_recipe_table_builds_flow_recipes_and_collate_skips_errors(shared_videos, tmp_path):
    from vidnets.data.datasets import VideoRecord, collate_skip_bad
    from vidnets.engine.recipes import data_recipe

    folder = shared_videos / "mmaction2" / "rawframes_test_avi"
    records = [VideoRecord(str(folder), 3), VideoRecord(str(tmp_path / "absent.mp4"), 1)]
    dataset = data_recipe("two_stream_temporal").build_dataset(
        records, train=True, flow_root=folder.parent, length=4, bound=20
    )
    batch = collate_skip_bad([dataset[0], dataset[1]])
    assert batch["clip"].shape == (1, 8, 224, 224) and batch["label"].tolist() == [3]
    assert batch["skipped_paths"] == [str(tmp_path / "absent.mp4")]
    assert batch["skipped"][0].startswith(f"{tmp_path / 'absent.mp4'}: missing: ")
