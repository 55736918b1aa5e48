"""PNG figures of a run (matplotlib, Agg backend: no display needed).

- :func:`plot_curves`: training loss per logged step, and train / test accuracy per epoch, from
  the run's ``log.csv`` and ``epochs.csv`` (:mod:`vidnets.engine.runlog`).
- :func:`plot_confusion`: a confusion matrix, rows = ground truth.
- :func:`plot_timeline`: per-window class probabilities over a long video (``vidnets predict --timeline``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from vidnets.utils.io import atomic_open

__all__ = ["plot_curves", "plot_confusion", "plot_timeline", "read_csv"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def read_csv(path: str | Path, unique: str | None = None) -> list[dict]:
    """Rows of a CSV file ([] if absent). ``unique``: keep only the last row of each value of that
    column (a resumed run's logs repeat the steps its crashed predecessor logged after the checkpoint)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if unique is None:
        return rows
    last = {r.get(unique): i for i, r in enumerate(rows)}
    return [r for i, r in enumerate(rows) if last[r.get(unique)] == i]


def _column(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for i, r in enumerate(rows):
        value = r.get(key, "")
        if value not in ("", None, "nan"):
            xs.append(i)
            ys.append(float(value))
    return np.array(xs), np.array(ys)


def plot_curves(run_dir: str | Path, path: str | Path | None = None, title: str = "") -> Path | None:
    """Loss (per logged step) and accuracy (per epoch) curves of the run in ``run_dir``."""
    run_dir = Path(run_dir)
    steps, epochs = read_csv(run_dir / "log.csv", unique="step"), read_csv(run_dir / "epochs.csv", unique="step")
    if not steps and not epochs:
        return None
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    if steps:
        x = np.array([float(r["step"]) for r in steps])
        loss = np.array([float(r["loss"]) for r in steps])
        ax_loss.plot(x, loss, lw=1, label="train loss (logged steps)")
    if epochs:
        ex = np.array([float(r["step"]) for r in epochs])
        _, test_loss = _column(epochs, "test_loss")
        idx, _ = _column(epochs, "test_loss")
        if len(idx):
            ax_loss.plot(ex[idx], test_loss, "o-", label="test loss (video)")
    ax_loss.set_xlabel("optimizer step")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.set_title("loss")
    if ax_loss.get_legend_handles_labels()[0]:  # a run cut before its first logged step has nothing yet
        ax_loss.legend(fontsize=8)
    if epochs:
        ep = np.array([float(r["epoch"]) for r in epochs])
        for key, style in (("train_acc", "s-"), ("test_clip_top1", "o--"), ("test_video_top1", "o-")):
            idx, ys = _column(epochs, key)
            if len(idx):
                ax_acc.plot(ep[idx], ys, style, label=key.replace("_", " "))
        idx, chance = _column(epochs, "chance")
        if len(idx):
            ax_acc.axhline(chance[0], color="grey", ls=":", label="chance")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1.02)
    ax_acc.set_title("accuracy")
    if ax_acc.get_legend_handles_labels()[0]:  # no finished epoch yet (a run cut by max_iters)
        ax_acc.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path or run_dir / "curves.png")


def plot_confusion(cm: np.ndarray, class_names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix with counts in the cells when it is small enough to read."""
    plt = _pyplot()
    n = len(class_names)
    size = min(2.5 + 0.35 * n, 20)
    fig, ax = plt.subplots(figsize=(size, size))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        ax.set_xticks(range(n), class_names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), class_names, fontsize=7)
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        str(cm[i, j]),
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def plot_timeline(
    times: np.ndarray, probs: np.ndarray, class_names: Sequence[str], path: str | Path, top: int = 5, title: str = ""
) -> Path:
    """Probability over time of the ``top`` classes with the highest mean probability."""
    plt = _pyplot()
    order = np.argsort(-probs.mean(axis=0))[:top]
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for c in order:
        ax.plot(times, probs[:, c], marker=".", label=class_names[c])
    ax.set_xlabel("window centre (s)")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title or "prediction over time")
    return _save(fig, path)
