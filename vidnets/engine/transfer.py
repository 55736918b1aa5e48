"""T3D supervision transfer: teach a 3D network with a frozen 2D ImageNet network (Diba et al. 2017).

The 2D teacher (DenseNet-121, ImageNet weights, frozen) sees the frames of a moment of a video;
the 3D student (DenseNet3D-121 or T3D-121, random init) sees a clip. A small head decides whether
frames and clip come from the same moment of the same video (papers.md §5.1/§5.3)::

    clip_i (C,T,H,W) ──► frames ──► 2D teacher (frozen, eval) ──► mean over frames ─► t_i (1024)
         │                                                                             │
         └────────────────────────► 3D student (trained) ─────────────────────────► s_i (1024)

    positive: [t_i ; s_i]            (same video, same time)       ─┐
    negative: [t_j ; s_i], video j ≠ video i  (different videos)   ─┴► fc 512 ─ ReLU ─ fc 128 ─ ReLU ─ fc 2

Only the student and the match head receive gradients; the teacher's parameters have
``requires_grad=False`` and it stays in eval mode (its BatchNorm statistics do not move). The
student is then fine-tuned for classification: ``vidnets transfer`` saves it as a vidnets
checkpoint (``model_name``/``model_kwargs`` included) that ``vidnets train`` starts from with
``model.pretrained``, and can run a short fine-tune itself (``--finetune-epochs``).

Choices where the paper is silent or unretrieved:

* The teacher's frame features are averaged over the frames it sees (``teacher_frames`` of them,
  evenly spaced over the clip; all by default) — one 1024-d vector per moment, as the 1024 + 1024
  concatenation requires.
* Negatives pair each clip with the frames of another clip of the batch from a *different* video
  (a batch roll, pairs of the same video dropped), so every step has about as many negatives as
  positives and needs no extra decoding.
* The teacher sees the same normalised tensor as the student. The ``t3d`` data recipe normalises
  with ImageNet mean/std, which is what torchvision's ImageNet DenseNet expects.
* Optimiser as the paper (papers.md §5.3): SGD, Nesterov momentum 0.9, weight decay
  1e-4, lr 0.1; all are arguments.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vidnets.models.densenet2d import DenseNet2d, densenet121_2d, load_torchvision_weights

__all__ = ["MatchHead", "SupervisionTransfer", "build_teacher", "match_pairs", "transfer_step", "build_optimizer",
           "TransferLog", "run_transfer", "save_student", "run_cli"]


class MatchHead(nn.Module):
    """[teacher ; student] features → fc 512 → ReLU → fc 128 → ReLU → fc 2 (match / no match)."""

    def __init__(self, in_features: int, hidden: Sequence[int] = (512, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_features, width), nn.ReLU(inplace=True)]
            in_features = width
        layers.append(nn.Linear(in_features, 2))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


def build_teacher(weights: str | Path | None = None) -> DenseNet2d:
    """DenseNet-121 (2D) with ImageNet weights from a local torchvision file, frozen and in eval mode.

    Without ``weights`` the teacher is random (a warning says so): the code path still runs, but
    there is nothing to transfer.
    """
    teacher = densenet121_2d(num_classes=1000)
    if weights:
        load_torchvision_weights(teacher, weights)
    else:
        warnings.warn("T3D transfer: no ImageNet weights for the 2D teacher (pass a local torchvision "
                      "densenet121 state dict); using a random teacher", stacklevel=2)
    teacher.reset_classifier(0)
    return teacher.requires_grad_(False).eval()


class SupervisionTransfer(nn.Module):
    """Frozen 2D teacher + trainable 3D student + match head; ``forward`` returns pair logits."""

    def __init__(self, teacher: nn.Module, student: nn.Module, hidden: Sequence[int] = (512, 128),
                 teacher_frames: int | None = None) -> None:
        super().__init__()
        self.teacher = teacher.requires_grad_(False).eval()
        self.student = student
        self.teacher_frames = teacher_frames
        self.head = MatchHead(_feature_width(teacher) + _feature_width(student), hidden)

    def train(self, mode: bool = True) -> "SupervisionTransfer":
        super().train(mode)
        self.teacher.eval()  # the teacher is fixed: BatchNorm keeps its ImageNet statistics
        return self

    def teacher_features(self, clips: torch.Tensor) -> torch.Tensor:
        """``(N, C, T, H, W)`` → the teacher's pooled feature averaged over the chosen frames ``(N, D2)``."""
        n, c, t, h, w = clips.shape
        count = min(self.teacher_frames or t, t)
        picks = torch.linspace(0, t - 1, count, device=clips.device).round().long()
        frames = clips.index_select(2, picks).transpose(1, 2).reshape(n * count, c, h, w)
        with torch.no_grad():
            feats = self.teacher.forward_head(self.teacher.forward_features(frames), pre_logits=True)
        return feats.reshape(n, count, -1).mean(dim=1)

    def student_features(self, clips: torch.Tensor) -> torch.Tensor:
        return self.student.forward_head(self.student.forward_features(clips), pre_logits=True)

    def forward(self, clips: torch.Tensor, video_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pair logits ``(P, 2)`` and targets ``(P,)`` (1 = same moment of the same video)."""
        pairs, targets = match_pairs(self.teacher_features(clips), self.student_features(clips), video_ids)
        return self.head(pairs), targets


def _feature_width(model: nn.Module) -> int:
    """Width of ``forward_head(..., pre_logits=True)``: the classifier's input features."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    if isinstance(head, nn.Linear):
        return head.in_features
    width = getattr(model, "_classifier_in_features", None) or getattr(model, "num_features", None)
    if width is None:
        raise ValueError(f"{type(model).__name__}: cannot tell its feature width (no linear classifier)")
    return int(width)


def match_pairs(teacher_feats: torch.Tensor, student_feats: torch.Tensor, video_ids: torch.Tensor,
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Positives ``[t_i ; s_i]`` and negatives ``[t_{i+k} ; s_i]`` (batch roll by k = 1, 2, …) whose
    videos differ: one negative per clip where the batch has another video. Returns pairs, targets."""
    n = len(video_ids)
    pairs, targets = [torch.cat([teacher_feats, student_feats], dim=1)], [torch.ones(n, dtype=torch.long)]
    need = torch.ones(n, dtype=torch.bool, device=video_ids.device)
    for shift in range(1, n):
        partner = torch.roll(torch.arange(n, device=video_ids.device), -shift)
        take = need & (video_ids[partner] != video_ids)
        if take.any():
            pairs.append(torch.cat([teacher_feats[partner[take]], student_feats[take]], dim=1))
            targets.append(torch.zeros(int(take.sum()), dtype=torch.long))
            need &= ~take
        if not need.any():
            break
    return torch.cat(pairs), torch.cat(targets).to(teacher_feats.device)


def transfer_step(model: SupervisionTransfer, batch: dict, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """One SGD step of the match task on ``{"clip": (N,C,T,H,W), "index": video ids}``."""
    device = next(model.student.parameters()).device
    clips = batch["clip"].to(device)
    ids = torch.as_tensor(batch["index"]).to(device)
    model.train()
    logits, targets = model(clips, ids)
    loss = F.cross_entropy(logits, targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    accuracy = (logits.detach().argmax(1) == targets).float().mean()
    return {"loss": float(loss.detach()), "match_accuracy": float(accuracy), "pairs": len(targets)}


def build_optimizer(model: SupervisionTransfer, lr: float = 0.1, momentum: float = 0.9,
                    weight_decay: float = 1e-4) -> torch.optim.SGD:
    """SGD with Nesterov momentum over the student and the head only (the teacher is never passed)."""
    params = [p for p in (*model.student.parameters(), *model.head.parameters()) if p.requires_grad]
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0)


@dataclass
class TransferLog:
    steps: list[dict] = field(default_factory=list)

    def summary(self) -> str:
        if not self.steps:
            return "no steps"
        last = self.steps[-max(1, len(self.steps) // 10):]
        loss = sum(s["loss"] for s in last) / len(last)
        acc = sum(s["match_accuracy"] for s in last) / len(last)
        return f"{len(self.steps)} steps, final loss {loss:.4f}, match accuracy {100 * acc:.1f}%"


def run_transfer(model: SupervisionTransfer, batches: Iterable[dict], optimizer: torch.optim.Optimizer,
                 max_steps: int | None = None, progress: bool = False) -> TransferLog:
    """Run :func:`transfer_step` over ``batches`` (a DataLoader, possibly several epochs chained)."""
    from tqdm import tqdm

    log = TransferLog()
    bar = tqdm(total=max_steps, desc="transfer", unit="step", disable=not progress)
    for batch in batches:
        if max_steps is not None and len(log.steps) >= max_steps:
            break
        if len(batch.get("clip", ())) < 2:
            continue  # a batch emptied by bad videos, or too small to form a negative
        log.steps.append(transfer_step(model, batch, optimizer))
        bar.update(1)
        bar.set_postfix(loss=f"{log.steps[-1]['loss']:.3f}")
    bar.close()
    return log


def save_student(student: nn.Module, path: str | Path, model_name: str, model_kwargs: dict,
                 class_names: Sequence[str] = (), metrics: dict | None = None) -> Path:
    """Save the student as a vidnets checkpoint (``vidnets train`` starts from it via ``model.pretrained``)."""
    from vidnets.engine.checkpoint import save_checkpoint

    return save_checkpoint(path, model=student, model_name=model_name, model_kwargs=model_kwargs,
                           class_names=list(class_names), metrics=metrics or {})


# -- command line (arguments in vidnets.engine.method_commands) ----------------------------------
def run_cli(args) -> int:
    """``vidnets transfer``: transfer on the dataset's train split, optional fine-tune, save the student."""
    from torch.utils.data import DataLoader

    from vidnets.data.datasets import collate_skip_bad
    from vidnets.engine.checkpoint import seed_everything
    from vidnets.models import create
    from vidnets.utils.device import default_device

    seed_everything(args.seed)
    device = default_device(args.device)
    dataset, class_names = _clip_dataset(args)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        num_workers=args.num_workers, collate_fn=collate_skip_bad)
    kwargs = {"num_classes": max(len(class_names), 2)}
    student = create(args.student, **kwargs)
    model = SupervisionTransfer(build_teacher(args.teacher_weights), student,
                                teacher_frames=args.teacher_frames).to(device)
    optimizer = build_optimizer(model, args.lr, args.momentum, args.weight_decay)
    log = _transfer_epochs(model, loader, optimizer, args)
    print(f"transfer: {log.summary()}")
    metrics = {"transfer_loss": log.steps[-1]["loss"] if log.steps else float("nan")}
    if args.finetune_epochs:
        metrics.update(_finetune(student, loader, args, device))
    path = save_student(student, args.output, args.student, kwargs, class_names, metrics)
    print(f"student saved to {path} (start `vidnets train` from it with model.pretrained)")
    return 0


def _transfer_epochs(model: SupervisionTransfer, loader, optimizer, args) -> TransferLog:
    """The transfer epochs, resumable: after every epoch the whole state (student, head, optimizer,
    epoch, step) goes atomically to ``<output>.transfer.pt``; a rerun continues from it."""
    from vidnets.engine.checkpoint import read_checkpoint, save_checkpoint

    state_path = Path(f"{args.output}.transfer.pt")
    epoch = step = 0
    if state_path.is_file():
        state = read_checkpoint(state_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, step = state["epoch"], state["step"]
        print(f"transfer: resuming from {state_path} (epoch {epoch}, step {step})")
    log = TransferLog()
    while epoch < args.epochs and (args.max_steps is None or step < args.max_steps):
        remaining = None if args.max_steps is None else args.max_steps - step
        done = run_transfer(model, loader, optimizer, remaining, progress=True)
        log.steps += done.steps
        epoch, step = epoch + 1, step + len(done.steps)
        save_checkpoint(state_path, model=model, optimizer=optimizer, epoch=epoch, step=step,
                        model_name="supervision_transfer")
    return log


def _finetune(student: nn.Module, loader, args, device) -> dict:
    """A short plain fine-tune of the whole student with cross-entropy (the paper's second stage)."""
    optimizer = torch.optim.SGD(student.parameters(), lr=args.finetune_lr, momentum=args.momentum,
                                weight_decay=args.weight_decay, nesterov=args.momentum > 0)
    student.train()
    correct = seen = 0
    for _ in range(args.finetune_epochs):
        correct = seen = 0
        for batch in loader:
            if len(batch.get("clip", ())) == 0:
                continue
            clips, labels = batch["clip"].to(device), torch.as_tensor(batch["label"]).to(device)
            logits = student(clips)
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
    print(f"fine-tune: last epoch train accuracy {100 * correct / max(seen, 1):.1f}%")
    return {"finetune_train_accuracy": correct / max(seen, 1)}


def _clip_dataset(args, subset: str = "train"):
    """Training clips with T3D's recipe (32 frames, short side 256, corner crops 224, flip)."""
    from vidnets.data.datasets import load_annotations
    from vidnets.data.presets import build_dataset

    records, class_names = load_annotations(args.layout, args.root, split=args.split, subset=subset)
    overrides = {k: v for k, v in (("frames", args.frames), ("size", args.size), ("crop", args.crop)) if v}
    return build_dataset("t3d", records, train=True, **overrides), class_names
