"""The training loop: SGD with the papers' schedules, mixed precision, accumulation, resume, DDP.

One optimizer step::

    accumulate × batch ──► autocast(bf16 on CPUs with native bf16 / fp16 or bf16 on CUDA)
                           forward, cross-entropy / accumulate, backward (GradScaler for fp16)
                       ──► unscale, clip global grad norm ──► SGD step ──► lr schedule step

What a step optimises is an :class:`Objective`: by default cross-entropy on one head. The papers'
methods plug in their own (:mod:`vidnets.methods`): multi-task runs (``multitask.tasks``;
Two-Stream §4) draw mixed batches and sum each head's loss over its own dataset's samples, and
T3D's supervision transfer trains a student on a binary match task. They all inherit mixed
precision, DDP, accumulation, schedules, logging, checkpoints and exact resume from this loop. A
multi-task run tests each task on its own test set.

Exact resume. Each epoch reseeds torch / NumPy / Python from ``(seed, epoch, rank)`` and shuffles
with a DistributedSampler seeded by ``(seed, epoch)``; DataLoader workers get seeds from a
generator seeded the same way. So the data order, augmentations and dropout masks of an epoch do not
depend on what ran before it, and a run resumed at an epoch boundary ends bit-identical to an
uninterrupted one. A checkpoint taken mid-epoch records how many batches of the epoch were done and
the RNG states; resuming skips those batches (without loading them) and restores the states. The
random draws of a training item (clip position, crop, flip) come from ``(seed, epoch, index)``
(:class:`SeededItems`), not from the state of whichever process or worker loads it, so a
mid-epoch resume is exact with any number of DataLoader workers too.

Steps that cannot learn stop the run. A step whose loss or gradients are not finite is skipped
and counted (``skipped_steps`` in ``log.csv`` / ``epochs.csv``, TensorBoard and the progress
bar); more than :data:`MAX_SKIPPED_FRACTION` of a run's steps skipped, an epoch without one
readable clip, or weights that became non-finite raise :class:`TrainingError`, and no checkpoint
is written with non-finite weights.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from vidnets.engine import distributed
from vidnets.engine.checkpoint import read_checkpoint, save_checkpoint, seed_everything, set_rng_state, unwrap_model
from vidnets.engine.config import Config, config_to_dict, dump_config, eval_task
from vidnets.engine.fastpath import prepare_model
from vidnets.engine.schedules import build_scheduler
from vidnets.models.base import TaskView
from vidnets.utils.device import autocast, autocast_dtype
from vidnets.utils.io import atomic_write_text

logger = logging.getLogger(__name__)

__all__ = [
    "Trainer",
    "Objective",
    "FitResult",
    "TrainingError",
    "ResumableSampler",
    "SeededItems",
    "build_optimizer",
    "uses_channels_last",
    "seed_worker",
    "MAX_SKIPPED_FRACTION",
]

#: a run stops when more than this share of its optimizer steps had non-finite loss or gradients
MAX_SKIPPED_FRACTION = 0.01


class TrainingError(RuntimeError):
    """The run cannot learn (no readable clip, non-finite values); the message says what to try."""


class SeededItems(Dataset):
    """``dataset`` whose item ``i`` draws its random numbers from ``(seed, epoch, i)``.

    The datasets draw clip positions, crops and flips from torch's RNG (``worker_rng``); seeding it
    per item makes an item's augmentation independent of which worker loads it and of what that
    worker loaded before, which is what makes a mid-epoch resume with workers exact. The caller's
    RNG state is left as it was (``num_workers=0`` loads in the training process).
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:  # task_ids, records, ... of the wrapped dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int) -> Any:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_epoch_seed(self.seed, self.epoch, 0) ^ (int(index) * 2654435761 % 2**61))
            return self.dataset[index]


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start part-way through an epoch (``skip`` samples of this rank)."""

    def __init__(self, dataset: Dataset, **kwargs: Any):
        super().__init__(dataset, **kwargs)
        self.skip = 0

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.skip :])

    def __len__(self) -> int:
        return max(super().__len__() - self.skip, 0)


def seed_worker(worker_id: int) -> None:
    """DataLoader worker init: NumPy and ``random`` follow the worker's torch seed."""
    import random

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def uses_channels_last(model: nn.Module) -> bool:
    """channels_last_3d pays off for 3D convolutions on (N, C, T, H, W) inputs (environment.md: 1.3–1.5×)."""
    inner = unwrap_model(model)
    return len(getattr(inner, "default_input", ())) == 4 and any(isinstance(m, nn.Conv3d) for m in inner.modules())


