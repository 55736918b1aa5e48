"""``vidnets train RECIPE --profile cpu``: the recipe's CPU-scale overlay runs end to end."""

from __future__ import annotations

import pytest

from vidnets.cli import main
from vidnets.data.synthetic import generate_dataset
from vidnets.engine.config import load_config


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return generate_dataset(
        tmp_path_factory.mktemp("synth"), num_classes=2, videos_per_class=8, frames=20, size=40, seed=1
    )


def _train_one_epoch(recipe: str, synth, out) -> int:
    sets = [f"data.root={synth}", "train.epochs=1", "train.progress=false", "data.num_workers=0"]
    return main(["train", recipe, "--profile", "cpu", "--out", str(out), *(a for s in sets for a in ("--set", s))])


@pytest.mark.parametrize("recipe", ["res3d", "c3d"])
def test_cpu_profile_trains_end_to_end(recipe, synth, tmp_path):
    out = tmp_path / recipe
    code = _train_one_epoch(recipe, synth, out)
    assert code == 0 and (out / "last.pt").is_file() and (out / "test_scores.npz").is_file()


def test_profile_overlays_the_recipe_before_set():
    cfg = load_config("tsn_rgb", ["data.batch_size=4"], profile="cpu")
    assert cfg.model.kwargs["width"] == 8 and cfg.model.kwargs["num_segments"] == 3  # merged, not replaced
    assert cfg.data.batch_size == 4 and cfg.train.epochs == 12 and cfg.train.max_iters is None


def test_unknown_profile_is_one_line(capsys):
    assert main(["train", "res3d", "--profile", "gpu", "--set", "data.root=/nonexistent"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--profile gpu" in err and "available: cpu" in err and "Traceback" not in err


def test_score_dump_of_a_run_names_every_video(synth, tmp_path):
    """The dump written by `vidnets train` keys each video by its path (what `vidnets fuse` aligns on)."""
    import numpy as np

    out = tmp_path / "run"
    assert _train_one_epoch("res3d", synth, out) == 0
    with np.load(out / "test_scores.npz") as dump:
        paths = [str(p) for p in dump["paths"]]
    assert len(set(paths)) == len(paths) == 8 and all(p.endswith(".avi") for p in paths)  # 2 classes × 4
