"""Late fusion of per-stream test scores: weighted averaging or a linear SVM.

Each stream (RGB, flow, warped flow…) is tested on its own and its scores are dumped; fusion reads
the dumps and combines them per video::

    dump_rgb.npz  ─► (N,V,C) ─► softmax ─► mean over views ─► p_rgb  ─┐
    dump_flow.npz ─► (N,V,C) ─► softmax ─► mean over views ─► p_flow ─┼─► Σ w_s · p_s ─► argmax
                                                                      └─► [p/‖p‖ …] ─► linear SVM

* **Weighted averaging**: ``fused = Σ_s w_s · p_s`` with the weights exactly as given (not
  renormalised; argmax is unchanged by scaling). Two-Stream averages (1 : 1, Two-Stream §2);
  TSN uses RGB : flow = 1 : 1.5, and RGB : flow : warped flow = 1 : 1 : 0.5 with three modalities
  (TSN §3.4, ``eval_scores.py --score_weights 1 1.5``). Those are :data:`FUSION_PRESETS`.
* **SVM**: "a multi-class linear SVM on stacked L2-normalised softmax scores" (Two-Stream §2):
  each stream's softmax vector is L2-normalised, the streams are concatenated, and a LinearSVC
  is fitted on the *train* split's dumps and applied to the test split's.

Per-stream scores are reduced over views before fusion. ``softmax="before_mean"`` (default)
takes the softmax of every view and averages the probabilities over the real views, exactly as
``vidnets test`` computes video scores (:func:`vidnets.engine.metrics.video_scores`), so a
single stream fused with weight 1 reproduces its own video accuracy; this is Two-Stream's
"averaging softmax scores". ``"after_mean"`` averages the raw scores over views and then applies
softmax, as TSN's ``eval_scores.py`` does; ``"none"`` uses the scores as stored (dumps that
already hold probabilities).

Score dumps are read with :func:`vidnets.engine.metrics.load_scores` (the format, reader and
writer are there): the ``scores.npz`` that ``vidnets test`` writes, or any ``.npz`` with ``scores``
and ``labels`` (``-1`` where unknown), and ``paths`` or ``index`` to align streams whose rows come
in different orders (without either, rows must correspond).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vidnets.engine.metrics import ScoreDump, SoftmaxMode, classification_metrics, video_scores
from vidnets.methods.svm import fit_linear_svm

__all__ = [
    "FUSION_PRESETS",
    "align_dumps",
    "weighted_fusion",
    "svm_fusion_features",
    "FusionResult",
    "fuse_weighted",
    "fuse_svm",
    "fused_dump",
]

FUSION_PRESETS: dict[str, tuple[float, ...]] = {
    "two-stream": (1.0, 1.0),  # Two-Stream §2: average spatial and temporal softmax scores
    "tsn": (1.0, 1.5),  # TSN §3.4: RGB 1, flow 1.5
    "tsn-warped": (1.0, 1.0, 0.5),  # TSN §3.4: RGB 1, flow 1, warped flow 0.5
}


def align_dumps(dumps: Sequence[ScoreDump]) -> list[ScoreDump]:
    """Reorder every dump's rows to the first dump's video order (by ``paths``/``index``).

    Raises ``ValueError`` when the streams do not cover the same videos or disagree on a label.
    """
    first = dumps[0]
    aligned = [first]
    for dump in dumps[1:]:
        if first.keys is None or dump.keys is None:
            if len(dump) != len(first):
                raise ValueError(
                    f"{dump.source}: {len(dump)} rows, {first.source}: {len(first)}; "
                    "without 'paths'/'index' the dumps must have the same rows"
                )
            order = np.arange(len(dump))
        else:
            position = {k: i for i, k in enumerate(dump.keys.tolist())}
            lost = [k for k in first.keys.tolist() if k not in position]
            if lost or len(position) != len(first):
                raise ValueError(
                    f"{dump.source} and {first.source} cover different videos (e.g. {lost[:3] or 'extra rows'})"
                )
            order = np.asarray([position[k] for k in first.keys.tolist()])
        reordered = ScoreDump(dump.logits[order], dump.label[order], first.keys, source=dump.source)
        known = (first.label >= 0) & (reordered.label >= 0)
        if np.any(first.label[known] != reordered.label[known]):
            raise ValueError(f"{dump.source} and {first.source} disagree on the labels of the same videos")
        aligned.append(reordered)
    return aligned


def weighted_fusion(stream_scores: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """``Σ_s weights[s] · stream_scores[s]``, weights applied exactly as given."""
    if len(stream_scores) != len(weights):
        raise ValueError(f"fusion: {len(stream_scores)} streams but {len(weights)} weights")
    shapes = {s.shape for s in stream_scores}
    if len(shapes) != 1:
        raise ValueError(f"fusion: streams have different shapes {sorted(shapes)}")
    return sum(float(w) * np.asarray(s, dtype=np.float64) for s, w in zip(stream_scores, weights))


def svm_fusion_features(stream_probs: Sequence[np.ndarray]) -> np.ndarray:
    """Stack each stream's L2-normalised softmax vector: ``(N, S·C)``."""
    normalised = [p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12) for p in stream_probs]
    return np.concatenate(normalised, axis=1)


