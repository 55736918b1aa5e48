"""Loader throughput: sparse seeking vs. full decoding, and a 2-worker DataLoader.

Measures clips/s of ``vidnets.data`` datasets (decode + per-paper transform, one process) for
C3D-style clips (16 consecutive frames, 128×171, crop 112) and TSN-style samples (3 segments ×
1 frame, 256×340, multi-scale crop 224), on

* the real clips in ``../shared/data/videos`` (18 clips, 224² … 1280×720, mpeg4 and h264), and
* one long synthetic video: 10 minutes, 320×240, 25 fps, H.264 (libx264 ``veryfast``, B-frames,
  **GOP 250** = one key frame every 10 s, the x264 default), generated once into
  ``~/.cache/vidnets/bench`` (or ``$VIDNETS_CACHE/bench``).

The baseline decodes every frame from the start up to the last wanted one, converting only the
wanted frames (the cheapest possible full decode), followed by the same transform; both variants
are timed round-robin in the same run. Then a ``DataLoader`` with 2 workers delivers Res3D-style
training clips (8 frames at stride 2, 3×8×112×112, batch 8) from the real clips. TorchCodec and
decord are measured only when they import.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import common

LONG_SECONDS, LONG_FPS, LONG_GOP = 600, 25, 250


def long_video_path() -> Path:
    from vidnets.data.cache import default_cache_dir

    return default_cache_dir() / "bench" / f"long_{LONG_SECONDS}s_320x240_h264_gop{LONG_GOP}.mp4"


def make_long_video(path: Path) -> Path:
    """A 10-minute 320×240 H.264 video of a drifting texture and a moving square (cached)."""
    if path.is_file():
        return path
    import av
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    texture = (
        cv2.resize(rng.uniform(0, 255, (24, 32, 3)).astype(np.float32), (640, 480), interpolation=cv2.INTER_CUBIC)
        .clip(0, 255)
        .astype(np.uint8)
    )
    tmp = path.with_name(path.name + ".part.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream(
            "libx264",
            rate=LONG_FPS,
            options={"preset": "veryfast", "keyint": str(LONG_GOP), "min-keyint": str(LONG_GOP), "scenecut": "0"},
        )
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for t in range(LONG_SECONDS * LONG_FPS):
            y, x = int(120 + 100 * np.sin(t / 90)), int(160 + 150 * np.cos(t / 130))
            frame = texture[y : y + 240, x : x + 320].copy()
            sy, sx = (t * 3) % 200, (t * 5) % 280
            frame[sy : sy + 40, sx : sx + 40] = (255, (t * 7) % 256, 0)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return path


def _full_decode_dataset(ds):
    """The same dataset, but decoding sequentially from frame 0 (no seeking)."""
    from vidnets.data.video import read_frames_sequential

    class FullDecode(type(ds)):
        def _decode(self, rec, indices):
            return read_frames_sequential(rec.path, indices, size=self.decode_size, threads=1)

    clone = FullDecode.__new__(FullDecode)
    clone.__dict__.update(ds.__dict__)
    return clone


def _sweep(ds, n: int, seed: int = 0):
    """A callable loading items 0..n-1 (cycling) with a fixed RNG; raises on bad items."""

    def run():
        rng = np.random.default_rng(seed)
        for i in range(n):
            ds.load(i % len(ds), rng)

    return run


def _optional_decoders() -> list[str]:
    notes = []
    for name in ("torchcodec", "decord"):
        try:
            __import__(name)
            notes.append(f"{name}: importable but not benchmarked here (no adapter timed)")
        except Exception as e:
            notes.append(f"{name}: not measured — it does not import here ({type(e).__name__})")
    return notes


def _loader_rate(ds, batches: int, workers: int, batch_size: int = 8) -> tuple[float, int]:
    import torch
    from torch.utils.data import DataLoader

    from vidnets.data.datasets import collate_skip_bad

    torch.manual_seed(0)
    loader = DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate_skip_bad,
        persistent_workers=False,
    )
    it = iter(loader)
    next(it)  # worker start-up is not steady-state loading
    start, clips = time.perf_counter(), 0
    for _ in range(batches):
        try:
            clips += next(it)["label"].numel()
        except StopIteration:
            break
    return clips / (time.perf_counter() - start), clips


def main(argv: list[str] | None = None) -> int:
    parser = common.make_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    common.setup_threads(args.threads)
    repeats = 2 if args.quick else 5
    from vidnets.data.datasets import VideoRecord
    from vidnets.data.presets import build_dataset

    clips_dir = Path(os.environ.get("VIDNETS_SHARED_VIDEOS", common.REPO_ROOT.parent / "shared" / "data" / "videos"))
    real = []
    if (clips_dir / "clips_meta.csv").is_file():
        import csv

        with open(clips_dir / "clips_meta.csv", newline="") as f:
            real = [VideoRecord(str(clips_dir / r["path"]), 0) for r in csv.DictReader(f)]
    t0 = time.perf_counter()
    long_path = make_long_video(long_video_path())
    made = time.perf_counter() - t0
    long = [VideoRecord(str(long_path), 0)]

    rows, notes = [], []
    sets = ([("real clips (18)", real, len(real))] if real else []) + [
        ("10-min 320×240 h264 GOP 250", long, 4 if args.quick else 8)
    ]
    for set_name, records, n in sets:
        for style, recipe in (("C3D 16×112²", "c3d"), ("TSN 3 seg 224²", "tsn_rgb")):
            name = f"{set_name} · {style}"
            if not common.selected(recipe, args.only):
                continue
            ds = build_dataset(recipe, records, train=True, on_error="raise")
            stats = common.time_alternating(
                {"sparse": _sweep(ds, n), "full": _sweep(_full_decode_dataset(ds), n)},
                warmup=0 if set_name.startswith("10-min") else 1,
                repeats=1 if (args.quick and set_name.startswith("10-min")) else repeats,
            )
            sparse, full = common.per_second(stats["sparse"], n), common.per_second(stats["full"], n)
            rows.append([name, common.fmt_stats(sparse), common.fmt_stats(full), f"{common.ratio(sparse, full):.1f}×"])
            print(rows[-1], flush=True)

    loader_rows = []
    if real and common.selected("res3d", args.only):
        ucf_like = [r for r in real if r.path.endswith(".avi")]  # UCF101/HMDB51 format: 320×240 xvid
        batches = 4 if args.quick else 12
        for set_name, records in (("all 18 real clips", real), (f"{len(ucf_like)} UCF101/HMDB51 AVIs", ucf_like)):
            ds = build_dataset("res3d", records * (64 // len(records) + 1), train=True)
            for workers in (0, 2):
                rate, clips = _loader_rate(ds, batches, workers)
                loader_rows.append(
                    [f"Res3D 3×8×112² (stride 2), batch 8, {workers} workers, {set_name}", f"{rate:.1f}", str(clips)]
                )
                print(loader_rows[-1], flush=True)

    notes += _optional_decoders()
    body = "\n\n".join(
        [
            "Clips/s of `VideoDataset` items (decode + transform, one process): sparse seeking vs. "
            "decoding every frame up to the last wanted one (same transform), timed round-robin; "
            "median (min–max) over rounds.",
            common.markdown_table(
                ["video set · sampling", "sparse (clips/s)", "full decode (clips/s)", "speed-up"], rows
            ),
            "DataLoader (clips/s after the first batch; the first batch includes worker start-up):",
            common.markdown_table(["loader", "clips/s", "clips timed"], loader_rows) if loader_rows else "(skipped)",
            f"Long video: `{long_path}` ({LONG_SECONDS} s, {LONG_FPS} fps, GOP {LONG_GOP}, libx264 veryfast; "
            f"{'generated in %.0f s' % made if made > 1 else 'cached'}).",
            "\n".join(f"- {n}" for n in notes),
        ]
    )
    common.publish("loader", "Video loader: sparse decoding vs. full decode", body, args, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
