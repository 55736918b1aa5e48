"""Flip label map: a horizontally flipped training clip of a direction-sensitive class takes the
label of its mirror class; plain flips and unmapped classes keep theirs; bad maps are config errors."""

from __future__ import annotations

import numpy as np
import pytest

from vidnets.data.datasets import VideoRecord
from vidnets.data.presets import build_dataset
from vidnets.data.synthetic import generate_dataset


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    return generate_dataset(
        tmp_path_factory.mktemp("mirrored"), family="mirrored", videos_per_class=2, frames=8, size=32, seed=0
    )


def _items(root, label_map, flip=True, n=40):
    rec = VideoRecord(str(root / "MoveLeft" / "v_MoveLeft_g01_c01.avi"), 0)
    ds = build_dataset("res3d", [rec], train=True, frames=8, size=32, crop=32, flip=flip, flip_label_map=label_map)
    rng = np.random.default_rng(0)
    return [ds.load(0, rng) for _ in range(n)]


def test_flipped_clips_take_the_mirror_label(mirrored):
    plain = _items(mirrored, None)
    mapped = _items(mirrored, {0: 1, 1: 0})
    unflipped = _items(mirrored, {0: 1, 1: 0}, flip=False)
    reference = unflipped[0]["clip"]
    flipped = [bool((it["clip"] != reference).any()) for it in mapped]  # whole video and frame: only flips differ
    assert 5 < sum(flipped) < 35  # about half
    assert [it["label"] for it in mapped] == [1 if f else 0 for f in flipped]
    assert all(it["label"] == 0 for it in plain + unflipped)
    for a, b in zip(plain, mapped):  # the map changes labels only, never the pictures
        assert (a["clip"] == b["clip"]).all()
    for it, f in zip(mapped, flipped):
        if f:
            assert (it["clip"] == reference.flip(-1)).all()


def test_config_names_are_checked_and_made_symmetric():
    from vidnets.engine.build import flip_label_indices
    from vidnets.engine.config import ConfigError

    classes = ["MoveLeft", "MoveRight", "RotateCW", "RotateCCW", "MoveUp"]
    assert flip_label_indices({"MoveLeft": "MoveRight", "RotateCW": "RotateCCW"}, classes) == {0: 1, 1: 0, 2: 3, 3: 2}
    with pytest.raises(ConfigError, match=r"^data.flip_label_map: 'SwipeLeft' is not a class"):
        flip_label_indices({"SwipeLeft": "MoveRight"}, classes)
    with pytest.raises(ConfigError, match=r"^data.flip_label_map: 'MoveRight' maps to both"):
        flip_label_indices({"MoveLeft": "MoveRight", "MoveRight": "MoveUp"}, classes)


def test_cli_reports_a_bad_map_in_one_line(mirrored, tmp_path, capsys):
    from vidnets.cli import main

    code = main(
        [
            "train",
            "res3d",
            "--set",
            f"data.root={mirrored}",
            "--set",
            "data.num_workers=0",
            "--set",
            f"train.out_dir={tmp_path / 'run'}",
            "--set",
            "train.max_iters=1",
            "--set",
            "data.flip_label_map={MoveLeft: Nope}",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "data.flip_label_map: 'Nope' is not a class" in err
