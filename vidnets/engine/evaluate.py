"""Testing: every view of every video scored in bounded memory, then clip and video metrics.

Data flow::

    test item clip (V, C, T, H, W)  (or (V, K, C, H, W) for TSN; V = clips × crops of the protocol)
        │  batch of N videos → (N, V, …) → folded into chunks of ``view_chunk`` views → model
        ▼
    per-view logits (N, V, classes) ──► clip accuracy   (every view judged on its own)
                                    └─► softmax, mean over views ──► video accuracy, mean class
                                                                     accuracy, confusion matrix

The per-view scores are written as a score dump (format, reader and writer in
:mod:`vidnets.engine.metrics`, which also computes every metric). Fusion of two streams
averages softmax scores over views first, then weights the streams (TSN: RGB 1 : flow 1.5).
Distributed testing scores a disjoint shard per process and gathers the rows on rank 0.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from vidnets.engine.metrics import confusion_matrix, mean_class_accuracy, save_scores, topk_accuracy, video_scores
from vidnets.utils.device import autocast
from vidnets.utils.io import atomic_open, atomic_write_json

__all__ = ["EvalResult", "score_views", "evaluate", "write_report", "format_metrics"]


# -- scoring -------------------------------------------------------------------------------------


@dataclass
class EvalResult:
    index: np.ndarray
    label: np.ndarray
    logits: np.ndarray  # (N, V, C), NaN-padded
    num_views: np.ndarray
    paths: list[str]
    class_names: list[str]
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    loss: float = float("nan")

    @property
    def num_classes(self) -> int:
        return self.logits.shape[-1]

    def metrics(self) -> dict:
        """Clip and video top-1/top-5, video mean class accuracy, chance level, video count."""
        n, v, c = self.logits.shape
        real = ~np.isnan(self.logits[..., 0])  # (N, V)
        clip_scores = self.logits[real]
        clip_labels = np.repeat(self.label[:, None], v, axis=1)[real]
        vid = video_scores(self.logits) if n else np.zeros((0, c))
        pred = vid.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
        return {
            "clip_top1": topk_accuracy(clip_scores, clip_labels, 1),
            "clip_top5": topk_accuracy(clip_scores, clip_labels, 5),
            "video_top1": topk_accuracy(vid, self.label, 1),
            "video_top5": topk_accuracy(vid, self.label, 5),
            "mean_class_accuracy": mean_class_accuracy(pred, self.label, c),
            "chance": 1.0 / c if c else float("nan"),
            "videos": int(n),
            "views": int(v),
            "skipped": len(self.skipped),
            "loss": self.loss,
            "seconds": self.seconds,
        }

    def confusion(self) -> np.ndarray:
        pred = video_scores(self.logits).argmax(axis=1)
        return confusion_matrix(pred, self.label, self.num_classes)


def _sample_ndim(model: torch.nn.Module) -> int | None:
    from vidnets.engine.checkpoint import unwrap_model

    shape = getattr(unwrap_model(model), "default_input", ())
    return len(shape) if shape else None


@torch.no_grad()
def score_views(
    model: torch.nn.Module,
    clips: torch.Tensor,
    *,
    view_chunk: int = 10,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """(N, V, …) clips → (N, V, classes) float32 logits, at most ``view_chunk`` views per forward."""
    n, v = clips.shape[:2]
    device = next(model.parameters()).device
    flat = clips.reshape(n * v, *clips.shape[2:])
    out = []
    for start in range(0, n * v, view_chunk):
        x = flat[start : start + view_chunk].to(device, non_blocking=True)
        if x.is_floating_point() is False:
            x = x.float()
        if channels_last and x.dim() == 5:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        with autocast(device, amp_dtype):
            out.append(model(x).float().cpu())
    return torch.cat(out).reshape(n, v, -1)


def evaluate(
    model: torch.nn.Module,
    loader: Iterable[dict],
    *,
    class_names: list[str],
    view_chunk: int = 10,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    progress: bool = False,
    sample_ndim: int | None = None,
    gather: bool = True,
) -> EvalResult:
    """Score every view of every video ``loader`` yields (batches from ``collate_skip_bad``).

    Batches hold ``clip`` as (N, V, …) (test protocol views) or (N, …) (one view: treated as V=1);
    which one is decided by the model's ``default_input`` rank, or ``sample_ndim`` if given.
    With several processes each scores its shard and rank 0 receives all rows (``gather``).
    """
    from tqdm.auto import tqdm

    from vidnets.engine import distributed

    was_training = model.training
    model.eval()
    sample_ndim = sample_ndim or _sample_ndim(model)
    rows: list[tuple[int, int, np.ndarray, str]] = []
    skipped: list[str] = []
    loss_sum, loss_n = 0.0, 0
    start = time.perf_counter()
    bar = tqdm(loader, desc="test", unit="batch", disable=not progress, dynamic_ncols=True)
    for batch in bar:
        skipped.extend(batch.get("skipped", []) or [])
        clips = batch.get("clip")
        if clips is None or len(clips) == 0:
            continue
        if sample_ndim is not None and clips.dim() == sample_ndim + 1:
            clips = clips.unsqueeze(1)  # a single view
        logits = score_views(model, clips, view_chunk=view_chunk, amp_dtype=amp_dtype, channels_last=channels_last)
        labels = torch.as_tensor(batch["label"])
        vid = logits.softmax(-1).mean(1)
        loss_sum += float(torch.nn.functional.nll_loss(vid.clamp_min(1e-12).log(), labels, reduction="sum"))
        loss_n += len(labels)
        indices = batch.get("index", range(len(labels)))
        paths = batch.get("path", [""] * len(labels))
        for i in range(len(labels)):
            rows.append((int(indices[i]), int(labels[i]), logits[i].numpy(), str(paths[i]) if paths else ""))
    model.train(was_training)
    seconds = time.perf_counter() - start
    if gather:
        parts = distributed.all_gather_objects((rows, skipped, loss_sum, loss_n))
        rows = [r for p in parts for r in p[0]]
        skipped = [s for p in parts for s in p[1]]
        loss_sum, loss_n = sum(p[2] for p in parts), sum(p[3] for p in parts)
    return _result_from_rows(rows, class_names, skipped, seconds, loss_sum / max(loss_n, 1))


def _result_from_rows(rows, class_names, skipped, seconds, loss) -> EvalResult:
    rows = sorted({r[0]: r for r in rows}.values(), key=lambda r: r[0])  # de-duplicate padded shards
    c = len(class_names) or (rows[0][2].shape[-1] if rows else 0)
    v = max((r[2].shape[0] for r in rows), default=1)
    logits = np.full((len(rows), v, c), np.nan, dtype=np.float32)
    for i, r in enumerate(rows):
        logits[i, : r[2].shape[0]] = r[2]
    return EvalResult(
        index=np.array([r[0] for r in rows], dtype=np.int64),
        label=np.array([r[1] for r in rows], dtype=np.int64),
        logits=logits,
        num_views=np.array([r[2].shape[0] for r in rows], dtype=np.int64),
        paths=[r[3] for r in rows],
        class_names=list(class_names),
        skipped=skipped,
        seconds=seconds,
        loss=loss,
    )


# -- reports -----------------------------------------------------------------------------------------


def write_report(result: EvalResult, out_dir: str | Path, *, prefix: str = "test", dump_scores: bool = True) -> dict:
    """Write metrics JSON, confusion matrix CSV + PNG and (optionally) the score dump; return the paths."""
    from vidnets.engine.plots import plot_confusion

    out_dir = Path(out_dir)
    metrics = result.metrics()
    paths = {
        "metrics": out_dir / f"{prefix}_metrics.json",
        "confusion_csv": out_dir / f"{prefix}_confusion.csv",
        "confusion_png": out_dir / f"{prefix}_confusion.png",
    }
    atomic_write_json(paths["metrics"], metrics)
    cm = result.confusion()
    with atomic_open(paths["confusion_csv"], "w") as f:
        writer = csv.writer(f)
        writer.writerow(["true \\ predicted", *result.class_names])
        for name, row in zip(result.class_names, cm):
            writer.writerow([name, *row.tolist()])
    plot_confusion(
        cm, result.class_names, paths["confusion_png"], title=f"{prefix}: video top-1 {metrics['video_top1']:.1%}"
    )
    if dump_scores:
        paths["scores"] = save_scores(result, out_dir / f"{prefix}_scores.npz")
    return {k: str(v) for k, v in paths.items()}


def format_metrics(metrics: dict) -> str:
    return (
        f"clip top-1 {metrics['clip_top1']:.1%}  top-5 {metrics['clip_top5']:.1%} | "
        f"video top-1 {metrics['video_top1']:.1%}  top-5 {metrics['video_top5']:.1%} | "
        f"mean class acc {metrics['mean_class_accuracy']:.1%} (chance {metrics['chance']:.1%}, "
        f"{metrics['videos']} videos × {metrics['views']} views)"
    )


def metrics_json(metrics: dict) -> str:
    return json.dumps(metrics, indent=2, sort_keys=True)
