"""Batch-1 3D convolutions: PyTorch's own choice of kernel against oneDNN called directly.

    python -m benchmarks.conv_dispatch [--quick]

PyTorch's CPU dispatcher sends a Conv3d whose input has batch 1 and N·C·T·H ≤ 20480 to its
``slow_conv3d`` (im2col + GEMM) instead of oneDNN. That covers most layers of res3d18 and C3D at
batch 1, the usual case for ``vidnets predict`` and for feature extraction.
``vidnets.engine.fastpath.OneDNNConv3d`` calls oneDNN directly. For the 3×3×3 layers of res3d18 at
8×112² (channels-last, fp32), this benchmark gives the kernel PyTorch picks and the time per call
of ``F.conv3d`` against ``OneDNNConv3d``, timed round-robin, with the largest output difference.
"""

from __future__ import annotations

import sys

from benchmarks import common

NAME = "conv_dispatch"
# (channels, T, H=W) of res3d18's 3×3×3 convolutions at an 8×112² input: conv2_x … conv5_x
LAYERS = ((64, 8, 56), (128, 4, 28), (256, 2, 14), (512, 1, 7))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = common.make_parser(__doc__.splitlines()[0]).parse_args(argv)

    import torch
    import torch.nn.functional as F

    from vidnets.engine.fastpath import OneDNNConv3d, to_channels_last

    common.setup_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for channels, frames, size in LAYERS[:2] if args.quick else LAYERS:
        conv = OneDNNConv3d(channels, channels, 3, padding=1, bias=False).eval()
        conv.weight.data = to_channels_last(conv.weight.data)
        x = to_channels_last(torch.randn(1, channels, frames, size, size))
        backend = torch._C._select_conv_backend(
            x, conv.weight, None, [1] * 3, [1] * 3, [1] * 3, False, [0] * 3, 1, None
        )
        with torch.inference_mode():
            secs = common.time_alternating(
                {"pytorch": lambda: F.conv3d(x, conv.weight, padding=1), "onednn": lambda: conv(x)},
                warmup=1,
                repeats=3 if args.quick else 9,
            )
            diff = (F.conv3d(x, conv.weight, padding=1) - conv(x)).abs().max().item()
        ms = {k: common.Stats([1e3 * t for t in s.samples]) for k, s in secs.items()}
        rows.append(
            [
                f"{channels}→{channels} at 1×{frames}×{size}²",
                str(backend).split(".")[-1],
                common.fmt_stats(ms["pytorch"]),
                common.fmt_stats(ms["onednn"]),
                f"{common.ratio(secs['pytorch'], secs['onednn']):.2f}×",
                f"{diff:.1e}",
            ]
        )
    body = "\n\n".join(
        [
            "3×3×3 convolutions of res3d18 at batch 1, channels-last, fp32; ms per call, median (min–max).",
            common.markdown_table(
                ["layer", "PyTorch's kernel", "F.conv3d ms", "OneDNNConv3d ms", "speed-up", "max abs difference"], rows
            ),
        ]
    )
    common.publish(NAME, "Batch-1 3D convolutions: PyTorch's dispatch vs oneDNN", body, args, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
