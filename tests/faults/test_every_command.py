"""Every subcommand answers bad arguments with exit status 2 and one line on stderr naming the problem:
a path that does not exist, a bad value, an impossible size, a file that is not what the command needs.
No traceback, ever."""

from __future__ import annotations

import pytest

from .conftest import assert_one_line_error, run_cli


def subcommands() -> set[str]:
    import argparse

    from vidnets.cli import build_parser

    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(action.choices)


@pytest.fixture(scope="module")
def files(tmp_path_factory, videos):
    """Things to hand over where a command wants something else."""
    import numpy as np
    import torch

    folder = tmp_path_factory.mktemp("bad-args")
    text = folder / "notes.txt"
    text.write_text("not what you need\n")
    weights = folder / "weights.pt"
    torch.save({"conv.weight": torch.zeros(2, 2)}, weights)  # a bare state dict, not a vidnets checkpoint
    dump = folder / "scores.npz"
    np.savez(dump, something=np.zeros(3))
    from vidnets.engine.metrics import ScoreDump, save_scores

    good = save_scores(
        ScoreDump(
            logits=np.zeros((2, 1, 3)),
            label=np.array([0, 1]),
            index=np.arange(2),
            num_views=np.ones(2),
            paths=["a.avi", "b.avi"],
            class_names=["x", "y", "z"],
        ),
        folder / "good_scores.npz",
    )
    return {
        "text": text,
        "weights": weights,
        "dump": dump,
        "good_dump": good,
        "video": sorted(videos.rglob("*.avi"))[0],
        "out": folder / "out",
        "missing": folder / "no_such_thing.avi",
    }


def cases(f, videos, checkpoint) -> list[tuple[list, str]]:
    """``(arguments, a word the one-line error must contain)`` for every subcommand."""
    video, out, missing = f["video"], f["out"], f["missing"]
    root = [f"--set=data.root={videos}"]
    return [
        (["models", "--num-classes", "0"], "--num-classes"),
        (["models", "--family", "nope"], "--family"),
        (["models", "--num-classes", "many"], "--num-classes"),
        (["convert", "caffe", missing, "--arch", "c3d", "--out", out / "c.pt"], "no_such_thing"),
        (["convert", "caffe", f["text"], "--arch", "nope", "--out", out / "c.pt"], "--arch"),
        (["convert", "caffe", f["text"], "--arch", "c3d", "--out", out / "c.pt"], "notes.txt"),
        (["convert", "caffe", f["text"], "--arch", "c3d"], "--output"),
        (["check", missing], "no_such_thing"),
        (["check", video, "--workers", "0"], "--workers"),
        (["synth", out / "s", "--size", "0"], "--size"),
        (["synth", out / "s", "--family", "nope"], "--family"),
        (["flow", "extract", missing, "--out", out / "f"], "no_such_thing"),
        (["flow", "extract", video, "--out", out / "f", "--workers", "0"], "--workers"),
        (["flow", "extract", video, "--out", out / "f", "--size", "big"], "--size"),
        (["flow", "show", missing, "--out", out / "f"], "no_such_thing"),
        (["flow", "show", video, "--out", out / "f", "--max-fields", "0"], "--max-fields"),
        (["train", "no_such_recipe"], "no_such_recipe"),
        (["train", "res3d", *root, "--set", "optim.lr=fast"], "optim.lr"),
        (["train", "c3d", *root, "--set", "data.train_kwargs={crop: 8}"], "c3d"),
        (["train", "res3d", *root, "--resume", missing], "no_such_thing"),
        (["train", "res3d", *root, "--profile", "nope"], "--profile"),
        (["test", missing], "no_such_thing"),
        (["test", checkpoint, "--views", "0"], "--views"),
        (["test", checkpoint, "--crops", "7"], "--crops"),
        (["test", f["weights"], "--out", out / "t"], "weights.pt"),
        (["test", f["text"], "--out", out / "t"], "notes.txt"),
        (["predict", missing, video], "no_such_thing"),
        (["predict", checkpoint, missing], "no_such_thing"),
        (["predict", checkpoint, video, "--topk", "0"], "--topk"),
        (["predict", checkpoint, video, "--window", "-1"], "--window"),
        (["predict", f["weights"], video], "weights.pt"),
        (["demo", "--precision", "fp64"], "--precision"),
        (["demo", "--quick", "--out", f["text"]], "notes.txt"),
        (["fuse", missing], "no_such_thing"),
        (["fuse", f["dump"]], "scores.npz"),
        (["fuse", f["good_dump"], f["good_dump"], "--weights", "1"], "weights"),
        (["fuse", f["good_dump"], "--method", "svm"], "--train-dumps"),
        (["features", missing, "-o", out / "feat"], "no_such_thing"),
        (["features", video], "--out"),
        (["features", video, "-o", out / "feat", "--model", "nope"], "--model"),
        (["features", video, "-o", out / "feat", "--window", "0"], "--window"),
        (["features", video, "-o", out / "feat", "--checkpoint", f["weights"]], "weights.pt"),
        (["svm", "--features", missing, "--train", f["text"], "--test", f["text"]], "no_such_thing"),
        (["svm", "--features", out, "--train", f["text"], "--test", f["text"], "--C", "-1"], "--C"),
        (["transfer", "--root", missing, "-o", out / "student.pt"], "no_such_thing"),
        (["transfer", "--root", videos, "-o", out / "student.pt", "--lr", "0"], "--lr"),
        (["transfer", "--root", videos, "-o", out / "student.pt", "--student", "nope"], "--student"),
        (["export", missing, "--format", "onnx", "--out", out / "e"], "no_such_thing"),
        (["export", checkpoint, "--format", "tflite", "--out", out / "e"], "--format"),
        (["export", f["weights"], "--format", "onnx", "--out", out / "e"], "weights.pt"),
        (["export", checkpoint, "--format", "onnx", "--out", f["text"]], "notes.txt"),
        (["serve", missing], "no_such_thing"),
        (["serve", checkpoint, "--queue", "0"], "--queue"),
        (["serve", f["weights"]], "weights.pt"),
    ]


def test_every_subcommand_is_covered(files, videos, tmp_path):
    covered = {args[0] for args, _ in cases(files, videos, tmp_path / "last.pt")}
    assert covered == subcommands()


def test_bad_arguments_get_one_line_and_status_2(files, videos, checkpoint, capsys, faults):
    failures = []
    for args, needle in cases(files, videos, checkpoint):
        status, err = run_cli(capsys, args)
        faults.bad_input()
        try:
            assert_one_line_error(status, err, needle)
        except AssertionError:
            failures.append(f"vidnets {' '.join(map(str, args))}: exit {status}, stderr {err[-600:]!r}")
    assert not failures, "\n".join(failures)
