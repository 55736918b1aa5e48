"""The Python API: ``vidnets.train / test / predict / load_model`` on a tiny synthetic set."""

from __future__ import annotations

import subprocess
import sys

import pytest

import vidnets


@pytest.fixture(scope="module")
def tiny_videos(tmp_path_factory):
    from vidnets.data.synthetic import generate_dataset

    return generate_dataset(
        tmp_path_factory.mktemp("synth"), num_classes=2, videos_per_class=4, frames=24, size=24, seed=0
    )


TINY = dict(
    model__name="res3d10",
    model__kwargs={"width": 4},
    data__batch_size=2,
    data__num_workers=0,
    data__train_kwargs={"frames": 4, "size": 24, "crop": 16, "flip": False},
    data__test_kwargs={"frames": 4, "size": 24, "crop": 16, "views": 2},
    train__epochs=1,
    train__max_iters=None,
    train__progress=False,
    train__tensorboard=False,
)


def test_import_is_light():
    code = "import sys, vidnets; assert callable(vidnets.train) and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_train_test_predict_load(tiny_videos, tmp_path):
    run = vidnets.train("res3d", out=tmp_path / "run", data__root=tiny_videos, **TINY)
    assert run.checkpoint == tmp_path / "run" / "last.pt" and run.checkpoint.is_file()
    assert (run.epochs, run.steps) == (1, 3) and run.metrics["videos"] == 2
    assert {"checkpoint", "config", "metrics", "scores", "curves"} <= set(run.files)
    assert all(path.is_file() for path in run.files.values())
    assert "last.pt" in repr(run) and "video_top1=" in repr(run)
    assert str(run.header).startswith("config ") and "res3d10" in str(run.header)

    metrics = vidnets.test(run.checkpoint, out=tmp_path / "test", views=1)
    assert metrics["views"] == 1 and metrics["videos"] == 2 and 0 <= metrics["video_top1"] <= 1
    assert metrics.files["scores"] == tmp_path / "test" / "test_scores.npz" and metrics.files["scores"].is_file()
    assert "video_top1=" in repr(metrics) and "test_scores.npz" in repr(metrics)
    assert dict(metrics.items())["video_top1"] == metrics["video_top1"] and len(list(metrics.values())) == len(metrics)

    video = sorted(tiny_videos.glob("*/*.avi"))[0]
    pred = vidnets.predict(run.checkpoint, video, topk=2)
    top = pred.topk(2)
    assert [name for name, _ in top] and abs(sum(p for _, p in top) - 1) < 1e-4
    assert pred.recorded_metrics["videos"] == 2 and video.name in repr(pred)

    timeline = vidnets.predict(run.checkpoint, video, timeline=True, window=0.4, hop=0.2, out=tmp_path / "tl")
    assert timeline.is_timeline and timeline.probs.shape[0] == len(timeline.spans) >= 2
    assert timeline.files["timeline_png"] == tmp_path / "tl" / f"{video.stem}_timeline.png"
    assert all(p.is_file() for p in timeline.files.values()) and "timeline_png" in repr(timeline)

    model = vidnets.load_model(run.checkpoint)
    assert not model.training and sorted(model.class_names) == sorted(name for name, _ in top)


def test_dry_run_writes_nothing(tiny_videos, tmp_path):
    run = vidnets.train(
        "res3d",
        out=tmp_path / "run",
        dry_run=True,
        dry_run_steps=1,
        data__root=tiny_videos,
        **{**TINY, "train__eval_every": -1},
    )
    assert run.dry_run is not None and run.dry_run.tests == 0 and run.dry_run.seconds_per_step > 0
    assert run.checkpoint is None and not (tmp_path / "run").exists() and "dry run" in repr(run)


def test_overrides_are_checked_like_set(tiny_videos):
    from vidnets.engine.config import ConfigError

    with pytest.raises(ConfigError, match="optim.lrr"):
        vidnets.train("res3d", optim__lrr=1, data__root=tiny_videos)
    assert vidnets.api.override_texts({"data__root": tiny_videos, "model__kwargs": {"width": 4}, "x.y": None}) == [
        f"data.root={tiny_videos}",
        "model.kwargs={width: 4}",
        "x.y=null",
    ]