@dataclass(frozen=True)
class FusionResult:
    scores: np.ndarray  # (N, C) fused scores (weighted) or SVM decision values (-inf: unseen class)
    predictions: np.ndarray  # (N,)
    labels: np.ndarray  # (N,)
    keys: np.ndarray | None
    accuracy: float
    mean_class_accuracy: float
    stream_accuracy: tuple[float, ...]  # each stream alone, for comparison

    def summary(self) -> str:
        alone = ", ".join(f"{100 * a:.2f}%" for a in self.stream_accuracy)
        return (
            f"fused accuracy {100 * self.accuracy:.2f}%  mean class accuracy {100 * self.mean_class_accuracy:.2f}%"
            f"  (streams alone: {alone}; {len(self.labels)} videos)"
        )


def _result(scores, predictions, dumps, probs) -> FusionResult:
    labels = dumps[0].label
    known = labels >= 0
    if not known.any():
        return FusionResult(scores, predictions, labels, dumps[0].keys, float("nan"), float("nan"), ())
    accuracy, mean_class = classification_metrics(labels[known], predictions[known])
    alone = tuple(float((p.argmax(1)[known] == labels[known]).mean()) for p in probs)
    return FusionResult(scores, predictions, labels, dumps[0].keys, accuracy, mean_class, alone)


def fuse_weighted(
    dumps: Sequence[ScoreDump], weights: Sequence[float], softmax: SoftmaxMode = "before_mean"
) -> FusionResult:
    """Weighted-average fusion of aligned score dumps (one per stream)."""
    dumps = align_dumps(dumps)
    probs = [video_scores(d.logits, softmax) for d in dumps]
    fused = weighted_fusion(probs, weights)
    return _result(fused, fused.argmax(axis=1), dumps, probs)


def fuse_svm(
    train_dumps: Sequence[ScoreDump],
    test_dumps: Sequence[ScoreDump],
    C: float = 1.0,
    softmax: SoftmaxMode = "before_mean",
    seed: int = 0,
) -> FusionResult:
    """Two-Stream's SVM fusion: fit on the train split's dumps, predict the test split's."""
    if len(train_dumps) != len(test_dumps):
        raise ValueError(f"SVM fusion: {len(train_dumps)} train dumps but {len(test_dumps)} test dumps")
    train_dumps, test_dumps = align_dumps(train_dumps), align_dumps(test_dumps)
    if np.any(train_dumps[0].label < 0):
        raise ValueError(f"SVM fusion: {train_dumps[0].source} has videos without labels")
    train_x = svm_fusion_features([video_scores(d.logits, softmax) for d in train_dumps])
    test_probs = [video_scores(d.logits, softmax) for d in test_dumps]
    svm = fit_linear_svm(train_x, train_dumps[0].label, C=C, seed=seed)
    decision = svm.decision_function(svm_fusion_features(test_probs))
    if decision.ndim == 1:  # binary LinearSVC returns one column
        decision = np.stack([-decision, decision], axis=1)
    # one column per class, as the other fusions; classes absent from the train split never win
    scores = np.full((len(decision), test_probs[0].shape[1]), -np.inf)
    scores[:, svm.classes_] = decision
    return _result(scores, scores.argmax(axis=1), test_dumps, test_probs)


def fused_dump(result: FusionResult, first: ScoreDump, probabilities: bool) -> ScoreDump:
    """``result`` as a score dump (one view per video, in ``first``'s rows), so that a fused file
    reads back with :func:`~vidnets.engine.metrics.load_scores` and fuses again like any stream.

    With ``probabilities`` (weighted fusion) the logits are the log of the fused scores normalised
    to sum to 1, so the softmax every fusion applies gives those probabilities back exactly; SVM
    decision values are stored as they are (their softmax keeps the same argmax)."""
    scores = np.asarray(result.scores, dtype=np.float64)
    if probabilities:
        with np.errstate(divide="ignore"):
            scores = np.log(scores / scores.sum(axis=1, keepdims=True))
    index = first.index if first.index is not None else np.arange(len(scores))
    return ScoreDump(
        logits=scores[:, None, :].astype(np.float32),
        label=result.labels,
        index=index,
        num_views=np.ones(len(scores), dtype=np.int64),
        paths=list(first.paths),
        class_names=list(first.class_names),
    )
