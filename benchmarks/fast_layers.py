"""Two layer-level choices of the inference fast path, each timed against the plain way.

    python -m benchmarks.fast_layers [--quick]

1. **Odd input channels padded by one.** ``PackedConv3d`` can pad an RGB input (3 channels) with a
   zero channel, which changes no output; oneDNN's bf16 AMX kernels pair input channels. Timed on
   the first layers of res3d18 (3×7×7, stride 1×2×2, at 8×112²) and C3D (3×3×3 at 16×112²), in
   fp32 and bf16, at batch 1 and 8, with the choice ``pad_odd_channels=None`` makes on this machine
   (it times both once per input shape).
2. **Max-pool of a ReLU's output as int16.** C3D's pool1 (1×2×2 on 64×16×112²) and pool2 (2×2×2 on
   128×16×56²) in bf16, channels-last: ATen's ``max_pool3d`` against the maximum of the window's
   strided views read as int16 (``_max_pool_as_int16``), with whether the outputs are identical.

Both run round-robin (one untimed call each, then alternating), ms per call, median (min–max).

3. **The input cast.** A clip arrives as fp32 NCDHW; the bf16 fast path needs bf16 channels-last.
   ``x.to(dtype, memory_format=…)`` in one copy against two copies in turn (``InferenceModel``'s).
4. **Where res3d18's and C3D's time goes, layer by layer** (bf16 fast path, batch 8, the vidnets
   default on CPUs where bf16 measures faster): each leaf module's ms per call (median of 5 calls,
   timed with forward hooks), its share of the model's call, and each convolution's GFLOP/s beside
   that of a 256-channel 3×3×3 convolution on the same kernel timed in the same run (the bf16 peak
   kernel of ``python -m benchmarks.models``).
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from benchmarks import common

NAME = "fast_layers"
# name: (kernel, stride, padding, frames, side)
FIRST_LAYERS = {
    "res3d18 conv1": ((3, 7, 7), (1, 2, 2), (1, 3, 3), 8, 112),
    "c3d conv1a": ((3, 3, 3), (1, 1, 1), (1, 1, 1), 16, 112),
}
# name: (channels, frames, side, kernel)
POOLS = {"c3d pool1": (64, 16, 112, (1, 2, 2)), "c3d pool2": (128, 16, 56, (2, 2, 2))}


def _versus(plain: Callable[[], Any], other: Callable[[], Any], repeats: int) -> list[str]:
    """ms per call of each, median (min–max), timed round-robin after one untimed call, and how
    many times faster ``other`` ran."""
    secs = common.time_alternating({"plain": plain, "other": other}, warmup=1, repeats=repeats)
    ms = {k: common.Stats([1e3 * t for t in s.samples]) for k, s in secs.items()}
    speed_up = common.ratio(secs["plain"], secs["other"])
    return [common.fmt_stats(ms["plain"]), common.fmt_stats(ms["other"]), f"{speed_up:.2f}×"]


def _first_layer_rows(quick: bool) -> list[list[str]]:
    import copy

    import torch
    from torch import nn

    from vidnets.engine.fastpath import PackedConv3d, to_channels_last

    rows = []
    side_of = (lambda s: 32) if quick else (lambda s: s)
    for name, (kernel, stride, padding, frames, side) in FIRST_LAYERS.items():
        for dtype, label in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
            for batch in (1, 2) if quick else (1, 8):
                x = to_channels_last(torch.randn(batch, 3, frames, side_of(side), side_of(side))).to(dtype)
                conv = nn.Conv3d(3, 64, kernel, stride, padding).eval().requires_grad_(False)
                conv.__class__ = PackedConv3d
                conv.activation = "relu"
                conv.to(dtype).to(memory_format=torch.channels_last_3d)
                convs = {}
                for setting in (False, True, None):
                    convs[setting] = copy.deepcopy(conv)
                    convs[setting].pad_odd_channels = setting
                with torch.inference_mode():
                    timed = _versus(lambda: convs[False](x), lambda: convs[True](x), 2 if quick else 7)
                    convs[None](x)  # the default: times both once for this shape and keeps the faster
                    diff = (convs[False](x).float() - convs[True](x).float()).abs().max().item()
                picked = next(iter(convs[None].__dict__["_packed_weights"].values()))[1]
                where = f"{name} at {batch}×{frames}×{side_of(side)}²"
                rows.append([where, label, *timed, "padded" if picked else "3 channels", f"{diff:.1e}"])
    return rows


def _pool_rows(quick: bool) -> list[list[str]]:
    import torch
    import torch.nn.functional as F

    from vidnets.engine.fastpath import _max_pool_as_int16, to_channels_last

    rows = []
    batch = 1 if quick else 8
    for name, (channels, frames, side, kernel) in POOLS.items():
        side = side // 4 if quick else side
        x = to_channels_last(torch.relu(torch.randn(batch, channels, frames, side, side))).to(torch.bfloat16)
        with torch.inference_mode():
            timed = _versus(lambda: F.max_pool3d(x, kernel), lambda: _max_pool_as_int16(x, kernel), 2 if quick else 7)
            same = torch.equal(F.max_pool3d(x, kernel), _max_pool_as_int16(x, kernel))
        where = f"{name} {'×'.join(map(str, kernel))} on {batch}×{channels}×{frames}×{side}²"
        rows.append([where, *timed, "yes" if same else "**no**"])
    return rows


# model: (frames, side) of its input
LAYER_MODELS = {"res3d18": (8, 112), "c3d": (16, 112)}


def _cast_rows(quick: bool) -> list[list[str]]:
    import torch

    rows = []
    batch = 1 if quick else 8
    layout = torch.channels_last_3d
    for name, (frames, side) in LAYER_MODELS.items():
        x = torch.randn(batch, 3, frames, side, side)
        timed = _versus(
            lambda: x.to(dtype=torch.bfloat16, memory_format=layout),
            lambda: x.to(torch.bfloat16).contiguous(memory_format=layout),
            3 if quick else 9,
        )
        rows.append([f"{name}'s input, {batch}×3×{frames}×{side}²", *timed])
    return rows


def _layer_rows(quick: bool) -> list[list[str]]:
    import math
    import statistics
    import time

    import torch
    from torch import nn

    from vidnets.engine.fastpath import PackedConv3d, prepare_for_inference, to_channels_last
    from vidnets.models import create

    batch, calls = (1, 2) if quick else (8, 5)
    reference = nn.Conv3d(256, 256, 3, padding=1, bias=False).eval().requires_grad_(False)
    reference.__class__ = PackedConv3d
    reference.to(torch.bfloat16).to(memory_format=torch.channels_last_3d)
    ref_x = to_channels_last(torch.randn(batch, 256, 2, 14, 14)).to(torch.bfloat16)
    ref_gflop = 2 * ref_x.numel() * 256 * 27 / 1e9
    rows = []
    for name, (frames, side) in LAYER_MODELS.items():
        fast = prepare_for_inference(create(name, num_classes=101).eval(), precision="bf16", copy=False)
        x = torch.randn(batch, 3, frames, side, side)
        times: dict[str, list[float]] = {}
        gflop: dict[str, float] = {}

        def start(module, _input):
            module._started = time.perf_counter()

        def stop(module, _input, output):
            times.setdefault(module._layer, []).append(time.perf_counter() - module._started)
            if isinstance(module, nn.Conv3d):
                taps = module.in_channels // module.groups * math.prod(module.kernel_size)
                gflop[module._layer] = 2 * output.numel() * taps / 1e9

        for layer, module in fast.module.named_modules():
            if not any(True for _ in module.children()):
                module._layer = layer
                module.register_forward_pre_hook(start)
                module.register_forward_hook(stop)
        with torch.inference_mode():
            fast(x)
            reference(ref_x)
            times.clear()
            totals, ref_rates = [], []
            for _ in range(calls):
                t0 = time.perf_counter()
                fast(x)
                totals.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                reference(ref_x)
                ref_rates.append(ref_gflop / (time.perf_counter() - t0))
        total, ref_rate = statistics.median(totals), statistics.median(ref_rates)
        listed = 0.0
        for layer, samples in times.items():
            t = statistics.median(samples)
            if t < 0.01 * total:
                continue
            listed += t
            rate = gflop[layer] / t if layer in gflop else None
            rows.append(
                [
                    f"{name} {layer}",
                    f"{1e3 * t:.1f}",
                    f"{t / total:.0%}",
                    common.fmt_num(rate) if rate else "",
                    f"{rate / ref_rate:.0%}" if rate else "",
                ]
            )
        rows.append(
            [
                f"{name}: the rest (layers under 1 %, input cast, hooks)",
                f"{1e3 * (total - listed):.1f}",
                f"{(total - listed) / total:.0%}",
                "",
                "",
            ]
        )
        rows.append(
            [
                f"**{name} at {batch}×{frames}×{side}²**",
                f"**{1e3 * total:.1f}**",
                "100%",
                "",
                f"256-ch kernel: {common.fmt_num(ref_rate)} GFLOP/s",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = common.make_parser(__doc__.splitlines()[0]).parse_args(argv)

    import torch

    common.setup_threads(args.threads)
    torch.manual_seed(0)
    body = "\n\n".join(
        [
            "First layers (64 output channels, ReLU fused), channels-last; ms per call, median (min–max); "
            "`auto picks`: what `pad_odd_channels=None` chose for that shape, timing both once.",
            common.markdown_table(
                [
                    "layer",
                    "precision",
                    "3 channels ms",
                    "padded to 4 ms",
                    "speed-up",
                    "auto picks",
                    "max abs difference",
                ],
                _first_layer_rows(args.quick),
            ),
            "Max-pools of a ReLU's output, bf16, channels-last; ms per call, median (min–max).",
            common.markdown_table(
                ["pool", "ATen ms", "int16 ms", "speed-up", "identical"],
                _pool_rows(args.quick),
            ),
            "fp32 NCDHW clip → bf16 channels-last; ms per call, median (min–max).",
            common.markdown_table(
                ["input", "one copy ms", "two copies ms", "speed-up"],
                _cast_rows(args.quick),
            ),
            "res3d18 and C3D on the bf16 fast path, layer by layer: ms per call (median), share of the "
            "model's call, GFLOP/s, and that rate against the 256-channel convolution's in the same run.",
            common.markdown_table(
                ["layer", "ms", "of the call", "GFLOP/s", "vs 256-ch kernel"],
                _layer_rows(args.quick),
            ),
        ]
    )
    common.publish(
        NAME,
        "Fast path, layer by layer: padded RGB input, int16 max-pool, input cast, time per layer",
        body,
        args,
        argv,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
