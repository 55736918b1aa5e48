"""``vidnets check PATH...`` (probe videos, report bad ones) and ``vidnets synth OUT``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _expand(paths: list[str]) -> list[str]:
    from vidnets.data.video import VIDEO_EXTENSIONS

    out = []
    for p in paths:
        if os.path.isdir(p):
            out += sorted(str(f) for f in Path(p).rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS)
        else:
            out.append(p)
    return out


def run_check(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor
    from functools import partial

    if args.workers < 1:
        raise ValueError(f"check: --workers must be >= 1, found {args.workers}")
    missing = [p for p in args.paths if not os.path.exists(p)]
    if len(missing) == len(args.paths):  # nothing to check: a wrong path, not a damaged video
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise FileNotFoundError(f"check: no such file or folder {missing[0]}{more}")
    files = _expand(args.paths)
    if not files:
        raise ValueError(f"check: no video files found in {', '.join(args.paths)}")
    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        results = list(pool.map(partial(_check_one, deep=args.deep), files))
    bad = sum("error" in r for r in results)
    if args.json:
        print(json.dumps([{"path": f, **r} for f, r in zip(files, results)], indent=2))
    else:
        for f, r in zip(files, results):
            if "error" in r:
                print(f"BAD  {f}: {r['error']}")
            else:
                short = r.get("decoded") is not None and r["decoded"] < r["num_frames"]
                print(
                    f"ok   {f}: {r['num_frames']} frames, {r['fps']:g} fps, {r['width']}x{r['height']}, "
                    f"{r['codec']}"
                    + (f", rotation {r['rotation']}" if r.get("rotation") else "")
                    + (f" (decodes {r['decoded']}; the last frame repeats for the rest)" if short else "")
                )
        print(f"{len(files) - bad} ok, {bad} bad", file=sys.stderr)
    return 1 if bad else 0


def _check_one(path: str, deep: bool) -> dict:
    """``check_video`` for a file (``probe_any`` for a raw-frame folder), errors as ``{"error": ...}``."""
    from vidnets.data.cache import probe_any
    from vidnets.data.video import check_video

    if os.path.isdir(path):
        return probe_any(path)
    try:
        return check_video(path, deep=deep)
    except Exception as e:  # noqa: BLE001 - a bad file is a result, not a crash
        return {"error": str(e)}


def run_synth(args: argparse.Namespace) -> int:
    import time

    from vidnets.data.synthetic import generate_dataset
    from vidnets.utils.io import ensure_writable_dir

    for flag in ("classes", "videos_per_class", "frames", "size"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:  # --classes: None = the family's
            raise ValueError(f"synth: --{flag.replace('_', '-')} must be >= 1, found {getattr(args, flag)}")
    ensure_writable_dir(args.out, "synth output folder")
    start = time.perf_counter()
    try:
        out = generate_dataset(
            args.out,
            num_classes=args.classes,
            videos_per_class=args.videos_per_class,
            frames=args.frames,
            size=args.size,
            seed=args.seed,
            family=args.family,
        )
    except ValueError as e:
        print(f"vidnets synth: {e}", file=sys.stderr)
        return 2
    classes = (out / "classInd.txt").read_text().count("\n")
    print(
        f"wrote {classes}×{args.videos_per_class} {args.family} videos ({args.frames} frames, {args.size}²) "
        f"to {out} in {time.perf_counter() - start:.1f} s"
    )
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "check",
        help="probe videos in parallel; exit 1 if any is bad",
        description="Probe each video and decode its key frames and last frame (catches "
        "truncated files and damaged key frames). --deep decodes every frame "
        "and judges the file exactly as training reads it.",
    )
    p.add_argument("paths", nargs="+", help="video files or folders (searched recursively)")
    p.add_argument("--deep", action="store_true", help="decode the whole stream of every file (slower)")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--json", action="store_true", help="print one JSON record per file")
    p.set_defaults(func=run_check)

    s = subparsers.add_parser(
        "synth",
        help="write a synthetic action dataset (motion-only, mirrored pairs, order of events or appearance-only)",
    )
    s.add_argument("out")
    s.add_argument(
        "--family",
        choices=("motion", "mirrored", "order", "appearance"),
        default="motion",
        help="motion: 8 motion-only classes; mirrored: pairs a horizontal flip swaps; "
        "order: 2 classes that differ only in the order of two events; "
        "appearance: 6 classes that differ only in the shape and colour of the objects seen",
    )
    s.add_argument(
        "--classes",
        type=int,
        default=None,
        help="the family's first N classes (default: 6 for motion, all for the others)",
    )
    s.add_argument("--videos-per-class", type=int, default=32)
    s.add_argument("--frames", type=int, default=32)
    s.add_argument("--size", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=run_synth)
