"""Metrics on score arrays, and the score-dump format with its reader and writer.

Every accuracy vidnets reports comes from here: ``vidnets test`` and training (via
:mod:`vidnets.engine.evaluate`), fusion and the SVM protocols (:mod:`vidnets.methods`).

Score dump (``<prefix>_scores.npz``, written by ``vidnets train`` / ``vidnets test``, read by
``vidnets fuse``; ``numpy.load(path)``):

=============== ============== ==============================================================
key             dtype, shape   meaning
=============== ============== ==============================================================
``index``       int64 (N,)     dataset index of each video (rows are sorted by it)
``label``       int64 (N,)     ground-truth class (-1: unknown)
``logits``      float32 (N,V,C) per-view logits (pre-softmax); rows with fewer views are NaN-padded
``num_views``   int64 (N,)     how many views of each row are real
``paths``       str (N,)       video path
``class_names`` str (C,)       class names in label order
=============== ============== ==============================================================

The reader also takes dumps from elsewhere that hold ``scores`` (N, V, C) or (N, C) and
``labels``, with ``paths`` or ``index`` optional.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from vidnets.utils.io import atomic_open

__all__ = [
    "topk_accuracy",
    "confusion_matrix",
    "mean_class_accuracy",
    "classification_metrics",
    "softmax",
    "video_scores",
    "SoftmaxMode",
    "ScoreDump",
    "save_scores",
    "load_scores",
]

SoftmaxMode = Literal["after_mean", "before_mean", "none"]


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Fraction of rows whose label is among the ``k`` highest scores (ties broken by order)."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]`` (rows: ground truth); all zeros when no video was scored."""
    if len(labels) == 0:  # every test video skipped: report empty metrics instead of crashing the run
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    return sk_confusion_matrix(labels, predictions, labels=np.arange(num_classes))


def mean_class_accuracy(predictions: np.ndarray, labels: np.ndarray, num_classes: int | None = None) -> float:
    """Mean over the classes present in ``labels`` of each class's recall (UCF101's usual number);
    ``num_classes`` is accepted for symmetry with :func:`confusion_matrix` and not needed."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    correct = predictions == labels
    return float(np.mean([correct[labels == c].mean() for c in np.unique(labels)]))


def classification_metrics(labels: np.ndarray, predictions: np.ndarray) -> tuple[float, float]:
    """``(accuracy, mean class accuracy)`` of non-empty, equally long label and prediction arrays."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if len(labels) == 0 or labels.shape != predictions.shape:
        raise ValueError(
            f"metrics: expected equal, non-empty label and prediction arrays, found "
            f"{labels.shape} and {predictions.shape}"
        )
    return float((labels == predictions).mean()), mean_class_accuracy(predictions, labels)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``; NaN-padded rows stay NaN."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        z = logits - np.nanmax(logits, axis=axis, keepdims=True)
        e = np.exp(z)
        return e / np.sum(e, axis=axis, keepdims=True)


def video_scores(logits: np.ndarray, softmax_mode: SoftmaxMode = "before_mean") -> np.ndarray:
    """``(N, V, C)`` per-view scores (or ``(N, C)``) → one ``(N, C)`` vector per video, over the real
    (non-NaN) views.

    ``before_mean`` (what ``vidnets test`` reports): softmax each view, average the probabilities;
    ``after_mean`` (TSN's ``eval_scores.py``): average, then softmax; ``none``: average as stored.
    """
    if softmax_mode not in ("after_mean", "before_mean", "none"):
        raise ValueError(f"softmax: expected after_mean|before_mean|none, found {softmax_mode!r}")
    scores = softmax(logits, axis=-1) if softmax_mode == "before_mean" else np.asarray(logits)
    if scores.ndim == 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            scores = np.nanmean(scores, axis=1)
    return softmax(scores, axis=-1) if softmax_mode == "after_mean" else scores


@dataclass
class ScoreDump:
    """A score dump as read back (field names as the file's keys)."""

    logits: np.ndarray  # (N, V, C) NaN-padded, or (N, C)
    label: np.ndarray  # (N,)
    keys: np.ndarray | None = None  # (N,) what aligns streams: paths, else dataset indices; None: neither
    index: np.ndarray | None = None
    num_views: np.ndarray | None = None
    paths: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.label)


def save_scores(scores: Any, path: str | Path) -> Path:
    """Write the score dump of ``scores`` (an :class:`~vidnets.engine.evaluate.EvalResult` or a
    :class:`ScoreDump`: ``index, label, logits, num_views, paths, class_names``), atomically."""
    path = Path(path)
    with atomic_open(path, "wb") as f:
        np.savez_compressed(
            f,
            index=scores.index,
            label=scores.label,
            logits=scores.logits,
            num_views=scores.num_views,
            paths=np.array(scores.paths, dtype=str),
            class_names=np.array(scores.class_names, dtype=str),
        )
    return path


def load_scores(path: str | Path) -> ScoreDump:
    """Read and check a score dump; a missing file is FileNotFoundError, a damaged one (or one holding
    pickled objects) a ValueError naming it."""
    try:
        return _load_scores(Path(path))
    except (OSError, EOFError, ValueError, KeyError) as e:
        if isinstance(e, FileNotFoundError) or str(path) in str(e):
            raise
        raise ValueError(f"score dump {path}: unreadable ({' '.join(str(e).split())[:200]})") from None


def _load_scores(path: Path) -> ScoreDump:
    if not path.is_file():
        raise FileNotFoundError(f"score dump {path}: no such file")
    with np.load(path, allow_pickle=False) as data:
        names = set(data.files)
        score_key = next((k for k in ("logits", "scores") if k in names), None)
        label_key = next((k for k in ("label", "labels") if k in names), None)
        if score_key is None or label_key is None:
            raise ValueError(
                f"score dump {path}: expected arrays 'logits' (or 'scores') and 'label' (or 'labels'), "
                f"found {sorted(names)}"
            )
        arrays = {k: np.asarray(data[k]) for k in names}
    logits = arrays[score_key].astype(np.float64)
    label = arrays[label_key].astype(np.int64)
    if logits.ndim not in (2, 3) or len(logits) != len(label):
        raise ValueError(
            f"score dump {path}: expected scores (N,V,C) or (N,C) with N = len(labels) = {len(label)}, "
            f"found {logits.shape}"
        )
    keys = next((arrays[k] for k in ("paths", "index") if k in arrays and len(arrays[k])), None)
    if keys is not None and len(keys) != len(label):
        raise ValueError(f"score dump {path}: {len(keys)} paths/index entries for {len(label)} rows")
    return ScoreDump(
        logits=logits,
        label=label,
        keys=keys,
        index=arrays.get("index"),
        num_views=arrays.get("num_views"),
        paths=[str(p) for p in arrays.get("paths", [])],
        class_names=[str(c) for c in arrays.get("class_names", [])],
        source=str(path),
    )
