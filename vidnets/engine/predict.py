"""Run a trained model on a new video: top-k classes for the whole video, or a timeline.

Whole video: the checkpoint's own test protocol (its data recipe's views — e.g. 10 clips for C3D /
Res3D, 25 frames × 10 crops for TSN) is applied to the one video; the softmax is averaged over views.

Timeline (``--timeline``): the video is cut into windows of ``window`` seconds every ``hop`` seconds;
each window gets the same test protocol restricted to its frames, giving a probability per class
and window (text table, CSV and PNG).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from vidnets.engine.build import build_test_dataset, model_from_checkpoint, select_task
from vidnets.engine.config import load_config
from vidnets.engine.evaluate import score_views
from vidnets.engine.fastpath import prepare_for_inference
from vidnets.engine.train import uses_channels_last
from vidnets.utils.device import default_device

__all__ = ["Prediction", "Predictor", "WindowSampler", "timeline_windows", "format_topk"]


@dataclass(repr=False)
class Prediction:
    """Class probabilities of a video (``probs`` (C,)) or of each window of a timeline (``(W, C)``,
    with ``times`` and ``spans`` in seconds); ``files`` are the paths written (the timeline's PNG
    and CSV), ``recorded_metrics`` the checkpoint's own test metrics."""

    probs: np.ndarray  # (C,) for a video, (W, C) for a timeline
    class_names: list[str]
    times: np.ndarray | None = None  # window centres in seconds (timeline)
    spans: list[tuple[float, float]] | None = None
    video: str = ""
    k: int = 5  # how many classes the repr shows
    files: dict[str, Path] = field(default_factory=dict)
    recorded_metrics: dict = field(default_factory=dict)

    @property
    def is_timeline(self) -> bool:
        return self.probs.ndim == 2

    def mean(self) -> "Prediction":
        """A timeline's windows averaged into one whole-video prediction (itself for a video)."""
        if not self.is_timeline:
            return self
        return Prediction(
            self.probs.mean(0), self.class_names, video=self.video, k=self.k, recorded_metrics=self.recorded_metrics
        )

    def __repr__(self) -> str:
        best = ", ".join(f"{name} {p:.1%}" for name, p in self.mean().topk(self.k))
        windows = f", {len(self.spans or [])} windows" if self.is_timeline else ""
        files = "".join(f", {k}={str(v)!r}" for k, v in self.files.items())
        return f"Prediction({self.video or 'video'!r}: {best}{windows}{files})"

    def topk(self, k: int = 5, row: int | None = None) -> list[tuple[str, float]]:
        p = self.probs if row is None else self.probs[row]
        order = np.argsort(-p)[:k]
        return [(self.class_names[i], float(p[i])) for i in order]


class WindowSampler:
    """A test sampler confined to frames ``[start, start + length)`` of the video."""

    def __init__(self, base, start: int, length: int):
        self.base, self.start, self.length = base, start, length

    def __call__(self, num_frames: int, rng=None):
        sample = self.base(min(self.length, num_frames - self.start), rng)
        return replace(sample, indices=sample.indices + self.start)


def timeline_windows(num_frames: int, fps: float, window: float = 2.0, hop: float = 1.0) -> list[tuple[int, int]]:
    """(first frame, frame count) of each window of ``window`` seconds every ``hop`` seconds; a video
    shorter than one window is one window."""
    length = max(1, int(round(window * fps)))
    step = max(1, int(round(hop * fps)))
    starts = list(range(0, max(num_frames - length, 0) + 1, step)) or [0]
    return [(start, min(length, num_frames - start)) for start in starts]


