"""Tiny models and in-memory datasets for the engine tests (no decoding, milliseconds per step)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from vidnets.engine.config import load_config


class TinyVideoNet(nn.Module):
    """Conv3d → global pool → linear; ``default_input`` tells the evaluator a sample is (C, T, H, W)."""

    default_input = (3, 4, 8, 8)

    def __init__(self, num_classes: int = 3, dropout: float = 0.0, bn: bool = False):
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm3d(8) if bn else nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(8 * 2 * 2 * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool3d(torch.relu(self.bn(self.conv(x))), 2).flatten(1)
        return self.fc(self.drop(x))


class ToyClips(Dataset):
    """Class c has a bright blob moving in direction c; ``views`` > 0 stacks test views in front."""

    def __init__(self, n: int = 24, num_classes: int = 3, seed: int = 0, views: int = 0, augment: bool = False):
        g = torch.Generator().manual_seed(seed)
        self.labels = [i % num_classes for i in range(n)]
        self.base = torch.randn(n, 3, 4, 8, 8, generator=g) * 0.3
        for i, c in enumerate(self.labels):
            for t in range(4):
                self.base[i, :, t, (2 + t * (c - 1)) % 8, 3:5] += 2.0
        self.views, self.augment = views, augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        clip = self.base[i]
        if self.augment:  # uses the global RNG like real transforms do
            clip = clip + 0.05 * torch.randn_like(clip)
        if self.views:
            clip = torch.stack([clip.roll(v, dims=-1) for v in range(self.views)])
        return {"clip": clip, "label": self.labels[i], "index": i, "path": f"video{i}.avi"}


def tiny_config(out_dir, **overrides):
    base = {
        "recipe": "tiny",
        "model": {"name": "tiny"},
        "data": {"batch_size": 4, "num_workers": 0},
        "optim": {"lr": 0.05, "weight_decay": 1e-4},
        "schedule": {"kind": "step", "step_size": 4, "gamma": 0.5},
        "train": {
            "epochs": 3,
            "precision": "fp32",
            "deterministic": True,
            "out_dir": str(out_dir),
            "log_every": 2,
            "progress": False,
            "tensorboard": False,
            "eval_every": 1,
        },
    }
    sets = [f"{k}={v}" for k, v in overrides.items()]
    return load_config(base, sets)
