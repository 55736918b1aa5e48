"""vidnets ``res3d18`` against torchvision's ``r3d_18``: same weights, same process, alternated.

    python -m benchmarks.vs_torchvision [--quick] [--only 'eval*,*x8']

torchvision's builds cannot be imported beside the CPU torch of ``.venv``, so when torchvision is
missing this script re-runs itself with ``.venv-tv/bin/python`` (create it with
``bash benchmarks/setup_tv_env.sh``: torch 2.14.1 + torchvision 0.29.1, vidnets installed with
``--no-deps``). Both models then live in one process and are timed round-robin.

The two networks have the same topology when ``res3d18`` is built without the ``res2a``
projection (its default): 33,371,472 parameters at 400 classes. vidnets' weights (with random
BatchNorm statistics, so that folding is not a no-op) are copied into torchvision's model through
the library's key map (``vidnets.models.convert.res3d_to_torchvision``), and the fp32 NCDHW
logits of the two are compared before any timing.

Settings per input (8×112² and 16×112²), batch (1 and 8) and mode (eval, training step):

* ``torchvision default`` — fp32, NCDHW (torchvision's and PyTorch's defaults).
* ``torchvision + fast path`` — torchvision's model given vidnets' default treatment (bf16
  autocast where ``precision="auto"`` picks it, channels-last 3D, oneDNN 3D convolutions at
  batch 1 — its conv subclasses made plain ``nn.Conv3d`` first — and Conv+BN folding for eval):
  what the settings are worth on their own. ``--precision bf16`` forces bf16 for both.
* ``vidnets fp32 NCDHW`` — our model at torchvision's settings (control: should tie).
* ``vidnets default`` — ``prepare_for_inference(model)`` / the trainer's fast path
  (``precision="auto"``: bf16 on CUDA and on CPUs where it measured faster than fp32, else fp32),
  which also runs batch-1 3D convolutions on oneDNN (``use_onednn_conv3d``).
"""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks import common

NAME = "vs_torchvision"
TV_PYTHON = common.REPO_ROOT / ".venv-tv" / "bin" / "python"


def _has_torchvision() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:
        return False
    return True


def _reexec(argv: list[str]) -> int:
    """Run this benchmark in ``.venv-tv``; explain how to create it when absent."""
    if not TV_PYTHON.exists():
        print(
            "torchvision is not importable here and .venv-tv is missing; create it with\n"
            "    bash benchmarks/setup_tv_env.sh\n"
            "then rerun `python -m benchmarks.vs_torchvision`.",
            file=sys.stderr,
        )
        return 3
    env = dict(os.environ, PYTHONPATH=str(common.REPO_ROOT))
    return subprocess.call([str(TV_PYTHON), "-m", f"benchmarks.{NAME}", *argv], cwd=common.REPO_ROOT, env=env)


def build_pair(num_classes: int = 400):
    """vidnets res3d18 with random BN statistics, and torchvision r3d_18 holding the same weights."""
    import torch
    from torch import nn
    from torchvision.models.video import r3d_18

    from vidnets.models.convert import res3d_to_torchvision
    from vidnets.models.res3d import res3d18

    torch.manual_seed(0)
    ours = res3d18(num_classes=num_classes)
    with torch.no_grad():
        for m in ours.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    theirs = r3d_18(weights=None, num_classes=num_classes)
    theirs.load_state_dict(res3d_to_torchvision(ours.state_dict()), strict=True)
    return ours.eval(), theirs.eval()


