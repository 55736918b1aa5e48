"""What a training run writes while it goes: CSV logs and TensorBoard events (rank 0 only).

``log.csv``     step, epoch, loss, lr, clips/s, skipped steps so far — every ``train.log_every`` steps
``epochs.csv``  epoch, step, train loss/acc, skipped steps, test metrics — once per epoch

``tb/``         the same scalars for TensorBoard (``tensorboard --logdir runs/``)

Skipped steps are optimizer steps whose loss or gradients were not finite (see ``Trainer``).

The CSV files are only ever appended to. A fresh run starts them with their header (written
atomically); a resumed run appends below what is there, so a crash at any point never loses a row
that was written. Rows a crashed run logged after its last checkpoint stay in the file and are
followed by the resumed run's rows for the same steps; readers keep the last row of each step
(:func:`vidnets.engine.plots.read_csv` with ``unique``).

:func:`check_run_folder` is what keeps a new run from replacing an old one: a folder that already
holds a run (``last.pt`` or ``epochs.csv``) is refused unless the run resumes it or overwriting
was asked for.
"""

from __future__ import annotations

import csv
from pathlib import Path

from vidnets.utils.io import atomic_write_text

__all__ = ["RunLog", "RunFolderError", "check_run_folder", "RUN_MARKERS"]

#: files whose presence means a folder already holds a run
RUN_MARKERS = ("last.pt", "epochs.csv")


class RunFolderError(ValueError):
    """A new run would replace the results of an earlier run in the same folder."""


def check_run_folder(out_dir: str | Path, *, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse to start a fresh run in a folder that holds one, unless resuming or ``overwrite``."""
    out_dir = Path(out_dir)
    found = [name for name in RUN_MARKERS if (out_dir / name).exists()]
    if found and not resume and not overwrite:
        raise RunFolderError(
            f"{out_dir} already holds a run ({', '.join(found)}); continue it with --resume auto, "
            "replace it with --overwrite, or choose another --out"
        )


STEP_FIELDS = ["step", "epoch", "loss", "lr", "clips_per_s", "skipped_steps"]
EPOCH_FIELDS = [
    "epoch",
    "step",
    "train_loss",
    "train_acc",
    "skipped_steps",
    "test_loss",
    "test_clip_top1",
    "test_video_top1",
    "test_video_top5",
    "test_mean_class_accuracy",
    "chance",
    "seconds",
]


class RunLog:
    def __init__(
        self,
        out_dir: str | Path,
        *,
        enabled: bool = True,
        tensorboard: bool = True,
        resume_step: int = 0,
        extra_epoch_fields: list[str] | tuple = (),
    ):
        """``extra_epoch_fields``: more ``epochs.csv`` columns (per-task test metrics of multi-task runs)."""
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self.epoch_fields = EPOCH_FIELDS[:-1] + list(extra_epoch_fields) + EPOCH_FIELDS[-1:]
        self._tb = None
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.step_fields = self._start(self.out_dir / "log.csv", STEP_FIELDS, resume_step)
        self.epoch_fields = self._start(self.out_dir / "epochs.csv", self.epoch_fields, resume_step)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.out_dir / "tb"), purge_step=resume_step or None)
            except ImportError:  # tensorboard is optional at run time
                self._tb = None

    @staticmethod
    def _start(path: Path, fields: list[str], resume_step: int) -> list[str]:
        """Begin a log file: a resumed run keeps the file and its columns; a fresh one gets a new header.

        Returns the columns rows are appended with."""
        if resume_step > 0 and path.is_file():
            with open(path, newline="") as f:
                header = next(csv.reader(f), None)
            if header:
                return header
        atomic_write_text(path, ",".join(fields) + "\n")
        return list(fields)

    def _append(self, name: str, fields: list[str], row: dict) -> None:
        with open(self.out_dir / name, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=fields, extrasaction="ignore").writerow(row)

    def step(self, step: int, epoch: int, loss: float, lr: float, clips_per_s: float, skipped_steps: int = 0) -> None:
        """``skipped_steps``: optimizer steps skipped for non-finite values since the run started."""
        if not self.enabled:
            return
        self._append(
            "log.csv",
            self.step_fields,
            {
                "step": step,
                "epoch": epoch,
                "loss": f"{loss:.6f}",
                "lr": f"{lr:.6g}",
                "clips_per_s": f"{clips_per_s:.3f}",
                "skipped_steps": skipped_steps,
            },
        )
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