class Predictor:
    """Loads a checkpoint once; :meth:`video` and :meth:`timeline` score files with its test protocol."""

    def __init__(self, checkpoint: str | Path, *, device: str = "auto", overrides: list[str] | tuple = ()):
        self.device = default_device(device)
        model, state = model_from_checkpoint(checkpoint, self.device)
        # multi-task checkpoints: the head (and class names) of multitask.eval_task
        self.model, self.cfg, self.class_names = select_task(model, state, load_config(state["config"], overrides))
        #: the test metrics the checkpoint was saved with (empty when it was never tested)
        self.recorded_metrics: dict = dict(state.get("metrics") or {})
        self.model = prepare_for_inference(
            self.model,
            device=self.device,
            precision=self.cfg.train.precision,
            channels_last=self.cfg.train.channels_last and uses_channels_last(model),
            copy=False,
        )

    def _dataset(self, path: str | Path):
        from vidnets.data.datasets import VideoRecord

        if not Path(path).exists():
            raise FileNotFoundError(f"video {path}: no such file")
        dataset, _ = build_test_dataset(self.cfg, [VideoRecord(str(path), 0)])
        return dataset

    def _probs(self, dataset) -> np.ndarray:
        item = dataset[0]  # test-mode datasets are deterministic
        if "error" in item:
            raise ValueError(item["error"] + self._flow_hint(item["path"]))
        logits = score_views(self.model, item["clip"].unsqueeze(0), view_chunk=self.cfg.test.view_chunk)
        return logits[0].softmax(-1).mean(0).numpy()

    def _flow_hint(self, video: str) -> str:
        """Flow models read precomputed flow: say how to make it for a new video."""
        flow_root = getattr(self.cfg.data, "flow_root", None)
        if not flow_root:
            return ""
        return (
            f" (this is a flow model: it reads precomputed flow from {flow_root}; run "
            f"`vidnets flow extract {video} --out {flow_root}` first)"
        )

    def video(self, path: str | Path) -> Prediction:
        return Prediction(self._probs(self._dataset(path)), self.class_names)

    def timeline(self, path: str | Path, window: float = 2.0, hop: float = 1.0) -> Prediction:
        from vidnets.data.video import probe

        dataset = self._dataset(path)
        if not hasattr(dataset, "sampler"):
            raise ValueError(f"--timeline: recipe {self.cfg.data.recipe} has no frame sampler to confine to windows")
        meta = probe(path)
        fps = meta.fps or 25.0
        base = dataset.sampler
        rows, spans = [], []
        for start, length in timeline_windows(meta.num_frames, fps, window, hop):
            dataset.sampler = WindowSampler(base, start, length)
            rows.append(self._probs(dataset))
            spans.append((start / fps, (start + length) / fps))
        times = np.array([(a + b) / 2 for a, b in spans])
        return Prediction(np.stack(rows), self.class_names, times=times, spans=spans)


def format_topk(pred: Prediction, k: int = 5, row: int | None = None) -> str:
    return "\n".join(f"{i + 1:>2}. {name:<30} {p:6.1%}" for i, (name, p) in enumerate(pred.topk(k, row)))


def format_timeline(pred: Prediction, k: int = 3) -> str:
    lines = []
    for i, (a, b) in enumerate(pred.spans or []):
        best = "  ".join(f"{name} {p:.0%}" for name, p in pred.topk(k, i))
        lines.append(f"{a:7.2f}–{b:7.2f} s  {best}")
    return "\n".join(lines)


def recorded_accuracy_line(metrics: dict) -> str:
    """One line on how well the checkpoint did on its own test set, so that predictions of a model
    at chance are not read as confident answers."""
    top1, chance = metrics.get("video_top1"), metrics.get("chance")
    if not isinstance(top1, (int, float)) or top1 != top1:
        return "checkpoint: no recorded test accuracy (run `vidnets test` on it to know how far to trust it)"
    line = f"checkpoint: test video top-1 {top1:.1%} on {metrics.get('videos', '?')} videos"
    if isinstance(chance, (int, float)):
        line += f" (chance {chance:.1%})"
        if top1 <= chance * 1.25:
            line += " — at or near chance: these predictions carry little information"
    return line


def write_timeline(pred: Prediction, out_png: str | Path, title: str = "") -> tuple[Path, Path]:
    """PNG plot and CSV (start, end, one column per class) of a timeline."""
    import csv

    from vidnets.engine.plots import plot_timeline
    from vidnets.utils.io import atomic_open

    out_png = Path(out_png)
    plot_timeline(pred.times, pred.probs, pred.class_names, out_png, title=title)
    out_csv = out_png.with_suffix(".csv")
    with atomic_open(out_csv, "w") as f:
        writer = csv.writer(f)
        writer.writerow(["start_s", "end_s", *pred.class_names])
        for (a, b), row in zip(pred.spans, pred.probs):
            writer.writerow([f"{a:.3f}", f"{b:.3f}", *(f"{p:.5f}" for p in row)])
    return out_png, out_csv
