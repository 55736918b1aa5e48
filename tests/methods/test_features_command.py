"""``vidnets features``: a checkpoint's own network and preprocessing, videos given beside a dataset,
and a model that cannot take the windows stopping the run at the first video."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from vidnets.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from vidnets.data.synthetic import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("synth"), num_classes=2, videos_per_class=3, frames=16, size=32)


@pytest.fixture(scope="module")
def c3d_checkpoint(synth, tmp_path_factory):
    """A narrow C3D trained (one epoch) on 16-frame 32² crops: its fc6 takes nothing else."""
    import vidnets

    run = vidnets.train(
        "c3d",
        profile="cpu",
        out=tmp_path_factory.mktemp("run") / "c3d",
        data__root=synth,
        data__batch_size=2,
        data__num_workers=0,
        train__epochs=1,
        train__eval_every=-1,
        train__progress=False,
        train__tensorboard=False,
        **{"model.kwargs.width": 4, "model.kwargs.fc_width": 32},
    )
    return run.checkpoint


def features(*args) -> list[str]:
    return ["features", *map(str, args), "--no-progress", "--device", "cpu"]


def test_a_checkpoint_brings_its_network_classes_and_preprocessing(synth, c3d_checkpoint, tmp_path, capsys):
    """Its 2 classes and 32-wide fc6, and its test crop (32) and clip length (16): C3D's recipe
    (crops of 112) would not fit its fc6."""
    video = sorted(synth.glob("*/*.avi"))[0]
    assert (
        main(features(video, "--checkpoint", c3d_checkpoint, "--layer", "fc6", "--keep-windows", "-o", tmp_path / "f"))
        == 0
    ), capsys.readouterr().err
    with np.load(tmp_path / "f" / f"{video.name}.npz") as data:
        assert data["feature"].shape == (32,) and list(data["window_starts"]) == [0]  # one 16-frame window


def test_a_model_that_cannot_take_the_windows_stops_at_the_first_video(
    synth, c3d_checkpoint, tmp_path, capsys, monkeypatch
):
    import vidnets.data.video

    opened = []
    iter_frames = vidnets.data.video.iter_frames
    monkeypatch.setattr(
        vidnets.data.video, "iter_frames", lambda path, **kw: opened.append(path) or iter_frames(path, **kw)
    )
    capsys.readouterr()
    status = main(
        features(
            "--layout",
            "ucf101",
            "--root",
            synth,
            "--checkpoint",
            c3d_checkpoint,
            "--resize",
            "72",
            "72",
            "--crop",
            "64",
            "-o",
            tmp_path / "f",
        )
    )
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "cannot take windows of 3×16×64×64" in err and "stopped at the first video" in err, err
    assert len(opened) == 1 and not list((tmp_path / "f").rglob("*.npz"))
    assert not (tmp_path / "f" / "failed.txt").exists()  # nothing is blamed on the videos

    status = main(
        features(
            "--layout", "ucf101", "--root", synth, "--checkpoint", c3d_checkpoint, "--crop", "48", "-o", tmp_path / "f"
        )
    )  # larger than the checkpoint's frames (short side 36)
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1 and "crop 48 is larger than the frames" in err, err
    assert len(opened) == 1  # refused before any video is read


def test_videos_given_beside_a_dataset_are_extracted_too(synth, tmp_path, capsys):
    extra = synth / "extra" / "clip.avi"
    extra.parent.mkdir(exist_ok=True)
    shutil.copy(sorted(synth.glob("*/*.avi"))[0], extra)
    tiny = [
        "--model",
        "res3d10",
        "--num-classes",
        "2",
        "--layer",
        "pre_logits",
        "--window",
        "4",
        "--stride",
        "8",
        "--resize",
        "32",
        "32",
        "--crop",
        "32",
        "-o",
        tmp_path / "f",
    ]
    assert main(features("--layout", "ucf101", "--root", synth, extra, *tiny)) == 0
    assert "7 written" in capsys.readouterr().out  # the dataset's 6 videos and the one named
    assert (tmp_path / "f" / "extra" / "clip.avi.npz").is_file()

    outside = tmp_path / "outside.avi"
    shutil.copy(extra, outside)
    assert main(features("--layout", "ucf101", "--root", synth, outside, *tiny)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "outside.avi is not inside --root" in err, err
