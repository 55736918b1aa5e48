"""Per-paper recipes: tensor shapes in training and testing, on real clips and synthetic video."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vidnets.data.datasets import VideoRecord, collate_skip_bad, load_annotations
from vidnets.data.presets import RGB_RECIPES, build_dataset, recipe_defaults

# (recipe, train shape, test shape with views=2 and the paper's crop count)
SHAPES = {
    "c3d": ((3, 16, 112, 112), (2, 3, 16, 112, 112)),
    "res3d": ((3, 8, 112, 112), (2, 3, 8, 112, 112)),
    "p3d": ((3, 16, 160, 160), (2, 3, 16, 160, 160)),
    "t3d": ((3, 32, 224, 224), (2, 3, 32, 224, 224)),
    "two_stream_spatial": ((3, 224, 224), (20, 3, 224, 224)),
    "tsn_rgb": ((3, 3, 224, 224), (10, 2, 3, 224, 224)),
    "tsn_rgbdiff": ((3, 15, 224, 224), (10, 2, 15, 224, 224)),
}


@pytest.mark.parametrize("recipe", RGB_RECIPES)
def test_recipe_shapes_on_real_clip(recipe, shared_videos):
    rec = [VideoRecord(str(shared_videos / "mmaction2" / "demo.mp4"), 3)]
    train_item = build_dataset(recipe, rec, train=True)[0]
    assert "error" not in train_item, train_item
    assert tuple(train_item["clip"].shape) == SHAPES[recipe][0]
    assert train_item["clip"].dtype == torch.float32 and train_item["label"] == 3
    test_item = build_dataset(recipe, rec, train=False, views=2)[0]
    assert tuple(test_item["clip"].shape) == SHAPES[recipe][1]


def test_test_views_are_deterministic(shared_videos):
    rec = [VideoRecord(str(shared_videos / "st-gcn" / "ta_chi.mp4"), 0)]
    ds = build_dataset("tsn_rgb", rec, train=False, views=3, crops=1, size=128, crop=112)
    assert torch.equal(ds[0]["clip"], ds[0]["clip"])
    train = build_dataset("c3d", rec, train=True, size=64, crop=56)
    torch.manual_seed(0)
    a = train[0]["clip"]
    torch.manual_seed(0)
    assert torch.equal(a, train[0]["clip"])


def test_every_real_clip_through_every_sampler(shared_clips):
    """Every real clip through each sampler kind (random / uniform / non-overlapping clips,
    random / centre segments, one frame): nothing crashes, nothing is skipped. Small sizes keep
    it quick; the 720p clip with one key frame dominates the time."""
    records = [VideoRecord(row["abspath"], i) for i, row in enumerate(shared_clips)]
    cases = [
        ("c3d", True, {}),
        ("p3d", False, dict(views=2)),
        ("t3d", False, dict(views=2)),
        ("tsn_rgb", True, {}),
        ("two_stream_spatial", False, dict(views=2, crops=1)),
    ]
    for recipe, train, extra in cases:
        ds = build_dataset(recipe, records, train=train, on_error="raise", size=40, crop=32, **extra)
        for i in range(len(ds)):
            item = ds[i]
            assert item["clip"].isfinite().all(), (recipe, records[i].path)


def test_demo_overrides_and_dataloader(synth_dir):
    recs, _ = load_annotations("ucf101", synth_dir)
    ds = build_dataset("res3d", recs, train=True, frames=8, stride=1, size=32, crop=28)
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=True, collate_fn=collate_skip_bad)))
    assert batch["clip"].shape == (4, 3, 8, 28, 28) and batch["label"].shape == (4,)
    with pytest.raises(ValueError, match="unknown override"):
        build_dataset("c3d", recs, train=True, frame=8)
    with pytest.raises(ValueError, match="vidnets.flow"):
        recipe_defaults("tsn_flow")


def test_normalisation_constants():
    assert recipe_defaults("tsn_rgb").mean == (123.0, 117.0, 104.0)  # [104,117,123] BGR
    assert recipe_defaults("res3d").mean == (128.0, 128.0, 128.0)
    r = recipe_defaults("c3d")
    assert (r.frames, r.size, r.crop) == (16, (128, 171), 112)
    assert np.allclose(recipe_defaults("t3d").std, (58.395, 57.12, 57.375))