def build_optimizer(
    model: nn.Module, lr: float, momentum: float, weight_decay: float, nesterov: bool = False
) -> torch.optim.SGD:
    """SGD; a model's ``get_optim_policies()`` (TSN) gives per-group ``lr_mult`` / ``decay_mult``."""
    inner = unwrap_model(model)
    if hasattr(inner, "get_optim_policies"):
        groups = []
        for policy in inner.get_optim_policies():
            params = [p for p in policy["params"] if p.requires_grad]
            if not params:
                continue
            groups.append(
                {
                    "params": params,
                    "lr": lr * policy.get("lr_mult", 1.0),
                    "weight_decay": weight_decay * policy.get("decay_mult", 1.0),
                    "name": policy.get("name", ""),
                }
            )
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


class Objective:
    """What the Trainer optimises: how an epoch draws samples and what one batch's loss is.

    The default is the single-task classifier: shuffled samples, cross-entropy on the model's
    logits. A method overrides only what differs (:class:`vidnets.methods.multitask.MultiTaskObjective`,
    :class:`vidnets.methods.transfer.TransferObjective`).
    """

    def sampler(self, dataset: Dataset, cfg: Config, info: distributed.DistInfo) -> Any:
        """The epoch's sampler; it must offer ``set_epoch(e)``, ``skip`` and ``len`` (this rank's share)."""
        return ResumableSampler(
            dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.train.seed, drop_last=True
        )

    def forward(self, model: nn.Module, clips: torch.Tensor, batch: dict) -> Any:
        """The model's output for a batch (runs under autocast)."""
        return model(clips)

    def loss(self, outputs: Any, batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, int]:
        """``(loss, correct, samples)`` of a batch, computed in fp32 outside autocast."""
        y = torch.as_tensor(batch["label"]).to(device, non_blocking=True)
        loss = nn.functional.cross_entropy(outputs.float(), y)
        return loss, (outputs.detach().argmax(1) == y).sum(), len(y)


@dataclass
class FitResult:
    epochs: int
    step: int
    history: list[dict] = field(default_factory=list)
    test_metrics: dict = field(default_factory=dict)
    checkpoint: str = ""
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)
    steps_run: int = 0  # optimizer steps taken by this call (0: a resumed run that had finished)


def _default_collate(items: list[dict]) -> dict:
    from torch.utils.data import default_collate

    return default_collate(items)


