"""``vidnets flow extract VIDEOS... --out DIR`` and ``vidnets flow show FLOWDIR|VIDEO --out DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size: expected WxH such as 340x256, found {text!r}") from None
    return width, height


def register(subparsers) -> None:
    flow = subparsers.add_parser("flow", help="optical flow: extract and show")
    commands = flow.add_subparsers(dest="flow_command", metavar="{extract,show}")
    flow.set_defaults(func=lambda args: (flow.print_help(), 2)[1])

    extract = commands.add_parser("extract", help="compute dense flow for videos, store as quantised JPEG")
    extract.add_argument("videos", nargs="+", help="video files (or text files with one path per line, @list.txt)")
    extract.add_argument(
        "--out",
        required=True,
        help="output root: one folder per video, named after its stem (its relative path when two videos share a stem)",
    )
    extract.add_argument(
        "--method",
        default="tvl1",
        choices=["tvl1", "farneback", "dis"],
        help="tvl1 (default: most accurate, TSN's method), dis (about 80× faster) or farneback; "
        "error and speed of each in BENCHMARKS.md",
    )
    extract.add_argument(
        "--dis-preset", default="medium", choices=["ultrafast", "fast", "medium"], help="DIS preset (default medium)"
    )
    extract.add_argument(
        "--tvl1-scales",
        type=int,
        default=0,
        help="TV-L1 pyramid levels (step 0.8); 0 (default): as many as keep the short side "
        ">= 16 px; 5: dense_flow's (TSN), which misses motions beyond about 3 px on fine "
        "texture",
    )
    extract.add_argument("--bound", type=float, default=20.0, help="clip |flow| to this many pixels (default 20)")
    extract.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    sizing = extract.add_mutually_exclusive_group()
    sizing.add_argument("--short-side", type=int, default=256, help="resize so the short side is this (default 256)")
    sizing.add_argument("--size", type=_size, help="resize to WxH, e.g. 340x256 (TSN)")
    sizing.add_argument("--keep-size", action="store_true", help="no resizing")
    extract.add_argument("--backward", action="store_true", help="also store backward flow (flow_bx_/flow_by_)")
    extract.add_argument("--warp", action="store_true", help="warped flow: camera homography compensated (TSN)")
    extract.add_argument("--workers", type=int, default=1, help="processes (one video each)")
    extract.add_argument("--shard", help="i/n: do every n-th video from i (default: RANK/WORLD_SIZE or all)")
    extract.add_argument(
        "--overwrite",
        action="store_true",
        help="recompute videos that are already complete; without it, a folder holding flow "
        "with other settings or of another video stops the run before any work",
    )
    extract.set_defaults(func=run_extract)

    show = commands.add_parser(
        "show",
        help="colour-coded flow PNGs and an RGB|flow strip",
        description="Colour each flow field (hue: direction, brightness: speed, full at the 99th percentile "
        "of the magnitude over the fields shown) and write flow_00001.png … and strip.png (RGB "
        "frames above their flow) with a colour key: the wheel's rim is the speed in px/frame "
        "that shows at full brightness.",
    )
    show.add_argument("source", help="a flow folder (flow_x_00001.jpg …) or a video")
    show.add_argument("--out", required=True, help="folder for flow_00001.png … and strip.png")
    show.add_argument("--max-fields", type=int, default=16, help="the first N flow fields (default 16)")
    show.add_argument("--method", default="dis", choices=["tvl1", "farneback", "dis"], help="for a video source")
    show.add_argument("--video", help="RGB frames for a flow folder (default: the video in meta.json)")
    show.add_argument("--field-legend", action="store_true", help="the colour key on every field's PNG too")
    show.set_defaults(func=run_show)


def _expand(paths: list[str]) -> list[str]:
    out = []
    for item in paths:
        if item.startswith("@"):
            with open(item[1:]) as f:
                out += [line.strip() for line in f if line.strip()]
        else:
            out.append(item)
    return out


def run_extract(args) -> int:
    from vidnets.flow.extract import FlowOptions, TVL1Params, extract_videos

    if args.workers < 1:
        print(f"vidnets flow extract: --workers must be >= 1, found {args.workers}", file=sys.stderr)
        return 2
    videos = _expand(args.videos)
    missing = [v for v in videos if not Path(v).is_file()]
    if videos and len(missing) == len(videos):  # nothing to extract: a wrong path, not a damaged video
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        print(
            f"vidnets flow extract: no such video file {missing[0]}{more}; check the paths or the @list file",
            file=sys.stderr,
        )
        return 2
    quiet = getattr(args, "quiet", False)  # -q: errors only, so no progress bar or summary
    try:
        options = FlowOptions(
            method=args.method,
            bound=args.bound,
            jpeg_quality=args.quality,
            short_side=None if (args.keep_size or args.size) else args.short_side,
            size=args.size,
            backward=args.backward,
            warp=args.warp,
            tvl1=TVL1Params(scales=args.tvl1_scales),
            dis_preset=args.dis_preset,
        )
        results = extract_videos(
            videos,
            args.out,
            options,
            workers=args.workers,
            shard=args.shard,
            overwrite=args.overwrite,
            progress=not quiet,
        )
    except ValueError as error:  # e.g. two videos with the same stem, a malformed --shard
        print(f"vidnets flow extract: {error}", file=sys.stderr)
        return 2
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    if not quiet:
        print(f"flow: {counts['done']} extracted, {counts['skipped']} already complete, {counts['failed']} failed")
    for r in results:
        if r.status == "failed":
            print(f"  failed: {r.video}: {r.error.splitlines()[0]}", file=sys.stderr)
    return 1 if counts["failed"] else 0


def run_show(args) -> int:
    from vidnets.flow.visualize import show
    from vidnets.utils.io import ensure_writable_dir

    if args.max_fields < 1:
        raise ValueError(f"flow show: --max-fields must be >= 1, found {args.max_fields}")
    ensure_writable_dir(args.out, "flow show output folder")
    written = show(
        args.source,
        args.out,
        max_fields=args.max_fields,
        method=args.method,
        video=args.video,
        field_legend=args.field_legend,
    )
    print(f"wrote {len(written)} images to {args.out} (strip: {written[-1]})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m vidnets.flow.commands flow extract …``: the flow commands without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="vidnets")
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
