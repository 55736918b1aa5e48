"""Direction-sensitive classes learn only when a horizontal flip keeps their labels right.

On the synthetic "mirrored" family (MoveLeft against MoveRight, same pictures, opposite drift), a
3D net trained with the recipe's plain random flip sees half of each class's clips with the other
class's motion and the wrong label, so it cannot separate the pair; with ``data.flip_label_map``
(a flipped MoveLeft clip is labelled MoveRight) or with the flip turned off, it can.
"""

from __future__ import annotations

import json

import pytest

from vidnets.cli import main
from vidnets.data.synthetic import generate_dataset


@pytest.fixture(scope="module")
def left_right(tmp_path_factory):
    return generate_dataset(
        tmp_path_factory.mktemp("left_right"),
        family="mirrored",
        num_classes=2,
        videos_per_class=40,
        frames=16,
        size=32,
        seed=0,
    )


def _video_top1(root, out, *extra):
    code = main(
        [
            "train",
            "res3d",
            "--profile",
            "cpu",
            "--out",
            str(out),
            "--set",
            f"data.root={root}",
            "--set",
            "data.num_workers=0",
            "--set",
            "train.progress=false",
            "--set",
            "train.seed=0",
            "--set",
            "train.epochs=16",
            "--set",
            "schedule.milestones=[12]",
            "--set",
            "optim.lr=0.02",
            *extra,
        ]
    )
    assert code == 0
    return json.loads((out / "test_metrics.json").read_text())["video_top1"]


@pytest.mark.parametrize(
    "fix",
    [["--set", "data.flip_label_map={MoveLeft: MoveRight}"], ["--set", "data.train_kwargs.flip=false"]],
    ids=["label_map", "no_flip"],
)
def test_mirrored_pair_separates_with_the_map_or_without_flip(left_right, tmp_path, fix):
    assert _video_top1(left_right, tmp_path / "run", *fix) >= 0.9


def test_plain_flip_cannot_separate_the_pair(left_right, tmp_path):
    assert _video_top1(left_right, tmp_path / "run") <= 0.75
