"""The Python steps of ``benchmarks/gpu_check.sh``: AMP training steps and SyncBatchNorm under torchrun.

    python -m benchmarks.gpu_check amp --device cuda [--tiny]
    torchrun --nproc_per_node 2 -m benchmarks.gpu_check syncbn --device cuda [--tiny]

Each prints one line per check, ``CHECK<TAB>name<TAB>PASS|FAIL<TAB>detail``, which the shell script
gathers into its summary table, and exits non-zero when a check fails. ``--tiny`` shrinks the models
and inputs so that the CPU rehearsal (``GPU_CHECK_DEVICE=cpu``) takes seconds.

amp: a few SGD steps of res3d18 and tsn_bninception under bf16 and fp16 autocast, with the trainer's
helpers (``prepare_model``, ``training_context``, ``grad_scaler``: a GradScaler enabled for fp16 only).
A check passes when every loss is finite, autocast really ran in that dtype, the scaler's scale is
finite, not every step was skipped, and every parameter stays finite while some changed.

syncbn: two processes, BatchNorm converted to SyncBatchNorm and wrapped in DDP (``wrap_model``, as the
trainer does with ``sync_bn``). Rank r gets its own half of a batch; the running mean after one step
must equal that of one BatchNorm over the whole batch, and the parameters must agree across ranks.
SyncBatchNorm needs a GPU, so on CPU (gloo) the same run uses plain BatchNorm and checks only the DDP
parameter agreement.
"""

from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

MAX_EXTRA_STEPS = 6


def report(name: str, ok: bool, detail: str, status: str | None = None) -> bool:
    print(f"CHECK\t{name}\t{status or ('PASS' if ok else 'FAIL')}\t{detail}", flush=True)
    return ok


def build(name: str, tiny: bool, batch: int):
    """(model, input, labels) for one of the checked models."""
    import vidnets.models  # noqa: F401  (registers the models)
    from vidnets.models.registry import create

    if name == "res3d18":
        model = create("res3d18", num_classes=10, **({"width": 8} if tiny else {}))
        size, frames = (32, 4) if tiny else (112, 8)
        x = torch.randn(batch, 3, frames, size, size)
    else:
        segments, size = (1, 32) if tiny else (3, 224)
        model = create("tsn_bninception", num_classes=10, num_segments=segments)
        x = torch.randn(batch, segments, 3, size, size)
    return model, x, torch.randint(0, 10, (batch,))


def amp_check(name: str, dtype: torch.dtype, device: torch.device, steps: int, tiny: bool) -> bool:
    from vidnets.engine.fastpath import grad_scaler, prepare_model, training_context

    check = f"amp {name} {str(dtype).split('.')[-1]}"
    if device.type == "cpu" and dtype == torch.float16 and name == "tsn_bninception":
        # PyTorch's CPU fp16 convolution backward gives BN-Inception's conv1 an infinite weight gradient
        # even unscaled, so every step is skipped; vidnets trains fp16 on CUDA only.
        return report(check, True, "fp16 training is CUDA-only (CPU fp16 conv backward overflows)", "SKIP")

    torch.manual_seed(0)
    model, x, y = build(name, tiny, batch=2 if tiny else 8)
    model = prepare_model(model.train(), device)
    x, y = x.to(device), y.to(device)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = grad_scaler(device, dtype)
    losses, out_dtype, skipped = [], None, 0
    # GradScaler skips the steps whose fp16 gradients overflow while it finds its scale: run at least
    # ``steps`` steps, and more (up to MAX_EXTRA_STEPS) until ``steps`` of them were applied.
    while len(losses) - skipped < steps and len(losses) < steps + MAX_EXTRA_STEPS:
        optimizer.zero_grad(set_to_none=True)
        with training_context(device, dtype):
            logits = model(x)
            out_dtype = logits.dtype
            loss = F.cross_entropy(logits.float(), y)
        scale = scaler.get_scale() if scaler.is_enabled() else 1.0
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        skipped += scaler.is_enabled() and scaler.get_scale() < scale  # the scale drops when a step is skipped
        losses.append(loss.item())
    params = list(model.parameters())
    finite = all(torch.isfinite(torch.tensor(losses))) and all(torch.isfinite(p).all() for p in params)
    moved = any(not torch.equal(p.detach(), b) for p, b in zip(params, before))
    scale = scaler.get_scale() if scaler.is_enabled() else 1.0
    ok = finite and moved and out_dtype == dtype and skipped < len(losses) and 0 < scale < float("inf")
    scaler_text = (
        f"GradScaler on, scale {scale:g}, {skipped} step(s) skipped on overflow"
        if scaler.is_enabled()
        else "GradScaler off (bf16)"
    )
    detail = (
        f"{len(losses)} steps, loss {losses[0]:.3f} → {losses[-1]:.3f}, logits "
        f"{str(out_dtype).split('.')[-1]}, {scaler_text}"
    )
    return report(check, ok, detail)


