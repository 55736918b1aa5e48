"""``vidnets serve`` under load on loopback: latency, throughput, refusals and memory growth.

    python -m benchmarks.serve [--quick] [--requests 200] [--concurrency 8] [--queue 8]

A res3d18 checkpoint (random weights, 101 classes, the res3d recipe's test protocol: 10 clips of
8 frames at 112², so 10 views per request; ``--quick``: width 16 and 4 views) is served by
``python -m vidnets serve`` in its own process. ``--concurrency`` client threads post a synthetic
4-second clip ``--requests`` times in all (no retries) and record each status and latency. The
server's resident memory (``VmRSS``) is read after a warm-up of ``--concurrency`` requests and at
the end. With ``--queue`` below ``--concurrency`` some requests are refused on purpose (503); any
other failure is counted as an error.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks import common

NAME = "serve"


def _checkpoint(folder: Path, quick: bool) -> Path:
    """A vidnets checkpoint of res3d18 with random weights and the res3d recipe's config."""
    from vidnets.engine.checkpoint import save_checkpoint
    from vidnets.engine.config import config_to_dict, load_config
    from vidnets.models import create

    kwargs = {"width": 16} if quick else {}
    sets = ["data.metadata_cache=null", "train.precision=fp32"] + (["data.test_kwargs={views: 4}"] if quick else [])
    cfg = load_config("res3d", sets)
    model = create("res3d18", num_classes=101, **kwargs)
    return save_checkpoint(
        folder / "res3d18.pt",
        model=model,
        config=config_to_dict(cfg),
        class_names=[f"class{i:03d}" for i in range(101)],
        model_name="res3d18",
        model_kwargs=kwargs,
    )


def _clip(folder: Path) -> bytes:
    from vidnets.data.synthetic import generate_dataset

    root = generate_dataset(folder / "videos", num_classes=2, videos_per_class=2, frames=100, size=128, seed=0)
    return sorted(root.glob("*/*.avi"))[0].read_bytes()


def _rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s*(\d+) kB", text, re.M).group(1)) / 1024


def _start_server(checkpoint: Path, queue: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "vidnets", "serve", str(checkpoint), "--port", str(port), "--queue", str(queue)],
        cwd=common.REPO_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not start within 60 s")


def _load(url: str, clip: bytes, requests: int, concurrency: int) -> list[tuple[int, float]]:
    """(status, seconds) of each request, ``concurrency`` at a time."""
    import httpx

    local = threading.local()

    def one(_):
        client = getattr(local, "client", None) or httpx.Client(timeout=600)
        local.client = client
        t0 = time.perf_counter()
        try:
            status = client.post(f"{url}/v1/predict", files={"file": ("clip.avi", clip, "video/x-msvideo")}).status_code
        except httpx.HTTPError:
            status = 0
        return status, time.perf_counter() - t0

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(requests)))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = common.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--queue", type=int, default=8, help="the server's --queue")
    args = parser.parse_args(argv)
    requests = 40 if args.quick and "--requests" not in argv else args.requests
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoint, clip = _checkpoint(folder, args.quick), _clip(folder)
        process, url = _start_server(checkpoint, args.queue)
        try:
            load = [os.getloadavg()[0]]
            _load(url, clip, args.concurrency, args.concurrency)  # warm-up: first calls, allocator pools
            rss_start = _rss_mib(process.pid)
            t0 = time.perf_counter()
            results = _load(url, clip, requests, args.concurrency)
            wall = time.perf_counter() - t0
            rss_end = _rss_mib(process.pid)
            load.append(os.getloadavg()[0])
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    ok = np.array([s for code, s in results if code == 200])
    refused = sum(code == 503 for code, _ in results)
    errors = len(results) - len(ok) - refused
    p50, p95, p99 = (np.percentile(ok, q) if len(ok) else float("nan") for q in (50, 95, 99))
    model = "res3d18 width 16, 4 views" if args.quick else "res3d18, 10 views of 8×112²"
    rows = [
        [
            model,
            f"{requests} at concurrency {args.concurrency}",
            args.queue,
            len(ok),
            refused,
            errors,
            f"{p50:.2f}",
            f"{p95:.2f}",
            f"{p99:.2f}",
            f"{len(ok) / wall:.2f}",
            f"{rss_start:.0f}",
            f"{rss_end - rss_start:+.1f}",
        ]
    ]
    body = "\n\n".join(
        [
            f"One 4-second 128×128 synthetic clip (MPEG-4 Part 2) ({len(clip) / 1024:.0f} KiB) posted {requests} "
            "times over loopback; "
            "latency in seconds of the requests answered 200; throughput = those per second of wall time; memory = "
            "the server process's resident set after a warm-up and its growth over the run.",
            common.markdown_table(
                [
                    "model",
                    "requests",
                    "queue",
                    "200",
                    "503",
                    "errors",
                    "p50 s",
                    "p95 s",
                    "p99 s",
                    "req/s",
                    "RSS MiB",
                    "RSS growth MiB",
                ],
                rows,
            ),
            f"Load average (1 min) of the machine at start and end: {load[0]:.1f}, {load[1]:.1f} "
            f"(other processes share these {os.cpu_count()} CPUs).",
        ]
    )
    common.publish(NAME, "vidnets serve under load (loopback)", body, args, argv)
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
