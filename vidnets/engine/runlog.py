"""What a training run writes while it goes: CSV logs and TensorBoard events (rank 0 only).

``log.csv``     step, epoch, loss, lr, clips/s, skipped steps so far — every ``train.log_every`` steps
``epochs.csv``  epoch, step, train loss/acc, skipped steps, test metrics — once per epoch

Skipped steps are optimizer steps whose loss or gradients were not finite (see ``Trainer``).
``tb/``         the same scalars for TensorBoard (``tensorboard --logdir runs/``)

On resume the CSV files are truncated back to the checkpoint's step, so curves have no duplicates.
"""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["RunLog"]

STEP_FIELDS = ["step", "epoch", "loss", "lr", "clips_per_s", "skipped_steps"]
EPOCH_FIELDS = ["epoch", "step", "train_loss", "train_acc", "skipped_steps", "test_loss", "test_clip_top1", "test_video_top1",
                "test_video_top5", "test_mean_class_accuracy", "chance", "seconds"]


class RunLog:
    def __init__(self, out_dir: str | Path, *, enabled: bool = True, tensorboard: bool = True, resume_step: int = 0,
                 extra_epoch_fields: list[str] | tuple = ()):
        """``extra_epoch_fields``: more ``epochs.csv`` columns (per-task test metrics of multi-task runs)."""
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self.epoch_fields = EPOCH_FIELDS[:-1] + list(extra_epoch_fields) + EPOCH_FIELDS[-1:]
        self._tb = None
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._truncate(self.out_dir / "log.csv", STEP_FIELDS, "step", resume_step)
        self._truncate(self.out_dir / "epochs.csv", self.epoch_fields, "step", resume_step)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.out_dir / "tb"), purge_step=resume_step or None)
            except ImportError:  # tensorboard is optional at run time
                self._tb = None

    @staticmethod
    def _truncate(path: Path, fields: list[str], key: str, upto: int) -> None:
        rows = []
        if path.is_file() and upto > 0:
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if float(r.get(key) or 0) <= upto]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows({k: r.get(k, "") for k in fields} for r in rows)

    def _append(self, name: str, fields: list[str], row: dict) -> None:
        with open(self.out_dir / name, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=fields, extrasaction="ignore").writerow(row)

    def step(self, step: int, epoch: int, loss: float, lr: float, clips_per_s: float, skipped_steps: int = 0) -> None:
        """``skipped_steps``: optimizer steps skipped for non-finite values since the run started."""
        if not self.enabled:
            return
        self._append("log.csv", STEP_FIELDS, {"step": step, "epoch": epoch, "loss": f"{loss:.6f}", "lr": f"{lr:.6g}",
                                              "clips_per_s": f"{clips_per_s:.3f}", "skipped_steps": skipped_steps})
        if self._tb:
            self._tb.add_scalar("train/loss", loss, step)
            self._tb.add_scalar("train/lr", lr, step)
            self._tb.add_scalar("train/clips_per_s", clips_per_s, step)
            self._tb.add_scalar("train/skipped_steps", skipped_steps, step)

    def epoch(self, row: dict) -> None:
        if not self.enabled:
            return
        self._append("epochs.csv", self.epoch_fields, row)
        if self._tb:
            for k, v in row.items():
                if k not in ("epoch", "step") and v not in ("", None):
                    self._tb.add_scalar(f"epoch/{k}", float(v), int(row["step"]))

    def close(self) -> None:
        if self._tb:
            self._tb.close()
            self._tb = None
