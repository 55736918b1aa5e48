"""Clip / video accuracy, mean class accuracy, confusion matrix and score dumps on known inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import TinyVideoNet

from vidnets.engine.evaluate import EvalResult, evaluate, score_views, write_report
from vidnets.engine.metrics import load_scores, mean_class_accuracy, topk_accuracy


def test_topk_accuracy():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.35, 0.25]])
    labels = np.array([1, 1, 2, 2])
    assert topk_accuracy(scores, labels, 1) == 0.5
    assert topk_accuracy(scores, labels, 2) == 0.75
    assert topk_accuracy(scores, labels, 5) == 1.0


def test_mean_class_accuracy_weights_classes_equally():
    labels = np.array([0, 0, 0, 0, 1])
    preds = np.array([0, 0, 0, 0, 0])
    assert mean_class_accuracy(preds, labels, 2) == pytest.approx(0.5)  # overall accuracy would be 0.8


def _result() -> EvalResult:
    # video 0: views disagree but the mean favours class 0; video 1 has only one real view.
    logits = np.array([[[3.0, 0.0], [0.0, 1.0]], [[0.0, 2.0], [np.nan, np.nan]]], dtype=np.float32)
    return EvalResult(
        index=np.array([0, 1]),
        label=np.array([0, 0]),
        logits=logits,
        num_views=np.array([2, 1]),
        paths=["a.avi", "b.avi"],
        class_names=["x", "y"],
    )


def test_clip_and_video_metrics():
    m = _result().metrics()
    assert m["clip_top1"] == pytest.approx(1 / 3)  # 3 real views, one right
    assert m["video_top1"] == pytest.approx(0.5)
    assert m["chance"] == 0.5 and m["videos"] == 2
    assert _result().confusion().tolist() == [[1, 1], [0, 0]]


def test_report_files(tmp_path):
    paths = write_report(_result(), tmp_path, prefix="t")
    assert (tmp_path / "t_confusion.png").stat().st_size > 1000
    assert (tmp_path / "t_confusion.csv").read_text().splitlines()[1] == "x,1,1"
    back = load_scores(paths["scores"])
    assert back.class_names == ["x", "y"] and back.logits.shape == (2, 2, 2)
    assert np.isnan(back.logits[1, 1]).all() and back.num_views.tolist() == [2, 1]


def test_views_are_scored_in_chunks():
    model = TinyVideoNet().eval()
    clips = torch.randn(2, 5, 3, 4, 8, 8)
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    out = score_views(model, clips, view_chunk=3)
    assert out.shape == (2, 5, 3) and max(calls) == 3
    with torch.no_grad():
        assert torch.allclose(out[1, 4], model(clips[1, 4:5])[0], atol=1e-5)


def test_evaluate_single_view_batches():
    model = TinyVideoNet()
    batch = {
        "clip": torch.randn(3, 3, 4, 8, 8),
        "label": torch.tensor([0, 1, 2]),
        "index": torch.tensor([2, 0, 1]),
        "path": ["c", "a", "b"],
    }
    res = evaluate(model, [batch], class_names=["a", "b", "c"])
    assert res.logits.shape == (3, 1, 3) and res.index.tolist() == [0, 1, 2] and res.paths == ["a", "b", "c"]


def test_metrics_of_an_all_skipped_test_set_do_not_crash():
    from vidnets.engine.evaluate import EvalResult

    result = EvalResult(
        index=np.zeros(0, int),
        label=np.zeros(0, int),
        logits=np.zeros((0, 1, 3)),
        num_views=np.zeros(0, int),
        paths=[],
        class_names=["a", "b", "c"],
        skipped=["bad.avi"],
    )
    metrics = result.metrics()
    assert metrics["videos"] == 0 and metrics["skipped"] == 1 and np.isnan(metrics["video_top1"])
    assert result.confusion().sum() == 0