class Trainer:
    """Train ``model`` on ``train_set`` (items ``{"clip": Tensor, "label": int, ...}``) as ``cfg`` says.

    ``test_set`` (test-protocol items, clips ``(V, …)``) is scored every ``train.eval_every`` epochs.
    ``class_names``, ``model_name`` and ``model_kwargs`` go into checkpoints so ``vidnets test`` and
    ``vidnets predict`` can rebuild the model. Checkpoints and logs are written by rank 0 only.

    Multi-task (``cfg.multitask.tasks``): ``train_set`` is a :class:`MultiTaskDataset` in head
    order, ``test_set`` and ``class_names`` are ``{task: …}`` mappings, and the model returns
    ``{task: logits}``.
    """

    def __init__(
        self,
        model: nn.Module,
        train_set: Dataset,
        cfg: Config,
        *,
        test_set: Dataset | dict[str, Dataset] | None = None,
        class_names: list[str] | dict[str, list[str]] | None = None,
        model_name: str = "",
        model_kwargs: dict | None = None,
        collate_fn: Callable | None = None,
        dist_info: distributed.DistInfo | None = None,
        out_dir: str | Path | None = None,
        objective: Objective | None = None,
    ):
        self.cfg = cfg
        self.info = dist_info or distributed.setup(cfg.train.device)
        self.device = self.info.device
        self.out_dir = Path(out_dir or cfg.train.out_dir)
        self.train_set, self.test_set = SeededItems(train_set, cfg.train.seed), test_set
        self._set_tasks(class_names, train_set, objective)
        self.model_name, self.model_kwargs = model_name, dict(model_kwargs or {})
        self.collate_fn = collate_fn or _default_collate
        self.objective = objective or Objective()
        self._set_determinism()
        self._set_model(model)
        self._set_schedule(train_set)
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps done
        self.batch_in_epoch = 0  # batches of the current epoch done (mid-epoch checkpoints)
        self.history: list[dict] = []
        self.skipped: list[str] = []
        self.looped: list[str] = []  # clips shorter than one clip, looped to length
        self._resume_rng: dict | None = None
        self.nonfinite_steps = 0  # optimizer steps skipped for non-finite loss or gradients
        self.first_nonfinite = ""  # where the first one showed up (parameter names)
        self._nonfinite_at_epoch_start = 0

    def _set_tasks(self, class_names: Any, train_set: Dataset, objective: Objective | None) -> None:
        """Class names per task; the evaluated task's names in ``class_names``."""
        self.eval_task = eval_task(self.cfg)
        if self.eval_task is None:
            self.task_classes: dict[str, list[str]] = {}
            self.class_names = list(class_names or [])
            return
        if not isinstance(class_names, dict) or not hasattr(train_set, "task_ids") or objective is None:
            raise ValueError(
                "multitask.tasks is set: train_set must be a MultiTaskDataset, class_names a "
                "{task: class names} mapping and objective a MultiTaskObjective "
                "(vidnets.methods.multitask.build_multitask_datasets)"
            )
        self.task_classes = {task: list(names) for task, names in class_names.items()}
        self.class_names = self.task_classes[self.eval_task]

    def _set_determinism(self) -> None:
        if self.cfg.train.deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        seed_everything(self.cfg.train.seed)

    def _set_model(self, model: nn.Module) -> None:
        """Device, memory layout, partial BN, DDP wrapping, precision and the optimizer."""
        cfg = self.cfg
        self.channels_last = cfg.train.channels_last and uses_channels_last(model)
        model = prepare_model(model, self.device, channels_last=self.channels_last)
        if cfg.model.partial_bn:
            _enable_partial_bn(model)
        self.model = distributed.wrap_model(model, self.info, sync_bn=cfg.model.sync_bn)
        self.amp_dtype = distributed.from_rank0(autocast_dtype(self.device, cfg.train.precision))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.optimizer = build_optimizer(
            self.model, cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay, cfg.optim.nesterov
        )

    def _set_schedule(self, train_set: Dataset) -> None:
        """Sampler, steps per epoch, learning-rate schedule and the run's length in steps and epochs."""
        cfg = self.cfg
        self.sampler = self.objective.sampler(train_set, cfg, self.info)
        batches = len(self.sampler) // cfg.data.batch_size
        self.steps_per_epoch = batches // cfg.optim.accumulate
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"data.batch_size {cfg.data.batch_size} × optim.accumulate {cfg.optim.accumulate} × "
                f"{self.info.world_size} process(es) exceeds the {len(train_set)} training clips"
            )
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule, self.steps_per_epoch)
        total = [] if cfg.train.epochs is None else [cfg.train.epochs * self.steps_per_epoch]
        if cfg.train.max_iters is not None:
            total.append(cfg.train.max_iters)
        self.total_steps = min(total)
        self.total_epochs = math.ceil(self.total_steps / self.steps_per_epoch)

    # -- checkpoints ------------------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        return dict(
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            scaler=self.scaler,
            epoch=self.epoch,
            step=self.step,
            batch_in_epoch=self.batch_in_epoch,
            config=config_to_dict(self.cfg),
            class_names=self.class_names,
            model_name=self.model_name,
            model_kwargs=self.model_kwargs,
            task_classes=self.task_classes,
        )

    def save(self, name: str = "last.pt", metrics: dict | None = None) -> Path | None:
        """Write ``out_dir/name`` (and keep ``last.pt`` current); rank 0 only."""
        path = self.out_dir / name
        if self.info.is_main:
            save_checkpoint(path, metrics=metrics, **self.checkpoint_state())
        distributed.barrier()
        return path

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint: weights, optimizer, schedule, scaler, RNG, epoch / step / batch."""
        state = read_checkpoint(path, map_location=self.device)
        if state.get("format") == "state_dict":
            raise ValueError(
                f"--resume {path}: a bare state_dict has no optimizer/epoch state; "
                "use model.pretrained to start from weights"
            )
        unwrap_model(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.batch_in_epoch = state["epoch"], state["step"], state["batch_in_epoch"]
        self._resume_rng = state["rng"] if self.batch_in_epoch else None
        self.history = [r for r in _read_history(self.out_dir) if int(r["step"]) <= self.step]

    # -- loop -------------------------------------------------------------------------------------
    def _loader(self, epoch: int) -> DataLoader:
        cfg = self.cfg
        self.sampler.set_epoch(epoch)
        self.sampler.skip = self.batch_in_epoch * cfg.data.batch_size
        generator = torch.Generator().manual_seed(_epoch_seed(cfg.train.seed, epoch, self.info.rank))
        return DataLoader(
            self.train_set,
            batch_size=cfg.data.batch_size,
            sampler=self.sampler,
            num_workers=cfg.data.num_workers,
            collate_fn=self.collate_fn,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
            worker_init_fn=seed_worker,
            generator=generator,
            persistent_workers=False,
        )

    def _forward_loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, int]:
        x = batch["clip"].to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 5:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        with autocast(self.device, self.amp_dtype):
            outputs = self.objective.forward(self.model, x, batch)
        return self.objective.loss(outputs, batch, self.device)

    def time_steps(self, steps: int) -> list[float]:
        """Seconds of each of the first ``steps`` optimizer steps of epoch 0, data loading included.

        For a dry run: nothing is logged or written, but the weights, optimizer and schedule move on,
        so this trainer is not meant to :meth:`fit` afterwards."""
        accumulate = self.cfg.optim.accumulate
        self._start_epoch(0)
        durations: list[float] = []
        start, done = time.perf_counter(), 0
        for batch in itertools.islice(self._loader(0), min(steps, self.steps_per_epoch) * accumulate):
            self.skipped.extend(batch.get("skipped") or [])
            if batch.get("clip") is None or len(batch["clip"]) == 0:
                continue
            loss, _, _ = self._forward_loss(batch)
            self.scaler.scale(loss / accumulate).backward()
            done += 1
            if done % accumulate == 0:
                self._optimizer_step()
                durations.append(time.perf_counter() - start)
                start = time.perf_counter()
        if not durations:
            raise TrainingError(_no_usable_clip_message(1, self.skipped))
        return durations

    def fit(self, resume: str | Path | None = None) -> FitResult:
        cfg = self.cfg
        start_time = time.perf_counter()
        if resume:
            self.resume(resume)
        first_step = self.step
        self.log = _make_log(self, resume_step=self.step if resume else 0)
        if self.info.is_main:
            atomic_write_text(self.out_dir / "config.yaml", dump_config(cfg))
        last_metrics: dict = {}
        try:
            while self.step < self.total_steps:
                totals = self._train_epoch(self.epoch)
                if self.batch_in_epoch < self.steps_per_epoch * cfg.optim.accumulate:  # max_iters mid-epoch
                    self._check_weights()
                    self.save("last.pt")
                    break
                last_metrics = self._end_epoch(totals, start_time) or last_metrics
        finally:
            self.log.close()
        if self.nonfinite_steps and self.info.is_main:
            logger.warning(
                "skipped %d of %d optimizer step(s) with non-finite loss or gradients (first in %s)",
                self.nonfinite_steps,
                self.step,
                self.first_nonfinite,
            )
        if self.info.is_main:
            from vidnets.engine.plots import plot_curves

            plot_curves(self.out_dir, title=f"{self.model_name or cfg.model.name} ({cfg.recipe})")
            if self.skipped or self.looped:
                atomic_write_text(
                    self.out_dir / "skipped.txt",
                    "".join(f"{line}\n" for line in sorted(set(self.skipped)) + sorted(set(self.looped))),
                )
        return FitResult(
            steps_run=self.step - first_step,
            epochs=self.epoch,
            step=self.step,
            history=self.history,
            test_metrics=last_metrics,
            checkpoint=str(self.out_dir / "last.pt"),
            seconds=time.perf_counter() - start_time,
            skipped=sorted(set(self.skipped)),
        )

    def _start_epoch(self, epoch: int) -> None:
        if self._resume_rng is not None:
            set_rng_state(self._resume_rng)
            self._resume_rng = None
        else:
            seed_everything(_epoch_seed(self.cfg.train.seed, epoch, self.info.rank))
        self.train_set.epoch = epoch
        self._nonfinite_at_epoch_start = self.nonfinite_steps
        self.model.train()
        if self.cfg.model.partial_bn:
            _enable_partial_bn(self.model)
        self._zero_grad()

    def _train_epoch(self, epoch: int) -> torch.Tensor:
        """One epoch (or the rest of it, after a mid-epoch resume); returns the all-reduced
        (loss sum, correct, clips) of its batches."""
        cfg, accumulate = self.cfg, self.cfg.optim.accumulate
        self._start_epoch(epoch)
        batches_wanted = self.steps_per_epoch * accumulate - self.batch_in_epoch
        sums = torch.zeros(3, device=self.device)  # loss sum, correct, clips
        window = _Window()
        bar = _progress(
            cfg.train.progress and self.info.is_main,
            total=batches_wanted // accumulate,
            desc=f"epoch {epoch + 1}/{self.total_epochs}",
        )
        last_good: dict | None = None
        for batch in itertools.islice(self._loader(epoch), batches_wanted):
            self.skipped.extend(batch.get("skipped") or [])  # "path: reason: detail"
            self.looped.extend(batch.get("looped") or [])
            empty = batch.get("clip") is None or len(batch["clip"]) == 0
            if empty and last_good is None:
                self.batch_in_epoch += 1
                continue  # nothing decodable yet (single process: nothing to synchronise)
            use = last_good if empty else batch
            last_good = use
            loss, correct, n = self._forward_loss(use)
            weight = 0.0 if empty else 1.0  # an all-bad batch still joins DDP's gradient all-reduce
            self.scaler.scale(loss * weight / accumulate).backward()
            if not empty:
                sums += torch.stack(
                    [loss.detach().float() * n, correct.float(), torch.tensor(float(n), device=self.device)]
                )
                window.add(loss.detach(), n * self.info.world_size)
            self.batch_in_epoch += 1
            if self.batch_in_epoch % accumulate:
                continue
            self._optimizer_step()
            bar.update(1)
            self._log_step(epoch, window, bar)
            if (
                cfg.train.checkpoint_every_iters
                and self.step % cfg.train.checkpoint_every_iters == 0
                and self.batch_in_epoch < self.steps_per_epoch * accumulate
            ):
                self._check_weights()
                self.save("last.pt")
            if self.step >= self.total_steps:
                break
        bar.close()
        totals = distributed.all_reduce_sum(sums)
        if totals[2] == 0 and batches_wanted > 0:
            raise TrainingError(_no_usable_clip_message(epoch + 1, self.skipped))
        return totals

    def _log_step(self, epoch: int, window: "_Window", bar: Any) -> None:
        if self.step % self.cfg.train.log_every and self.step != self.total_steps:
            return
        mean_loss, rate = window.take()
        lr = self.optimizer.param_groups[0]["lr"]
        self.log.step(self.step, epoch, mean_loss, lr, rate, skipped_steps=self.nonfinite_steps)
        bar.set_postfix(
            loss=f"{mean_loss:.3f}",
            lr=f"{lr:.3g}",
            clips_s=f"{rate:.1f}",
            **({"skipped": self.nonfinite_steps} if self.nonfinite_steps else {}),
        )

    def _end_epoch(self, totals: torch.Tensor, start_time: float) -> dict:
        """Epoch row, test when due, log, checkpoint; returns the test metrics if it tested."""
        cfg = self.cfg
        self._check_weights()
        self.epoch += 1
        self.batch_in_epoch = 0
        row = {
            "epoch": self.epoch,
            "step": self.step,
            "train_loss": float(totals[0] / max(totals[2], 1)),
            "train_acc": float(totals[1] / max(totals[2], 1)),
            "skipped_steps": self.nonfinite_steps - self._nonfinite_at_epoch_start,
            "seconds": round(time.perf_counter() - start_time, 2),
        }
        final = self.step >= self.total_steps
        due = cfg.train.eval_every > 0 and self.epoch % cfg.train.eval_every == 0
        metrics: dict = {}
        if self.test_set is not None and cfg.train.eval_every >= 0 and (due or final):
            metrics = self._test_every_task(row, write=final)
        self.history.append(row)
        self.log.epoch(row)
        if self.info.is_main and self.log.enabled:
            _log_epoch(row)
        if final or (cfg.train.checkpoint_every and self.epoch % cfg.train.checkpoint_every == 0):
            self.save("last.pt", metrics=metrics)
        return metrics

    def _optimizer_step(self) -> None:
        """Unscale, clip, step. A step whose loss or gradients are not finite is skipped (as
        GradScaler does for fp16), so one bad batch cannot turn every weight into NaN; the schedule
        still advances. More than :data:`MAX_SKIPPED_FRACTION` of the run skipped stops it."""
        clip = self.cfg.optim.clip_grad_norm
        self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip or float("inf"))
        if self.scaler.is_enabled() or bool(torch.isfinite(norm)):
            self.scaler.step(self.optimizer)
        else:
            self._count_nonfinite_step()
        self.scaler.update()
        self._zero_grad()
        self.scheduler.step()
        self.step += 1
        if self.nonfinite_steps > MAX_SKIPPED_FRACTION * self.total_steps:
            raise TrainingError(
                f"{self.nonfinite_steps} of the first {self.step} optimizer steps had non-finite loss or gradients "
                f"(first in {self.first_nonfinite}; more than {MAX_SKIPPED_FRACTION:.0%} of the run's "
                f"{self.total_steps} steps); precision {_precision_name(self.amp_dtype)}, lr "
                f"{self.cfg.optim.lr:g}. Try --set train.precision=fp32, a lower optim.lr, or "
                "--set optim.clip_grad_norm=40; nothing was saved from the failing steps"
            )

    def _zero_grad(self) -> None:
        """Under DDP the gradients are views into its buckets (:func:`distributed.wrap_model`): zeroed
        in place, never dropped; a single process frees them."""
        self.optimizer.zero_grad(set_to_none=not self.info.enabled)

    def _count_nonfinite_step(self) -> None:
        self.nonfinite_steps += 1
        if not self.first_nonfinite:
            bad = [
                name
                for name, p in unwrap_model(self.model).named_parameters()
                if p.grad is not None and not bool(torch.isfinite(p.grad).all())
            ]
            self.first_nonfinite = f"step {self.step + 1}: " + (
                ", ".join(bad[:3]) + (" …" if len(bad) > 3 else "") if bad else "the loss"
            )
            logger.warning("optimizer step %d skipped: non-finite gradients in %s", self.step + 1, self.first_nonfinite)

    def _check_weights(self) -> None:
        """Refuse to go on (or save) with non-finite weights: the model could never be used."""
        bad = [
            name
            for name, p in unwrap_model(self.model).state_dict().items()
            if p.is_floating_point() and not bool(torch.isfinite(p).all())
        ]
        if bad:
            raise TrainingError(
                f"weights became non-finite by step {self.step} ({', '.join(bad[:3])}"
                f"{' …' if len(bad) > 3 else ''}); no checkpoint written. Try a lower optim.lr, "
                "--set optim.clip_grad_norm=40 or --set train.precision=fp32"
            )

    def _test_every_task(self, row: dict, write: bool) -> dict:
        """Test each task (one, unless multi-task), add the metrics to the epoch ``row`` and, when
        ``write``, write the reports; returns the metrics of the evaluated task (``eval_task``)."""
        from vidnets.engine.evaluate import write_report

        main_metrics: dict = {}
        for task in self.task_classes or [None]:
            result = self.evaluate(progress=False, task=task)
            metrics = result.metrics()
            if task is not None:
                row[f"test_{task}_video_top1"] = metrics["video_top1"]
            if task == self.eval_task:
                main_metrics = metrics
            if write and self.info.is_main:
                write_report(
                    result,
                    self.out_dir,
                    prefix="test" if task is None else f"test_{task}",
                    dump_scores=self.cfg.test.dump_scores,
                )
        row.update(
            {
                "test_loss": main_metrics["loss"],
                "test_clip_top1": main_metrics["clip_top1"],
                "test_video_top1": main_metrics["video_top1"],
                "test_video_top5": main_metrics["video_top5"],
                "test_mean_class_accuracy": main_metrics["mean_class_accuracy"],
                "chance": main_metrics["chance"],
            }
        )
        return main_metrics

    def evaluate(self, progress: bool = True, task: str | None = None):
        """Score ``test_set`` (this process's shard; rank 0 gathers everything); for a multi-task
        run, the test set of ``task`` (default: ``multitask.eval_task``) through that task's head."""
        from torch.utils.data import Subset

        from vidnets.engine.evaluate import evaluate

        model, test_set, class_names = unwrap_model(self.model), self.test_set, self.class_names
        if self.task_classes:
            task = task or self.eval_task
            model, test_set, class_names = TaskView(model, task), self.test_set[task], self.task_classes[task]
        shard = Subset(test_set, list(range(self.info.rank, len(test_set), self.info.world_size)))
        loader = DataLoader(
            shard,
            batch_size=self.cfg.test.batch_size,
            shuffle=False,
            num_workers=self.cfg.data.num_workers,
            collate_fn=self.collate_fn,
        )
        return evaluate(
            model,
            loader,
            class_names=class_names,
            view_chunk=self.cfg.test.view_chunk,
            amp_dtype=self.amp_dtype,
            channels_last=self.channels_last,
            progress=progress and self.info.is_main,
        )


# -- helpers ------------------------------------------------------------------------------------------


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 1009 + rank * 7919) % 2**63


