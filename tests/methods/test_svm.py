"""C3D's protocol end to end: features over sliding windows → linear SVM on the split lists."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidnets.cli import main
from vidnets.engine.metrics import classification_metrics
from vidnets.methods.descriptors import feature_path, read_feature_file, write_feature_file
from vidnets.methods.svm import read_split_list, run_svm_protocol

pytestmark = pytest.mark.usefixtures("one_thread")


def test_metrics_by_hand():
    labels = np.array([0, 0, 0, 1])
    predictions = np.array([0, 0, 1, 0])
    accuracy, mean_class = classification_metrics(labels, predictions)
    assert accuracy == 0.5 and mean_class == pytest.approx((2 / 3 + 0) / 2)


def test_separable_features_give_perfect_svm(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 32))
    lines = {"train": [], "test": []}
    for i in range(60):
        label, split = i % 4, "test" if i % 5 == 0 else "train"
        video = f"c{label}/v{i}.avi"
        vector = centres[label] + 0.05 * rng.normal(size=32)
        write_feature_file(feature_path(tmp_path / "feats", video, "npz"), vector / np.linalg.norm(vector), label)
        lines[split].append(f"{video} {label + 1}\n")  # list labels (1-based) are not needed: files carry them
    for split, rows in lines.items():
        (tmp_path / f"{split}.txt").write_text("".join(rows))
    (tmp_path / "test.txt").write_text((tmp_path / "test.txt").read_text() + "c9/never_extracted.avi\n")
    result, missing = run_svm_protocol(tmp_path / "feats", tmp_path / "train.txt", tmp_path / "test.txt")
    assert result.accuracy == 1.0 and result.mean_class_accuracy == 1.0
    assert result.num_test == 12 and missing == ["c9/never_extracted.avi"]


def test_split_list_errors_name_the_line(tmp_path):
    (tmp_path / "l.txt").write_text("a.avi 1\nb.avi one\n")
    with pytest.raises(ValueError, match="l.txt:2"):
        read_split_list(tmp_path / "l.txt")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from vidnets.data.synthetic import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("synth"), num_classes=3, videos_per_class=4, frames=20, size=32)


def test_features_then_svm_commands_on_synthetic_videos(synth, tmp_path, capsys):
    feats = tmp_path / "feats"
    broken = synth / "broken.avi"
    broken.write_bytes(b"not a video")
    (tmp_path / "extra.txt").write_text("broken.avi 0\n")
    args = [
        "features",
        "--layout",
        "ucf101",
        "--root",
        str(synth),
        "--list",
        str(tmp_path / "extra.txt"),
        "--model",
        "res3d10",
        "--num-classes",
        "3",
        "--layer",
        "pre_logits",
        "--resize",
        "32",
        "32",
        "--crop",
        "32",
        "--window",
        "8",
        "--stride",
        "4",
        "-o",
        str(feats),
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "12 written, 0 already done, 1 failed" in out.out and "broken.avi" in out.err
    train = read_split_list(synth / "trainlist01.txt")
    vector, label = read_feature_file(feature_path(feats, train[0][0], "npz"))
    assert vector.shape == (512,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert label == train[0][1] - 1  # 0-based class index from classInd.txt
    with np.load(feature_path(feats, train[0][0], "npz")) as data:
        assert int(data["num_windows"]) == 0  # windows are stored only with --keep-windows

    assert main(args) == 0  # resume: nothing is recomputed
    assert "0 written, 12 already done, 1 failed" in capsys.readouterr().out

    report = tmp_path / "svm.json"
    assert (
        main(
            [
                "svm",
                "--features",
                str(feats),
                "--train",
                str(synth / "trainlist01.txt"),
                "--test",
                str(synth / "testlist01.txt"),
                "--json",
                str(report),
            ]
        )
        == 0
    )
    metrics = json.loads(report.read_text())
    assert metrics["train_videos"] == 9 and metrics["test_videos"] == 3
    assert 0.0 <= metrics["accuracy"] <= 1.0 and "mean class accuracy" in capsys.readouterr().out
