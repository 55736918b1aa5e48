"""Linear SVM on fixed features: the C3D descriptor protocol (C3D §3.4) and Two-Stream SVM fusion.

C3D evaluates its video descriptors (fc6 averaged over 16-frame windows, L2-normalised) with a
linear SVM trained on the train split and scored on the test split of UCF101. Two-Stream fuses its
streams with "a multi-class linear SVM on stacked L2-normalised softmax scores" (Two-Stream §2).
Both are :func:`fit_linear_svm` + :func:`vidnets.engine.metrics.classification_metrics`; scikit-learn's ``LinearSVC``
(liblinear, one-vs-rest, squared hinge) does the work.

Feature files are the ones ``vidnets features`` writes: one file per video at
``DIR/<video path relative to the root>.<npy|npz|h5>`` (see :mod:`vidnets.methods.descriptors`).
Split lists have one video per line, ``relative/path.avi [label]``, as UCF101's
``trainlist01.txt`` / ``testlist01.txt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from vidnets.engine.metrics import classification_metrics

__all__ = ["SvmResult", "fit_linear_svm", "read_split_list", "load_features", "run_svm_protocol"]


@dataclass(frozen=True)
class SvmResult:
    accuracy: float  # fraction of test videos classified correctly
    mean_class_accuracy: float  # mean over classes of per-class recall (UCF101's usual number)
    num_train: int
    num_test: int
    predictions: np.ndarray  # (num_test,) predicted labels

    def summary(self) -> str:
        return (
            f"accuracy {100 * self.accuracy:.2f}%  mean class accuracy {100 * self.mean_class_accuracy:.2f}%"
            f"  ({self.num_train} train, {self.num_test} test videos)"
        )


def fit_linear_svm(features: np.ndarray, labels: np.ndarray, C: float = 1.0, seed: int = 0):
    """A one-vs-rest linear SVM (``sklearn.svm.LinearSVC``) fitted on ``features`` (N, D)."""
    from sklearn.svm import LinearSVC

    features, labels = np.asarray(features, dtype=np.float64), np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(f"SVM: expected features (N, D) and labels (N,), found {features.shape} and {labels.shape}")
    if len(np.unique(labels)) < 2:
        raise ValueError("SVM: the training set has fewer than two classes")
    return LinearSVC(C=C, max_iter=20000, random_state=seed).fit(features, labels)


def read_split_list(path: str | Path) -> list[tuple[str, int | None]]:
    """``[(relative video path, label or None), …]`` from a ``path [label]`` list (blank lines skipped)."""
    entries: list[tuple[str, int | None]] = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2:
            raise ValueError(f"{path}:{number}: expected 'video [label]', found {line!r}")
        try:
            label = int(parts[1]) if len(parts) == 2 else None
        except ValueError:
            raise ValueError(f"{path}:{number}: label must be an integer, found {parts[1]!r}") from None
        if label is not None and label < 0:
            raise ValueError(f"{path}:{number}: label must be >= 0 (UCF101 lists count from 1), found {label}")
        entries.append((parts[0], label))
    if not entries:
        raise ValueError(f"{path}: split list is empty")
    return entries


def load_features(
    feature_dir: str | Path,
    entries: Sequence[tuple[str, int | None]],
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Stack the video descriptors of ``entries`` from ``feature_dir``.

    Labels come from the feature files when all of them carry one (``vidnets features --list``
    stores it), else from the split list. Videos whose feature file is absent (skipped as bad
    during extraction) are left out and returned in the third element.
    """
    from vidnets.methods.descriptors import feature_file, read_feature_file

    rows, file_labels, list_labels, missing = [], [], [], []
    for video, label in entries:
        found = feature_file(feature_dir, video)
        if found is None:
            missing.append(video)
            continue
        vector, stored = read_feature_file(found)
        rows.append(vector)
        file_labels.append(stored)
        list_labels.append(label)
    if not rows:
        raise ValueError(f"{feature_dir}: none of the {len(entries)} listed videos has a feature file")
    if all(lbl is not None and lbl >= 0 for lbl in file_labels):
        labels = file_labels
    elif all(lbl is not None for lbl in list_labels):
        labels = list_labels
    else:
        raise ValueError(f"{feature_dir}: videos without a label in their feature file or in the split list")
    return np.stack(rows).astype(np.float64), np.asarray(labels), missing


def run_svm_protocol(
    feature_dir: str | Path, train_list: str | Path, test_list: str | Path, C: float = 1.0, seed: int = 0
) -> tuple[SvmResult, list[str]]:
    """Fit on the train split's descriptors, score the test split. Returns the result and missing videos."""
    x_train, y_train, miss_train = load_features(feature_dir, read_split_list(train_list))
    x_test, y_test, miss_test = load_features(feature_dir, read_split_list(test_list))
    svm = fit_linear_svm(x_train, y_train, C=C, seed=seed)
    predictions = svm.predict(x_test)
    accuracy, mean_class = classification_metrics(y_test, predictions)
    return SvmResult(accuracy, mean_class, len(y_train), len(y_test), predictions), miss_train + miss_test
