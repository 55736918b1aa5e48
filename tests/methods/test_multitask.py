"""Multi-task data: both datasets mixed at the chosen ratio, samples tagged, each head trained on its own."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from helpers import tiny_config
from torch import nn
from torch.utils.data import Dataset

from vidnets.engine.train import Trainer
from vidnets.methods.multitask import MixedTaskSampler, MultiTaskDataset, MultiTaskObjective, task_probabilities
from vidnets.models.two_stream import multitask_loss

pytestmark = pytest.mark.usefixtures("one_thread")


class Toy(Dataset):
    """``n`` samples of ``dim`` features; class c lights up feature c (+ an offset per dataset)."""

    def __init__(self, n: int, classes: int, offset: int, dim: int = 8, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, classes, (n,), generator=g)
        self.x = 0.1 * torch.randn(n, dim, generator=g)
        self.x[torch.arange(n), self.labels + offset] += 1.0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"clip": self.x[i], "label": int(self.labels[i]), "index": i, "path": f"{i}.avi"}


class TwoHeads(nn.Module):
    """A shared trunk with one head per task, returning ``{task: logits}`` like CNNM2048(heads=…)."""

    def __init__(self, dim: int = 8, classes=(3, 2)):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(dim, 16), nn.ReLU())
        self.heads = nn.ModuleDict({"ucf101": nn.Linear(16, classes[0]), "hmdb51": nn.Linear(16, classes[1])})

    def forward(self, x):
        h = self.trunk(x)
        return {name: head(h) for name, head in self.heads.items()}


def test_dataset_tags_samples_with_their_task():
    mixed = MultiTaskDataset([Toy(5, 3, 0), Toy(3, 2, 3)])
    assert len(mixed) == 8 and mixed.task_ids == [0] * 5 + [1] * 3
    assert mixed[4]["task"] == 0 and mixed[5]["task"] == 1 and mixed[5]["index"] == 0
    with pytest.raises(ValueError, match="at least two"):
        MultiTaskDataset([Toy(5, 3, 0)])


@pytest.mark.parametrize(
    "mixing, expected", [("proportional", [0.75, 0.25]), ("balanced", [0.5, 0.5]), ((1, 3), [0.25, 0.75])]
)
def test_sampler_mixes_both_datasets_at_the_ratio(mixing, expected):
    task_ids = [0] * 300 + [1] * 100
    assert task_probabilities([300, 100], mixing) == pytest.approx(expected)
    sampler = MixedTaskSampler(task_ids, mixing, num_samples=4000, seed=0)
    drawn = list(sampler)
    share = Counter(task_ids[i] for i in drawn)
    assert share[0] / 4000 == expected[0]  # the ratio is exact per epoch
    first_batch = {task_ids[i] for i in drawn[:32]}
    assert first_batch == {0, 1}  # batches really mix the datasets


def test_proportional_epoch_visits_every_sample_once_and_epochs_differ():
    sampler = MixedTaskSampler([0] * 30 + [1] * 10, "proportional", seed=3)
    epoch0 = list(sampler)
    assert sorted(epoch0) == list(range(40))  # every sample exactly once
    assert epoch0 != sorted(epoch0)
    balanced = list(MixedTaskSampler([0] * 30 + [1] * 10, "balanced", seed=3))
    assert Counter(i >= 30 for i in balanced) == {False: 20, True: 20}
    first_pass = [i for i in balanced if i >= 30][:10]
    assert sorted(first_pass) == list(range(30, 40))  # all of task 1 once before any repeat
    assert list(sampler) == epoch0  # reproducible
    sampler.set_epoch(1)
    assert list(sampler) != epoch0


def multitask_trainer(model, data, out_dir, **overrides) -> Trainer:
    cfg = tiny_config(
        out_dir, **{"multitask.tasks": "{ucf101: {}, hmdb51: {root: x}}", "train.eval_every": -1, **overrides}
    )
    return Trainer(
        model, data, cfg, class_names={"ucf101": ["a", "b", "c"], "hmdb51": ["d", "e"]}, objective=MultiTaskObjective()
    )


def test_each_head_learns_only_from_its_own_dataset(tmp_path):
    torch.manual_seed(0)
    model = TwoHeads()
    only_ucf = MultiTaskDataset([Toy(6, 3, 0), Toy(1, 2, 3)])
    trainer = multitask_trainer(
        model, only_ucf, tmp_path, **{"data.batch_size": 6, "optim.weight_decay": 0, "optim.momentum": 0}
    )
    hmdb_before = model.heads["hmdb51"].weight.clone()
    ucf_before = model.heads["ucf101"].weight.clone()
    batch = {
        "clip": torch.randn(6, 8),
        "label": torch.tensor([0, 1, 2, 0, 1, 1]),
        "task": torch.tensor([0, 0, 0, 0, 0, 0]),
    }
    loss, correct, n = trainer._forward_loss(batch)
    loss.backward()
    trainer._optimizer_step()
    assert n == 6 and 0 <= int(correct) <= 6
    assert torch.equal(model.heads["hmdb51"].weight, hmdb_before)  # no HMDB51 sample, no HMDB51 update
    assert not torch.equal(model.heads["ucf101"].weight, ucf_before)
    # the summed loss equals the per-head cross-entropies computed by hand
    logits = model(batch["clip"])
    mixed_tasks = torch.tensor([0, 1, 0, 1, 0, 1])
    labels = torch.tensor([2, 1, 0, 0, 1, 1])
    expected = nn.functional.cross_entropy(
        logits["ucf101"][mixed_tasks == 0], labels[mixed_tasks == 0]
    ) + nn.functional.cross_entropy(logits["hmdb51"][mixed_tasks == 1], labels[mixed_tasks == 1])
    assert multitask_loss(logits, labels, mixed_tasks).item() == pytest.approx(expected.item())


def test_trainer_learns_both_tasks(tmp_path):
    torch.manual_seed(0)
    data = MultiTaskDataset([Toy(120, 3, 0, seed=1), Toy(60, 2, 3, seed=2)])
    model = TwoHeads()
    trainer = multitask_trainer(
        model,
        data,
        tmp_path,
        **{
            "multitask.mixing": "balanced",
            "data.batch_size": 20,
            "optim.lr": 0.5,
            "train.epochs": 8,
            "schedule.kind": "constant",
        },
    )
    assert isinstance(trainer.sampler, MixedTaskSampler)
    result = trainer.fit()
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    with torch.no_grad():
        for task, head in ((0, "ucf101"), (1, "hmdb51")):
            ds = data.datasets[task]
            accuracy = (model(ds.x)[head].argmax(1) == ds.labels).float().mean()
            assert accuracy > 0.9


def test_multitask_config_needs_the_objective(tmp_path):
    cfg = tiny_config(tmp_path, **{"multitask.tasks": "{ucf101: {}, hmdb51: {root: x}}"})
    data = MultiTaskDataset([Toy(6, 3, 0), Toy(4, 2, 3)])
    with pytest.raises(ValueError, match="MultiTaskObjective"):
        Trainer(TwoHeads(), data, cfg, class_names={"ucf101": ["a", "b", "c"], "hmdb51": ["d", "e"]})


def test_mixed_sampler_shards_like_distributed_sampler_and_skips():
    tasks = [0] * 30 + [1] * 11
    whole = list(MixedTaskSampler(tasks, seed=3))
    ranks = [MixedTaskSampler(tasks, seed=3, num_replicas=2, rank=r) for r in (0, 1)]
    parts = [list(s) for s in ranks]
    assert [len(p) for p in parts] == [20, 20] and [len(s) for s in ranks] == [20, 20]
    assert parts[0] == whole[0::2][:20] and parts[1] == whole[1::2][:20]
    assert not set(parts[0]) & set(parts[1])
    ranks[1].skip = 7
    assert len(ranks[1]) == 13 and list(ranks[1]) == parts[1][7:]
    with pytest.raises(ValueError, match="rank 2 outside 0..1"):
        MixedTaskSampler(tasks, num_replicas=2, rank=2)


def test_task_view_scores_one_head():
    from vidnets.models.base import TaskView
    from vidnets.models.two_stream import multitask_correct, two_stream_spatial

    model = two_stream_spatial(heads={"a": 3, "b": 5}, input_size=64).eval()
    x = torch.randn(2, 3, 64, 64)
    view = TaskView(model, "b")
    with torch.no_grad():
        assert torch.equal(view(x), model(x)["b"])
    assert view.default_input == (3, 64, 64)
    with pytest.raises(KeyError, match="no task head 'c'; heads: a, b"):
        TaskView(model, "c")
    logits = {"a": torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), "b": torch.eye(5)[:2]}
    # row 0 is task a (label 1: right), row 1 is task b (label 0: wrong, head b says 1)
    assert int(multitask_correct(logits, torch.tensor([1, 0]), torch.tensor([0, 1]))) == 1