def run_amp(args) -> int:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        return 0 if report("cuda device", False, "torch.cuda.is_available() is False") else 1
    results = [
        amp_check(name, dtype, device, args.steps, args.tiny)
        for name in ("res3d18", "tsn_bninception")
        for dtype in (torch.bfloat16, torch.float16)
    ]
    return 0 if all(results) else 1


def run_syncbn(args) -> int:
    import torch.distributed as dist

    from vidnets.engine import distributed

    info = distributed.setup(args.device)
    sync = info.device.type == "cuda"
    torch.manual_seed(0)  # same weights and the same whole batch on every rank
    model = torch.nn.Sequential(
        torch.nn.Conv3d(3, 8, 3, padding=1),
        torch.nn.BatchNorm3d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool3d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 4),
    )
    size = 8 if args.tiny else 32
    whole = torch.randn(2 * info.world_size, 3, 4, size, size) * 3 + 1
    labels = torch.randint(0, 4, (whole.shape[0],))
    torch.backends.cudnn.allow_tf32 = False  # the comparison below is at fp32 accuracy
    model.to(info.device)
    reference = torch.nn.BatchNorm3d(8).to(info.device)  # one BatchNorm over the whole batch
    with torch.no_grad():
        reference.train()(model[0](whole.to(info.device)))
    wrapped = distributed.wrap_model(model, info, sync_bn=sync)
    mine = slice(2 * info.rank, 2 * info.rank + 2)
    optimizer = torch.optim.SGD(wrapped.parameters(), lr=0.1)
    loss = F.cross_entropy(wrapped(whole[mine].to(info.device)), labels[mine].to(info.device))
    loss.backward()
    optimizer.step()
    bn = wrapped.module[1] if hasattr(wrapped, "module") else wrapped[1]
    stats_error = (bn.running_mean - reference.running_mean).abs().max().item()
    flat = torch.cat([p.detach().flatten() for p in wrapped.parameters()]).cpu()
    gathered = distributed.all_gather_objects(flat)
    spread = max((g - gathered[0]).abs().max().item() for g in gathered)
    ok = True
    if info.is_main:
        kind = "SyncBatchNorm" if sync else "BatchNorm (SyncBatchNorm needs a GPU)"
        ok = report(
            "ddp parameters agree",
            spread == 0 and bool(torch.isfinite(loss)),
            f"{info.world_size} processes, {kind}, max parameter difference {spread:.1e}",
        )
        if sync:
            ok = (
                report(
                    "syncbn statistics",
                    stats_error < 1e-3,
                    f"running mean vs one BatchNorm over the whole batch: max error {stats_error:.1e}",
                )
                and ok
            )
    if dist.is_initialized():
        dist.barrier()
    distributed.cleanup()
    return 0 if ok else 1


def check_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("amp", "syncbn"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny models and inputs (CPU rehearsal)")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps that must be applied per check")
    args = parser.parse_args(argv)
    return run_amp(args) if args.step == "amp" else run_syncbn(args)


if __name__ == "__main__":  # not ``main``: run_all runs every benchmark with a ``main``
    sys.exit(check_main())