def plain_conv3d(model):
    """A copy of ``model`` whose ``nn.Conv3d`` subclasses (torchvision's ``Conv3DSimple``,
    ``Conv3DNoTemporal``: constructor conveniences only) are plain ``nn.Conv3d``, so that the fast
    path's batch-1 oneDNN routing (which leaves subclasses alone) applies to torchvision too."""
    import copy

    from torch import nn

    model = copy.deepcopy(model)
    for m in model.modules():
        if (
            isinstance(m, nn.Conv3d)
            and type(m) is not nn.Conv3d
            and type(m)._conv_forward is nn.Conv3d._conv_forward
            and type(m).forward is nn.Conv3d.forward
        ):
            m.__class__ = nn.Conv3d
    return model


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = common.make_parser(__doc__.splitlines()[0])
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="precision of the fast path for both models (default: vidnets' auto choice)",
    )
    args = p.parse_args(argv)
    if not _has_torchvision():
        return _reexec(argv)

    import torch

    from benchmarks.models import default_setting, eval_runner, train_runner
    from vidnets.engine.fastpath import parity_check, prepare_for_inference
    from vidnets.models import count_parameters
    from vidnets.utils.device import default_device

    common.setup_threads(args.threads)
    device = default_device()
    ours, theirs = build_pair()
    ours.to(device)
    theirs.to(device)
    theirs_fast = plain_conv3d(theirs)
    n_ours, n_theirs = count_parameters(ours), count_parameters(theirs)

    # Parity first: same weights → same fp32 logits; then our fast path against fp32.
    x = torch.randn(2, 3, 8, 112, 112, device=device)
    with torch.inference_mode():
        a, b = ours(x), theirs(x)
    rel = ((a - b).norm() / b.norm()).item()
    same_top1 = (a.argmax(1) == b.argmax(1)).float().mean().item()
    # "bf16 fast" where precision="auto" picks bf16, else "fp32 fast"
    auto = default_setting(device) if args.precision == "auto" else f"{args.precision} fast"
    parity_fast = parity_check(ours, prepare_for_inference(ours, precision=args.precision), x)
    parity_tv_fast = parity_check(theirs, prepare_for_inference(theirs_fast, precision=auto.split()[0]), x)

    frames = (8,) if args.quick else (8, 16)
    batches = (1,) if args.quick else (1, 8)
    repeats = 1 if args.quick else 3
    rows, summary = [], []
    for t in frames:
        for batch in batches:
            xb = torch.randn(batch, 3, t, 112, 112, device=device)
            for mode in ("eval", "train"):
                case = f"{mode} {t}x112x112 x{batch}"
                if not common.selected(case, args.only):
                    continue
                print(f"{case} …", flush=True)
                if mode == "eval":
                    fns = {
                        "torchvision default": eval_runner(theirs, xb, "fp32 NCDHW")[0],
                        "torchvision + fast path": eval_runner(theirs_fast, xb, auto)[0],
                        "vidnets fp32 NCDHW": eval_runner(ours, xb, "fp32 NCDHW")[0],
                        "vidnets default": eval_runner(ours, xb, auto)[0],
                    }
                else:
                    fns = {
                        "torchvision default": train_runner(theirs, xb, "fp32 NCDHW"),
                        "torchvision + fast path": train_runner(theirs_fast, xb, auto),
                        "vidnets fp32 NCDHW": train_runner(ours, xb, "fp32 NCDHW"),
                        "vidnets default": train_runner(ours, xb, auto),
                    }
                secs = common.time_alternating(
                    fns, warmup=1, repeats=repeats if batch > 1 else repeats + 2, device=device
                )
                rates = {k: common.per_second(s, batch) for k, s in secs.items()}
                base = rates["torchvision default"]
                for setting, r in rates.items():
                    rows.append(
                        [f"{t}×112×112", batch, mode, setting, common.fmt_stats(r), f"{common.ratio(r, base):.2f}×"]
                    )
                target = 2.5 if mode == "eval" else 2.0
                got = common.ratio(rates["vidnets default"], base)
                summary.append(
                    f"{case.replace('x', '×')}: vidnets default {got:.2f}× torchvision default "
                    f"(target ≥ {target}×: {'met' if got >= target else 'not met'}); "
                    f"torchvision + fast path {common.ratio(rates['torchvision + fast path'], base):.2f}×"
                )

    lines = [
        f"Parameters: vidnets res3d18 {n_ours:,}, torchvision r3d_18 {n_theirs:,} (400 classes). "
        f"Same weights, fp32 NCDHW logits: relative error {rel:.1e}, top-1 agreement {same_top1:.0%}.",
        "",
        f"Fast path vs fp32 reference (batch 2, 8×112²): vidnets default {parity_fast}; "
        f"torchvision + fast path {parity_tv_fast}.",
        "",
        f"The fast path here (`precision=\"auto\"`) is **{auto}**. Throughput (clips/s, median (min–max)), "
        "all settings of one row group timed round-robin:",
        "",
        common.markdown_table(["input", "batch", "mode", "setting", "clips/s", "vs torchvision default"], rows),
        "",
        "**Ratios:**",
        "",
        *(f"- {s}" for s in summary),
    ]
    if args.quick:
        lines += ["", "_Quick mode: batch 1, 8 frames, one repeat; for a smoke test, not for quoting._"]
    body = "\n".join(lines)
    common.publish(NAME, "vidnets res3d18 vs torchvision r3d_18", body, args, argv)
    return 0 if rel < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
