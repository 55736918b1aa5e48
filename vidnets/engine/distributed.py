"""Several processes, one or several machines, launched by ``torchrun``.

``torchrun --nproc_per_node=4 -m vidnets train c3d`` (or ``--nnodes=2
--rdzv_endpoint=host:port`` across machines) sets RANK, WORLD_SIZE and LOCAL_RANK; :func:`setup`
reads them, picks the device (``cuda:LOCAL_RANK`` when CUDA is present, else CPU) and the backend
(nccl on CUDA, gloo on CPU). Without those variables everything runs as a single process.

Each process sees ``batch_size`` clips per step (DistributedSampler), gradients are averaged by
DistributedDataParallel, so the global batch is ``batch_size × accumulate × world_size``. Only rank 0
logs and writes checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "setup", "cleanup", "is_main", "barrier", "all_reduce_sum", "all_gather_objects", "wrap_model"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes (if any) and choose this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        dev = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device(f"cuda:{local_rank}")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum ``values`` over processes (a no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (``[obj]`` in a single process)."""
    if dist.is_available() and dist.is_initialized():
        out: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


def from_rank0(value: Any) -> Any:
    """Rank 0's ``value`` on every process (``value`` itself in a single process): for choices
    each rank makes by measuring, such as the CPU bf16-or-fp32 decision, which must agree."""
    return all_gather_objects(value)[0]


def wrap_model(model: torch.nn.Module, info: DistInfo, *, sync_bn: bool = False) -> torch.nn.Module:
    """DistributedDataParallel (with SyncBatchNorm if asked) when several processes run; else ``model``.

    The gradients are views into DDP's communication buckets (``gradient_as_bucket_view``), and the
    Trainer zeroes them in place instead of dropping them. Otherwise each step's fresh gradient is
    copied into its bucket, and a weight whose layout is ambiguous (a size-1 dimension, as in a
    1×1×1 convolution in channels-last memory) gets gradients whose strides differ from the
    bucket's: PyTorch then warns "Grad strides do not match bucket view strides" and pays a strided
    copy. The gradients are allocated (zero) before wrapping, so DDP makes them bucket views from
    the first backward pass on and no step copies.
    """
    if not info.enabled:
        return model
    if sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [info.device.index] if info.device.type == "cuda" else None
    for param in model.parameters():
        if param.requires_grad and param.grad is None:
            param.grad = torch.zeros_like(param)  # same strides as the weight; DDP turns it into a bucket view
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, gradient_as_bucket_view=True)
