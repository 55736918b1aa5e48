"""Late fusion: weights apply exactly as given, streams align by video, SVM fusion fits and scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vidnets.engine.metrics import load_scores
from vidnets.methods.fusion import FUSION_PRESETS, fuse_svm, fuse_weighted, svm_fusion_features, weighted_fusion

pytestmark = pytest.mark.usefixtures("one_thread")


def _dump(path, scores, labels, paths=None):
    arrays = {"scores": np.asarray(scores, dtype=np.float32), "labels": np.asarray(labels)}
    if paths is not None:
        arrays["paths"] = np.asarray(paths)
    np.savez(path, **arrays)
    return load_scores(path)


def test_weighted_fusion_hand_computed(tmp_path):
    # probabilities as stored (softmax="none"): fused = 1·rgb + 1.5·flow, by hand
    rgb = _dump(tmp_path / "rgb.npz", [[0.6, 0.4], [0.2, 0.8]], [0, 1])
    flow = _dump(tmp_path / "flow.npz", [[0.3, 0.7], [0.9, 0.1]], [0, 1])
    result = fuse_weighted([rgb, flow], (1, 1.5), softmax="none")
    np.testing.assert_allclose(result.scores, [[1.05, 1.45], [1.55, 0.95]], rtol=1e-6)
    assert result.predictions.tolist() == [1, 0]
    assert result.stream_accuracy == (1.0, 0.0)
    assert result.accuracy == 0.0


def test_views_then_softmax_then_weights(tmp_path):
    # (N=1, V=2, C=2) logits: mean over views [1, 0] → softmax → weight 2
    logits = [[[2.0, 0.0], [0.0, 0.0]]]
    dump = _dump(tmp_path / "a.npz", logits, [0])
    p0 = math.exp(1) / (math.exp(1) + 1)
    result = fuse_weighted([dump], (2.0,), softmax="after_mean")
    np.testing.assert_allclose(result.scores, [[2 * p0, 2 * (1 - p0)]], rtol=1e-6)
    # default: average per-view probabilities: view 1 softmax [e²/(e²+1), …], view 2 [0.5, 0.5]
    q = (math.exp(2) / (math.exp(2) + 1) + 0.5) / 2
    np.testing.assert_allclose(fuse_weighted([dump], (2.0,)).scores, [[2 * q, 2 * (1 - q)]], rtol=1e-6)


def test_reads_test_dumps_and_reproduces_their_video_accuracy(tmp_path):
    from vidnets.engine.evaluate import EvalResult
    from vidnets.engine.metrics import save_scores

    rng = np.random.default_rng(1)
    logits = rng.normal(size=(8, 3, 4)).astype(np.float32)
    logits[0, 2] = np.nan  # video 0 has only two views
    labels = rng.integers(0, 4, 8)
    evaluated = EvalResult(
        index=np.arange(8),
        label=labels,
        logits=logits,
        num_views=np.array([2] + [3] * 7),
        paths=[f"v{i}.avi" for i in range(8)],
        class_names=list("abcd"),
    )
    save_scores(evaluated, tmp_path / "scores.npz")
    result = fuse_weighted([load_scores(tmp_path / "scores.npz")], (1.0,))
    assert np.isfinite(result.scores).all()
    assert result.accuracy == pytest.approx(evaluated.metrics()["video_top1"])


def test_streams_aligned_by_path(tmp_path):
    a = _dump(tmp_path / "a.npz", [[1.0, 0.0], [0.0, 1.0]], [0, 1], ["x.avi", "y.avi"])
    b = _dump(tmp_path / "b.npz", [[0.0, 1.0], [1.0, 0.0]], [1, 0], ["y.avi", "x.avi"])
    result = fuse_weighted([a, b], (1, 1), softmax="none")
    np.testing.assert_allclose(result.scores, [[2, 0], [0, 2]])
    c = _dump(tmp_path / "c.npz", [[0.0, 1.0], [1.0, 0.0]], [1, 0], ["y.avi", "z.avi"])
    with pytest.raises(ValueError, match="different videos"):
        fuse_weighted([a, c], (1, 1))


def test_bad_inputs_are_named(tmp_path):
    np.savez(tmp_path / "bad.npz", logits=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="bad.npz.*'scores'"):
        load_scores(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="2 streams but 1 weights"):
        weighted_fusion([np.zeros((1, 2)), np.zeros((1, 2))], [1.0])


def test_presets_are_the_papers():
    assert FUSION_PRESETS["tsn"] == (1.0, 1.5)
    assert FUSION_PRESETS["tsn-warped"] == (1.0, 1.0, 0.5)
    assert FUSION_PRESETS["two-stream"] == (1.0, 1.0)


def test_svm_features_are_stacked_unit_vectors():
    p = [np.array([[0.6, 0.8]]), np.array([[3.0, 4.0]])]
    x = svm_fusion_features(p)
    np.testing.assert_allclose(x, [[0.6, 0.8, 0.6, 0.8]])


def _stream_scores(rng, labels, num_classes, confusable):
    """Noisy logits: the true class plus noise; classes in ``confusable`` get their evidence elsewhere."""
    logits = rng.normal(0, 1.0, (len(labels), 3, num_classes))
    for i, y in enumerate(labels):
        logits[i, :, (y + 1) % num_classes if y in confusable else y] += 2.0
    return logits


def test_fusion_at_least_as_good_as_either_stream(tmp_path):
    # Two complementary streams: each mislabels a different half of the classes in a
    # consistent way (so a learnt fusion can undo it) and is noisy everywhere.
    rng = np.random.default_rng(0)
    num_classes = 6
    dumps = {}
    for split, n in (("train", 300), ("test", 300)):
        labels = rng.integers(0, num_classes, n)
        paths = np.asarray([f"{split}/{i}.avi" for i in range(n)])
        dumps[split] = [
            _dump(tmp_path / f"{split}_rgb.npz", _stream_scores(rng, labels, num_classes, {0, 1, 2}), labels, paths),
            _dump(tmp_path / f"{split}_flow.npz", _stream_scores(rng, labels, num_classes, {3, 4}), labels, paths),
        ]
    avg = fuse_weighted(dumps["test"], (1, 1))
    svm = fuse_svm(dumps["train"], dumps["test"], C=1.0)
    assert svm.accuracy >= max(svm.stream_accuracy)
    assert svm.accuracy > avg.accuracy  # the SVM learns each stream's confusions, averaging cannot
    assert 0 < svm.mean_class_accuracy <= 1


def test_fuse_command_presets_weights_and_svm(tmp_path, capsys):
    import json

    from vidnets.cli import main

    _dump(tmp_path / "rgb.npz", [[0.6, 0.4], [0.2, 0.8]], [0, 1], ["a.avi", "b.avi"])
    _dump(tmp_path / "flow.npz", [[0.3, 0.7], [0.9, 0.1]], [0, 1], ["a.avi", "b.avi"])
    dumps = [str(tmp_path / "rgb.npz"), str(tmp_path / "flow.npz")]
    out = tmp_path / "fused.npz"
    assert (
        main(
            [
                "fuse",
                *dumps,
                "--preset",
                "tsn",
                "--softmax",
                "none",
                "--output",
                str(out),
                "--json",
                str(tmp_path / "m.json"),
            ]
        )
        == 0
    )
    # the output is a score dump (one view per video) whose softmax is the fused scores, normalised
    fused = load_scores(out)
    probabilities = np.exp(fused.logits[:, 0]) / np.exp(fused.logits[:, 0]).sum(1, keepdims=True)
    np.testing.assert_allclose(probabilities, np.array([[1.05, 1.45], [1.55, 0.95]]) / 2.5, rtol=1e-6)
    assert fused.paths == ["a.avi", "b.avi"] and fused.label.tolist() == [0, 1]
    assert json.loads((tmp_path / "m.json").read_text())["weights"] == [1.0, 1.5]
    # …so it fuses again like any stream: alone with weight 1 it keeps its predictions
    again = fuse_weighted([fused], [1.0])
    np.testing.assert_allclose(again.scores, probabilities, rtol=1e-6)
    assert main(["fuse", str(out), dumps[0], "--weights", "1", "1", "--output", str(tmp_path / "twice.npz")]) == 0
    assert load_scores(tmp_path / "twice.npz").logits.shape == (2, 1, 2)
    assert main(["fuse", *dumps, "--weights", "1", "0", "--softmax", "none", "--json", str(tmp_path / "w.json")]) == 0
    assert json.loads((tmp_path / "w.json").read_text())["accuracy"] == 1.0  # RGB alone is right on both
    assert main(["fuse", *dumps, "--weights", "1"]) == 2
    assert main(["fuse", *dumps, "--method", "svm"]) == 2
    svm_out = tmp_path / "svm.npz"
    assert main(["fuse", *dumps, "--method", "svm", "--train-dumps", *dumps, "--output", str(svm_out)]) == 0
    assert load_scores(svm_out).logits.shape == (2, 1, 2)  # SVM decision values, one view per video
    assert "fused accuracy" in capsys.readouterr().out


@pytest.mark.slow
def test_two_streams_in_miniature(tmp_path):
    """Two-Stream's claims on the motion-only synthetic set: the spatial stream (one RGB frame) is at
    chance, the temporal stream (stacked optical flow) is not, and fusion with TSN's 1 : 1.5 weights or
    with the SVM is at least as good as the better stream. Tiny nets, real flow, real score dumps."""
    import cv2
    import torch
    from torch import nn

    from vidnets.data.datasets import load_annotations
    from vidnets.data.synthetic import generate_dataset
    from vidnets.data.video import read_all_frames
    from vidnets.engine.evaluate import EvalResult
    from vidnets.engine.metrics import save_scores
    from vidnets.flow.extract import make_flow_fn
    from vidnets.flow.stacking import flow_stack

    root = generate_dataset(tmp_path / "synth", num_classes=4, videos_per_class=8, frames=12, size=32)
    flow = make_flow_fn("dis")
    length, num_views = 4, 3

    def views(path: str) -> tuple[torch.Tensor, torch.Tensor]:
        frames = read_all_frames(path)
        gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        starts = np.linspace(0, len(frames) - length - 1, num_views).round().astype(int)
        rgb = np.stack([frames[s + length // 2] for s in starts]).transpose(0, 3, 1, 2) / 255.0 - 0.5
        stacks = np.stack(
            [
                flow_stack(np.stack([flow(gray[s + k], gray[s + k + 1]).transpose(2, 0, 1) for k in range(length)]))
                for s in starts
            ]
        )
        return torch.tensor(rgb, dtype=torch.float32), torch.tensor(stacks, dtype=torch.float32)

    splits = {}
    for subset in ("train", "test"):
        records, classes = load_annotations("ucf101", root, subset=subset)
        pairs = [views(r.path) for r in records]
        splits[subset] = (
            [torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])],
            torch.tensor([r.label for r in records]),
            [r.path for r in records],
        )

    def small_net(channels: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, len(classes)),
        )

    for stream, name in enumerate(("rgb", "flow")):
        torch.manual_seed(0)
        x, y = splits["train"][0][stream], splits["train"][1]
        net = small_net(x.shape[2])
        optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
        for _ in range(50):  # every view of every training video, full batch
            loss = nn.functional.cross_entropy(net(x.flatten(0, 1)), y.repeat_interleave(num_views))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        for subset, (inputs, labels, paths) in splits.items():
            with torch.no_grad():
                logits = net(inputs[stream].flatten(0, 1)).reshape(len(labels), num_views, -1).numpy()
            save_scores(
                EvalResult(
                    index=np.arange(len(labels)),
                    label=labels.numpy(),
                    logits=logits,
                    num_views=np.full(len(labels), num_views),
                    paths=paths,
                    class_names=classes,
                ),
                tmp_path / f"{name}_{subset}.npz",
            )

    test = [load_scores(tmp_path / f"{s}_test.npz") for s in ("rgb", "flow")]
    train = [load_scores(tmp_path / f"{s}_train.npz") for s in ("rgb", "flow")]
    tsn = fuse_weighted(test, FUSION_PRESETS["tsn"])
    spatial, temporal = tsn.stream_accuracy
    assert temporal >= spatial + 0.4  # motion-only classes: flow wins
    assert tsn.accuracy >= max(spatial, temporal)
    assert fuse_svm(train, test).accuracy >= max(spatial, temporal)