def _enable_partial_bn(model: nn.Module) -> None:
    """TSN partial BN through the model's own ``partial_bn(True)``."""
    inner = unwrap_model(model)
    if callable(getattr(inner, "partial_bn", None)):
        inner.partial_bn(True)
        return
    raise ValueError(f"model.partial_bn: {type(inner).__name__} has no partial_bn method (only TSN models do)")


def _make_log(trainer: Trainer, resume_step: int):
    from vidnets.engine.runlog import RunLog

    return RunLog(
        trainer.out_dir,
        enabled=trainer.info.is_main,
        tensorboard=trainer.cfg.train.tensorboard,
        resume_step=resume_step,
        extra_epoch_fields=[f"test_{task}_video_top1" for task in trainer.task_classes],
    )


def _read_history(out_dir: Path) -> list[dict]:
    from vidnets.engine.plots import read_csv

    return read_csv(out_dir / "epochs.csv", unique="step")


class _Window:
    """Loss and throughput over the steps since the last log line."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.clips, self.start = 0, time.perf_counter()

    def add(self, loss: torch.Tensor, clips: int) -> None:
        self.losses.append(loss)
        self.clips += clips

    def take(self) -> tuple[float, float]:
        mean_loss = float(torch.stack(self.losses).float().mean()) if self.losses else float("nan")
        rate = self.clips / max(time.perf_counter() - self.start, 1e-9)
        self.__init__()
        return mean_loss, rate


def _precision_name(dtype: torch.dtype | None) -> str:
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")


def _no_usable_clip_message(epoch: int, skipped: list[str]) -> str:
    reasons = sorted(set(skipped))
    listed = "; ".join(reasons[:3]) + (f"; … ({len(reasons)} files)" if len(reasons) > 3 else "")
    return (
        f"epoch {epoch}: no training clip could be read ({listed or 'every batch was empty'}). "
        "Check data.root and the annotation files with `vidnets check`, and that the crop "
        "(data.train_kwargs.crop) fits the frames"
    )


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **kw: Any) -> None: ...
    def close(self) -> None: ...


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, leave=False)


def _log_epoch(row: dict) -> None:
    parts = [
        f"epoch {row['epoch']}",
        f"step {row['step']}",
        f"loss {row['train_loss']:.3f}",
        f"train acc {row['train_acc']:.1%}",
    ]
    if "test_video_top1" in row:
        parts += [f"test clip {row['test_clip_top1']:.1%}", f"video {row['test_video_top1']:.1%}"]
    parts.append(f"{row['seconds']:.0f}s")
    logger.info(" | ".join(parts))
