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

Both stages run in the engine's one training loop (:class:`vidnets.engine.train.Trainer`): the
match task is a :class:`TransferObjective`, the fine-tune the Trainer's default cross-entropy. So
they get mixed precision, DDP, schedules, logs, checkpoints and exact resume like any run; their
run folders are ``<output>.transfer/`` and ``<output>.finetune/``, and a rerun resumes from them.

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
  1e-4, lr 0.1; all are arguments. The Trainer's optimizer takes the parameters that need
  gradients, which are the student's and the head's (the teacher's are frozen).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vidnets.engine.config import Config, load_config
from vidnets.engine.train import FitResult, Objective, Trainer
from vidnets.models.densenet2d import DenseNet2d, densenet121_2d, load_torchvision_weights

TEACHER_MIN_CROP = 32  # DenseNet-121 halves its input five times (stem, pool, three transitions)

__all__ = [
    "MatchHead",
    "SupervisionTransfer",
    "TransferObjective",
    "build_teacher",
    "match_pairs",
    "transfer_step",
    "TransferSettings",
    "stage_config",
    "run_stage",
    "save_student",
]

logger = logging.getLogger(__name__)


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
        warnings.warn(
            "T3D transfer: no ImageNet weights for the 2D teacher (pass a local torchvision "
            "densenet121 state dict); using a random teacher",
            stacklevel=2,
        )
    teacher.reset_classifier(0)
    return teacher.requires_grad_(False).eval()


class SupervisionTransfer(nn.Module):
    """Frozen 2D teacher + trainable 3D student + match head; ``forward`` returns pair logits."""

    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        hidden: Sequence[int] = (512, 128),
        teacher_frames: int | None = None,
    ) -> None:
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


def match_pairs(
    teacher_feats: torch.Tensor,
    student_feats: torch.Tensor,
    video_ids: torch.Tensor,
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


class TransferObjective(Objective):
    """The Trainer's step for the match task: pair logits of ``model(clips, video ids)`` against
    their targets; "correct" counts rightly judged pairs, so the epoch's ``train_acc`` is the
    match accuracy."""

    def forward(self, model: nn.Module, clips: torch.Tensor, batch: dict) -> Any:
        return model(clips, torch.as_tensor(batch["index"]).to(clips.device))

    def loss(self, outputs: Any, batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, int]:
        logits, targets = outputs
        loss = F.cross_entropy(logits.float(), targets)
        return loss, (logits.detach().argmax(1) == targets).sum(), len(targets)


def transfer_step(model: SupervisionTransfer, batch: dict, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """One optimizer step of the match task on ``{"clip": (N,C,T,H,W), "index": video ids}``, with
    :class:`TransferObjective`'s loss; for experiments outside a run (a run uses the Trainer)."""
    objective = TransferObjective()
    device = next(model.student.parameters()).device
    model.train()
    outputs = objective.forward(model, batch["clip"].to(device), batch)
    loss, correct, pairs = objective.loss(outputs, batch, device)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": float(loss.detach()), "match_accuracy": float(correct) / pairs, "pairs": pairs}


@dataclass(frozen=True)
class TransferSettings:
    """One stage's training settings (the ``vidnets transfer`` arguments)."""

    student: str
    out_dir: str
    epochs: int
    lr: float
    max_steps: int | None = None
    batch_size: int = 8
    momentum: float = 0.9
    weight_decay: float = 1e-4
    num_workers: int = 0
    device: str = "auto"
    seed: int = 0
    progress: bool = True


def stage_config(settings: TransferSettings) -> Config:
    """The Trainer config of a stage: SGD with Nesterov momentum (T3D), constant lr, no test pass."""
    return load_config(
        {
            "recipe": "t3d_transfer",
            "model": {"name": settings.student},
            "data": {"recipe": "t3d", "batch_size": settings.batch_size, "num_workers": settings.num_workers},
            "optim": {
                "lr": settings.lr,
                "momentum": settings.momentum,
                "weight_decay": settings.weight_decay,
                "nesterov": settings.momentum > 0,
            },
            "schedule": {"kind": "constant"},
            "train": {
                "epochs": settings.epochs,
                "max_iters": settings.max_steps,
                "device": settings.device,
                "seed": settings.seed,
                "out_dir": settings.out_dir,
                "eval_every": -1,
                "tensorboard": False,
                "progress": settings.progress,
            },
        }
    )


def run_stage(
    model: nn.Module,
    dataset,
    class_names: Sequence[str],
    settings: TransferSettings,
    *,
    model_name: str,
    model_kwargs: dict | None = None,
    objective: Objective | None = None,
) -> FitResult:
    """Train ``model`` on ``dataset`` in the Trainer, resuming from ``<out_dir>/last.pt`` when a
    previous run of the stage left one. ``model_name``/``model_kwargs`` go into its checkpoints."""
    from vidnets.data.datasets import collate_skip_bad

    cfg = stage_config(settings)
    trainer = Trainer(
        model,
        dataset,
        cfg,
        class_names=list(class_names),
        model_name=model_name,
        model_kwargs=model_kwargs,
        collate_fn=collate_skip_bad,
        objective=objective,
    )
    last = Path(settings.out_dir) / "last.pt"
    if last.is_file():
        logger.info("resuming %s from %s", settings.out_dir, last)
    return trainer.fit(resume=last if last.is_file() else None)


def save_student(
    student: nn.Module,
    path: str | Path,
    model_name: str,
    model_kwargs: dict,
    class_names: Sequence[str] = (),
    metrics: dict | None = None,
) -> Path:
    """Save the student as a vidnets checkpoint (``vidnets train`` starts from it via ``model.pretrained``)."""
    from vidnets.engine.checkpoint import save_checkpoint

    return save_checkpoint(
        path,
        model=student,
        model_name=model_name,
        model_kwargs=model_kwargs,
        class_names=list(class_names),
        metrics=metrics or {},
    )
