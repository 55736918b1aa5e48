"""Multi-task training over two (or more) datasets: Two-Stream §4 (UCF101 + HMDB51).

One trunk, one softmax head per dataset; each head's loss is computed only on the samples of its
own dataset and the total loss is their sum (the model side, ``heads``, ``multitask_loss`` and
``multitask_correct``, is in :mod:`vidnets.models.two_stream`; ``TaskView`` in
:mod:`vidnets.models.base`). This module supplies the data side and the Trainer's objective::

    UCF101 dataset ─┐                                      ┌─► head 0 ─► CE on task==0 rows ─┐
                    ├─► MultiTaskDataset (adds "task") ──► trunk                             ├─► sum
    HMDB51 dataset ─┘   MixedTaskSampler (mixing ratio)    └─► head 1 ─► CE on task==1 rows ─┘

**Mixing ratio.** The paper does not state how batches mix the datasets. The default,
``"proportional"``, gives each task a share of the epoch proportional to its size and walks every
dataset without replacement, so one epoch visits every video of the union exactly once: that is
the plain reading of "training on both datasets" and it does not repeat the smaller set.
``"balanced"`` draws the tasks equally often (HMDB51's 3.6K videos then recur about 2.6 times per
UCF101 epoch), which helps the small task when it is the one evaluated; explicit weights
(e.g. ``(1, 2)``) are also accepted. Within a task the order is reshuffled on every pass.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import torch
from torch.utils.data import Dataset, Sampler

from vidnets.engine import distributed
from vidnets.engine.build import build_datasets
from vidnets.engine.config import Config, ConfigError, task_config, task_names
from vidnets.engine.train import Objective
from vidnets.models.two_stream import multitask_correct, multitask_loss

__all__ = [
    "MultiTaskDataset",
    "MixedTaskSampler",
    "MultiTaskObjective",
    "task_probabilities",
    "build_multitask_datasets",
]


class MultiTaskDataset(Dataset):
    """Concatenation of per-task datasets whose samples carry ``"task"``: the dataset's position.

    The order of ``datasets`` must be the order of the model's heads (``heads={"ucf101": 101,
    "hmdb51": 51}`` → ``[ucf101_set, hmdb51_set]``): ``multitask_loss`` maps task ``t`` to head ``t``.

    Samples are the project's dicts (``{"clip", "label", "index", "path"}`` or ``{"error", …}``
    for a bad video); ``"task"`` is added to both, so ``collate_skip_bad`` keeps working.
    Global index ``i`` maps to ``(task, local index)`` by the usual concatenation offsets.
    """

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        if len(datasets) < 2:
            raise ValueError(f"multi-task training needs at least two datasets, found {len(datasets)}")
        self.datasets = list(datasets)
        self.sizes = [len(d) for d in self.datasets]
        if any(n == 0 for n in self.sizes):
            raise ValueError(f"multi-task datasets must not be empty, sizes {self.sizes}")
        self.offsets = [sum(self.sizes[:t]) for t in range(len(self.sizes))]

    def __len__(self) -> int:
        return sum(self.sizes)

    @property
    def task_ids(self) -> list[int]:
        """The task of every global index (what :class:`MixedTaskSampler` needs)."""
        return [t for t, n in enumerate(self.sizes) for _ in range(n)]

    def locate(self, index: int) -> tuple[int, int]:
        """``(task, index within that task's dataset)`` of a global index."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        task = max(t for t, off in enumerate(self.offsets) if off <= index)
        return task, index - self.offsets[task]

    def __getitem__(self, index: int) -> dict[str, Any]:
        task, local = self.locate(index)
        sample = self.datasets[task][local]
        if not isinstance(sample, dict):  # (clip, label) tuples from plain datasets
            clip, label = sample[0], sample[1]
            sample = {"clip": clip, "label": label, "index": local}
        return {**sample, "task": task}


def task_probabilities(sizes: Sequence[int], mixing: str | Sequence[float] = "proportional") -> list[float]:
    """Probability of drawing each task: ``"proportional"`` to size, ``"balanced"``, or given weights."""
    if isinstance(mixing, str):
        if mixing == "proportional":
            weights = [float(n) for n in sizes]
        elif mixing == "balanced":
            weights = [1.0] * len(sizes)
        else:
            raise ValueError(f"mixing: expected 'proportional', 'balanced' or weights, found {mixing!r}")
    else:
        weights = [float(w) for w in mixing]
        if len(weights) != len(sizes) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"mixing weights {weights}: need {len(sizes)} non-negative weights, not all zero")
    total = sum(weights)
    return [w / total for w in weights]


