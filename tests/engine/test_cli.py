"""End to end through the command line: train, test, predict (and a timeline) on a tiny synthetic set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vidnets.cli import main


@pytest.fixture(scope="module")
def tiny_videos(tmp_path_factory):
    from vidnets.data.synthetic import generate_dataset

    return generate_dataset(
        tmp_path_factory.mktemp("synth"), num_classes=2, videos_per_class=4, frames=24, size=24, seed=0
    )


def _train_args(root, out):
    sets = {
        "data.root": root,
        "model.name": "res3d10",
        "model.kwargs": "{width: 4}",
        "data.batch_size": 2,
        "data.num_workers": 0,
        "data.train_kwargs": "{frames: 4, size: 24, crop: 16, flip: false}",
        "data.test_kwargs": "{frames: 4, size: 24, crop: 16, views: 2}",
        "train.epochs": 2,
        "train.max_iters": "null",
        "train.progress": "false",
        "train.tensorboard": "false",
        "schedule.step_size": 2,
        "test.view_chunk": 3,
    }
    args = ["train", "res3d", "--out", str(out)]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    return args


def test_train_test_predict(tiny_videos, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_train_args(tiny_videos, out)) == 0
    for name in (
        "last.pt",
        "config.yaml",
        "log.csv",
        "epochs.csv",
        "curves.png",
        "test_confusion.png",
        "test_confusion.csv",
        "test_scores.npz",
        "test_metrics.json",
    ):
        assert (out / name).is_file(), name

    assert main(["test", str(out / "last.pt"), "--out", str(tmp_path / "test"), "--set", "test.view_chunk=1"]) == 0
    metrics = json.loads((tmp_path / "test" / "test_metrics.json").read_text())
    assert metrics["videos"] == 2 and metrics["views"] == 2  # 1 test video per class × 2 classes
    assert (
        main(["test", str(out / "last.pt"), "--out", str(tmp_path / "test1"), "--views", "1", "--batch-size", "1"]) == 0
    )
    assert json.loads((tmp_path / "test1" / "test_metrics.json").read_text())["views"] == 1
    scores = np.load(tmp_path / "test" / "test_scores.npz")
    classes = (tiny_videos / "classInd.txt").read_text().split()[1::2]
    assert scores["logits"].shape == (2, 2, 2) and list(scores["class_names"]) == classes
    assert all(str(p).endswith(".avi") for p in scores["paths"])

    video = str(next(tiny_videos.glob(f"{classes[1]}/*.avi")))
    capsys.readouterr()
    assert main(["predict", str(out / "last.pt"), video, "--topk", "2"]) == 0
    text = capsys.readouterr().out
    probs = [float(line.split()[-1].rstrip("%")) for line in text.splitlines()[1:3]]
    assert len(probs) == 2 and abs(sum(probs) - 100) < 0.5 and classes[1] in text
    recorded = text.splitlines()[3]  # the checkpoint's own test accuracy, beside its predictions
    assert recorded.startswith("checkpoint: test video top-1") and "chance 50.0%" in recorded

    folder = tmp_path / "timeline"
    assert (
        main(
            [
                "predict",
                str(out / "last.pt"),
                video,
                "--timeline",
                "--window",
                "0.4",
                "--hop",
                "0.2",
                "--out",
                str(folder),
            ]
        )
        == 0
    )
    png = folder / f"{Path(video).stem}_timeline.png"  # --out is a folder
    assert png.stat().st_size > 1000 and png.with_suffix(".csv").read_text().count("\n") >= 3


def test_resume_auto_continues(tiny_videos, tmp_path, capsys):
    out = tmp_path / "run"
    args = _train_args(tiny_videos, out)
    assert main([*args, "--set", "train.epochs=1"]) == 0
    assert main([*args, "--resume", "auto"]) == 0
    from vidnets.engine.checkpoint import read_checkpoint

    assert read_checkpoint(out / "last.pt")["epoch"] == 2
    capsys.readouterr()
    assert main([*args, "--resume", "auto"]) == 0  # finished: says so instead of "trained … in 0s"
    text = capsys.readouterr().out
    assert "nothing left to train" in text and "trained 2 epochs" not in text
    assert read_checkpoint(out / "last.pt")["epoch"] == 2


def test_bad_config_is_a_clear_error(tiny_videos, capsys):
    assert main(["train", "res3d", "--set", "optim.lrr=1", "--set", f"data.root={tiny_videos}"]) == 2
    assert "unknown key optim.lrr" in capsys.readouterr().err
    assert main(["train", "res3d", "--set", "data.root=/nonexistent/videos"]) == 2
    assert "data.root" in capsys.readouterr().err


def test_flow_recipe_train_test_predict(tmp_path, capsys):
    """The temporal-stream path end to end: extract flow, train TSN on it, test, predict."""
    from vidnets.data.synthetic import generate_dataset

    root = generate_dataset(tmp_path / "synth", num_classes=2, videos_per_class=4, frames=24, size=40, seed=0)
    videos = sorted(str(p) for p in root.glob("*/*.avi"))
    flow_root = tmp_path / "flow"
    assert main(["flow", "extract", *videos, "--out", str(flow_root), "--method", "dis", "--keep-size"]) == 0
    out = tmp_path / "run"
    sets = {
        "data.root": root,
        "data.flow_root": flow_root,
        "data.batch_size": 2,
        "data.num_workers": 0,
        "data.train_kwargs": "{size: 40, crop: 32}",
        "data.test_kwargs": "{size: 40, crop: 32, views: 2, crops: 1}",
        "model.partial_bn": "false",
        "optim.accumulate": 1,
        "train.epochs": 1,
        "train.max_iters": "null",
        "train.progress": "false",
        "train.tensorboard": "false",
    }
    args = ["train", "tsn_flow", "--out", str(out)]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    assert main(args) == 0
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert metrics["videos"] == 2

    capsys.readouterr()
    assert main(["predict", str(out / "last.pt"), videos[0], "--topk", "2"]) == 0
    probs = [float(line.split()[-1].rstrip("%")) for line in capsys.readouterr().out.splitlines()[1:3]]
    assert len(probs) == 2 and abs(sum(probs) - 100) < 0.5

    unseen = tmp_path / "unseen.avi"
    unseen.write_bytes(open(videos[0], "rb").read())
    capsys.readouterr()
    assert main(["predict", str(out / "last.pt"), str(unseen)]) != 0
    assert "vidnets flow extract" in capsys.readouterr().err  # says how to make the missing flow


def test_multitask_train_test_predict(tiny_videos, tmp_path, capsys):
    """Two-Stream multi-task learning from the command line: one trunk, a head per dataset, each
    tested on its own split; `test` and `predict` use the head `multitask.eval_task` names."""
    import torch

    from vidnets.data.synthetic import generate_dataset

    other = generate_dataset(tmp_path / "other", num_classes=3, videos_per_class=4, frames=24, size=24, seed=1)
    out = tmp_path / "run"
    sets = {
        "data.root": tiny_videos,
        "multitask.tasks": f"{{first: {{}}, second: {{root: {other}}}}}",
        "model.kwargs": "{input_size: 64, dropout: 0.5}",
        "data.batch_size": 4,
        "data.num_workers": 0,
        "optim.accumulate": 1,
        "data.train_kwargs": "{size: 72, crop: 64}",
        "data.test_kwargs": "{size: 72, crop: 64, views: 2, crops: 1}",
        "train.epochs": 1,
        "train.max_iters": "null",
        "train.progress": "false",
        "train.tensorboard": "false",
        "test.view_chunk": 2,
    }
    args = ["train", "two_stream_spatial", "--out", str(out)]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    assert main(args) == 0
    for task, videos in (("first", 2), ("second", 3)):
        assert json.loads((out / f"test_{task}_metrics.json").read_text())["videos"] == videos
    header = (out / "epochs.csv").read_text().splitlines()[0]
    assert "test_first_video_top1" in header and "test_second_video_top1" in header

    state = torch.load(out / "last.pt", weights_only=True)
    assert {k: len(v) for k, v in state["task_classes"].items()} == {"first": 2, "second": 3}
    assert state["model"]["heads.second.weight"].shape == (3, 2048)

    assert (
        main(["test", str(out / "last.pt"), "--out", str(tmp_path / "t"), "--set", "multitask.eval_task=second"]) == 0
    )
    assert json.loads((tmp_path / "t" / "test_metrics.json").read_text())["videos"] == 3
    capsys.readouterr()
    video = str(next(other.glob("*/*.avi")))
    assert main(["predict", str(out / "last.pt"), video, "--topk", "5", "--set", "multitask.eval_task=second"]) == 0
    assert (
        len(capsys.readouterr().out.splitlines()[1:-1]) == 3
    )  # the second head: 3 classes (then the recorded accuracy)

    capsys.readouterr()
    assert main(args[:4] + ["--overwrite", "--set", "model.name=res3d10", *args[4:], "--set", "model.kwargs={}"]) != 0
    assert "multi-task learning needs a model with task heads (two_stream_spatial" in capsys.readouterr().err


def test_train_prints_a_run_header(tiny_videos, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*_train_args(tiny_videos, out), "--set", "train.epochs=1"]) == 0
    text = capsys.readouterr().out
    header = dict(line.split(None, 1) for line in text.splitlines()[:7])
    assert header["config"].split()[0].endswith("configs/res3d.yaml")
    assert header["device"].startswith("cpu, ") and "threads" in header["device"]
    assert header["precision"].split()[0] in ("fp32", "bf16") and "auto:" in header["precision"]
    assert header["model"].startswith("res3d10, ") and "parameters" in header["model"]
    assert "MACs per input of 3×4×16×16" in header["model"]
    assert "6 training videos, 2 test videos, 2 classes" in header["data"]
    assert header["steps"].startswith("3 per epoch × 1 epoch(s) = 3")
    assert "epoch 1 | step 3" in text  # the epoch line, through logging, on stdout as before


def test_dry_run_estimates_and_writes_nothing(tiny_videos, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*_train_args(tiny_videos, out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].startswith("config ")
    estimate = text.splitlines()[-1]
    assert estimate.startswith("dry run: 2 step(s) timed") and "6 steps take about" in estimate
    assert "2 test(s)" in estimate and "whole run about" in estimate
    assert not out.exists()


def test_library_warnings_print_as_one_line():
    import subprocess
    import sys

    from vidnets.cli import one_line_warning

    line = one_line_warning(UserWarning("a long\n   message"), UserWarning, "/x/site-packages/torch/nn/conv.py", 12)
    assert line == "warning: a long message (UserWarning, conv.py:12)\n"
    code = "import warnings; from vidnets.cli import setup_logging; setup_logging({}); warnings.warn('from a library')"
    shown = [
        subprocess.run([sys.executable, "-c", code.format(q)], capture_output=True, text=True, check=True).stderr
        for q in ("", "quiet=True")
    ]
    assert shown == ["warning: from a library (UserWarning, <string>:1)\n", ""]  # -q: errors only
