"""Training checkpoints: everything needed to continue a run exactly, saved atomically.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so it loads with
weights-only unpickling (:func:`vidnets.utils.io.load_checkpoint`; a file holding code is refused)::

    {"format": "vidnets-checkpoint/1",
     "model": state_dict, "optimizer": ..., "scheduler": ..., "scaler": ... | None,
     "rng": {"torch": ByteTensor, "cuda": [ByteTensor…], "numpy": {...}, "python": [...]},
     "epoch": epochs completed, "step": optimizer steps done, "batch_in_epoch": batches done in the
     current epoch (0 at an epoch boundary),
     "config": Config as a dict, "class_names": [...], "model_name": str, "model_kwargs": {...},
     "metrics": {...}}

NumPy's and Python's RNG states are stored as tensors and lists (not pickled objects) for the
same reason.

Integrity: ``"checksum"`` holds a SHA-256 over every tensor of the checkpoint (its key path, dtype,
shape and bytes, keys in sorted order); :func:`read_checkpoint` recomputes it and refuses a file
whose tensors changed since they were written (a flipped bit inside a weight loads without any
unpickling error, so only a checksum catches it). A model whose weights are not all finite is
never saved: :func:`save_checkpoint` raises and leaves the previous file as it was.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidnets.utils.io import CheckpointError, atomic_torch_save, load_checkpoint

__all__ = [
    "FORMAT",
    "CheckpointError",
    "rng_state",
    "set_rng_state",
    "seed_everything",
    "save_checkpoint",
    "read_checkpoint",
    "unwrap_model",
    "tensor_checksum",
    "nonfinite_tensors",
]

FORMAT = "vidnets-checkpoint/1"


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


def rng_state() -> dict:
    """All RNG states (torch CPU, every CUDA device, NumPy, Python) in weights-only-safe types."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": [py_version, list(py_internal), py_gauss],
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), NumPy and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    random.seed(seed)


def _tensors(obj: Any, prefix: str = ""):
    """Every tensor in a nested dict/list, as (key path, tensor), in a fixed (sorted) order."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key in sorted(obj, key=str):
            yield from _tensors(obj[key], f"{prefix}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield from _tensors(item, f"{prefix}/{i}")


def tensor_checksum(state: dict) -> str:
    """SHA-256 (hex) over every tensor of ``state`` but the ``checksum`` entry: key path, dtype, shape, bytes."""
    digest = hashlib.sha256()
    for key, tensor in _tensors({k: v for k, v in state.items() if k != "checksum"}):
        data = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()


def nonfinite_tensors(state_dict: dict) -> list[str]:
    """Names of the floating-point tensors of ``state_dict`` holding NaN or ±inf."""
    return [
        name
        for name, t in state_dict.items()
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]


def save_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: Any = None,
    epoch: int = 0,
    step: int = 0,
    batch_in_epoch: int = 0,
    config: dict | None = None,
    class_names: list[str] | None = None,
    model_name: str = "",
    model_kwargs: dict | None = None,
    metrics: dict | None = None,
    task_classes: dict[str, list[str]] | None = None,
) -> Path:
    """Write a checkpoint atomically (temp file + rename): a crash never leaves a half-written file.

    ``task_classes`` (multi-task runs) maps each head to its class names. Raises
    :class:`CheckpointError` (and writes nothing) when the model's weights are not all finite."""
    path = Path(path)
    weights = unwrap_model(model).state_dict()
    bad = nonfinite_tensors(weights)
    if bad:
        raise CheckpointError(
            f"checkpoint {path} not written: {len(bad)} of {len(weights)} model tensors hold "
            f"NaN or inf (e.g. {bad[0]}); the run diverged - lower optim.lr or set "
            "optim.clip_grad_norm"
        )
    state = {
        "format": FORMAT,
        "model": weights,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "rng": rng_state(),
        "epoch": int(epoch),
        "step": int(step),
        "batch_in_epoch": int(batch_in_epoch),
        "config": config or {},
        "class_names": list(class_names or []),
        "model_name": model_name,
        "model_kwargs": dict(model_kwargs or {}),
        "metrics": dict(metrics or {}),
        "task_classes": {task: list(names) for task, names in (task_classes or {}).items()},
    }
    state["checksum"] = {"algorithm": "sha256", "tensors": tensor_checksum(state)}
    atomic_torch_save(state, path)
    return path


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint weights-only and verify its checksum; a bare ``state_dict`` file is accepted as
    ``{"model": ...}``. Raises :class:`CheckpointError` for a damaged or foreign file."""
    state = load_checkpoint(path, map_location=map_location)
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path}: expected a dict, found {type(state).__name__}")
    checksum = state.get("checksum")
    if checksum is not None:
        if (
            not isinstance(checksum, dict)
            or checksum.get("algorithm") != "sha256"
            or checksum.get("tensors") != tensor_checksum(state)
        ):
            raise CheckpointError(
                f"checkpoint {path}: damaged - its tensors do not match the SHA-256 checksum "
                "stored when it was written; use an earlier checkpoint or retrain"
            )
    if state.get("format") != FORMAT:
        if all(isinstance(v, torch.Tensor) for v in state.values()):
            return {"model": state, "format": "state_dict"}
        if "state_dict" in state and isinstance(state["state_dict"], dict):
            return {"model": state["state_dict"], "format": "state_dict"}
        raise CheckpointError(
            f"checkpoint {path}: not a vidnets checkpoint (no 'format': {FORMAT!r}) and not a plain state_dict"
        )
    return state