class MixedTaskSampler(Sampler[int]):
    """Dataset indices that mix the tasks at a chosen ratio.

    ``task_ids[i]`` is the task of sample ``i`` (``MultiTaskDataset.task_ids``, or the ``task``
    field of :class:`vidnets.data.datasets.VideoRecord` for one dataset holding both). An epoch of
    ``num_samples`` gives task ``t`` exactly ``round(p_t · num_samples)`` slots (largest remainder;
    ``p_t`` from :func:`task_probabilities`) in shuffled order; each slot takes the task's next
    sample from a shuffled pass over it (reshuffled when exhausted, so no sample repeats before
    its task is used up).
    ``num_samples`` defaults to the number of samples. ``set_epoch(e)`` reseeds (``seed + e``), so
    every epoch differs and runs reproduce.

    With several processes (``num_replicas``, ``rank``, as DistributedSampler) every rank draws the
    same epoch order and takes every ``num_replicas``-th index from ``rank`` on, each rank getting
    ``num_samples // num_replicas``. ``skip`` drops that many indices from the start of this rank's
    share (resuming part-way through an epoch, as the trainer's own sampler does).
    """

    def __init__(
        self,
        task_ids: Sequence[int],
        mixing: str | Sequence[float] = "proportional",
        num_samples: int | None = None,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        ids = torch.as_tensor(list(task_ids), dtype=torch.long)
        if ids.numel() == 0 or int(ids.min()) < 0:
            raise ValueError("MixedTaskSampler: task_ids must be non-empty, non-negative task indices")
        self.members = [torch.nonzero(ids == t).flatten() for t in range(int(ids.max()) + 1)]
        self.sizes = [len(m) for m in self.members]
        if any(n == 0 for n in self.sizes):
            raise ValueError(f"MixedTaskSampler: some task has no samples (sizes {self.sizes})")
        self.probabilities = torch.tensor(task_probabilities(self.sizes, mixing), dtype=torch.double)
        self.num_samples = int(num_samples) if num_samples is not None else len(ids)
        if not 0 <= rank < num_replicas:
            raise ValueError(f"MixedTaskSampler: rank {rank} outside 0..{num_replicas - 1}")
        self.num_replicas, self.rank = num_replicas, rank
        self.seed, self.epoch, self.skip = seed, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return max(self.num_samples // self.num_replicas - self.skip, 0)

    def _task_slots(self) -> torch.Tensor:
        """Each task's slots in one epoch: the exact ratio, rounded by largest remainder."""
        ideal = self.probabilities * self.num_samples
        counts = ideal.floor().long()
        short = self.num_samples - int(counts.sum())
        counts[torch.argsort(ideal - counts, descending=True)[:short]] += 1
        return torch.repeat_interleave(torch.arange(len(counts)), counts)

    def __iter__(self) -> Iterator[int]:
        share = self.num_samples // self.num_replicas
        order = list(self._epoch_order())[self.rank :: self.num_replicas][:share]
        return iter(order[self.skip :])

    def _epoch_order(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        tasks = self._task_slots()[torch.randperm(self.num_samples, generator=generator)]
        orders = [m[torch.randperm(len(m), generator=generator)] for m in self.members]
        cursors = [0] * len(self.members)
        for task in tasks.tolist():
            if cursors[task] == self.sizes[task]:
                members = self.members[task]
                orders[task], cursors[task] = members[torch.randperm(len(members), generator=generator)], 0
            yield int(orders[task][cursors[task]])
            cursors[task] += 1


class MultiTaskObjective(Objective):
    """The Trainer's multi-task step: mixed batches (:class:`MixedTaskSampler` at ``multitask.mixing``),
    each head's cross-entropy over its own dataset's samples, summed (``multitask_loss``)."""

    def sampler(self, dataset: Dataset, cfg: Config, info: distributed.DistInfo) -> MixedTaskSampler:
        return MixedTaskSampler(
            dataset.task_ids, cfg.multitask.mixing, seed=cfg.train.seed, num_replicas=info.world_size, rank=info.rank
        )

    def loss(self, outputs: Any, batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, int]:
        y = torch.as_tensor(batch["label"]).to(device, non_blocking=True)
        tasks = torch.as_tensor(batch["task"]).to(device, non_blocking=True)
        logits = {task: out.float() for task, out in outputs.items()}
        return multitask_loss(logits, y, tasks), multitask_correct(logits, y, tasks), len(y)


def build_multitask_datasets(cfg: Config, *, with_test: bool = True):
    """Multi-task data: ``(MultiTaskDataset, {task: test_set} or None, {task: class_names})``.

    Each task's dataset is built exactly as a single-task run on ``task_config(cfg, task)`` would
    build it; the training sets are joined in head order, so a sample's ``task`` is its head.
    """
    train_sets, test_sets, classes = [], {}, {}
    for task in task_names(cfg)[1:]:
        if not cfg.multitask.tasks[task].get("root"):
            raise ConfigError(
                f"multitask.tasks.{task}.root: expected this task's dataset folder, found none "
                "(only the first task may use data.root)"
            )
    for task in task_names(cfg):
        try:
            train_set, test_set, names = build_datasets(task_config(cfg, task), with_test=with_test)
        except ConfigError as e:
            raise ConfigError(f"multitask task {task}: {e}") from None
        train_sets.append(train_set)
        test_sets[task] = test_set
        classes[task] = names
    return MultiTaskDataset(train_sets), (test_sets if with_test else None), classes
