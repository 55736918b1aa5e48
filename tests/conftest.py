"""Shared fixtures: the real clips in ../shared/data/videos (tests skip cleanly without them)."""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent / "engine"))  # helpers.py: tiny models and datasets

# Metadata caches of the runs tests start go to a throw-away folder, never the user's ~/.cache.
os.environ.setdefault("VIDNETS_CACHE", tempfile.mkdtemp(prefix="vidnets-test-cache-"))


def shared_videos_dir() -> Path:
    return Path(os.environ.get("VIDNETS_SHARED_VIDEOS", REPO.parent / "shared" / "data" / "videos"))


@pytest.fixture(scope="session")
def shared_videos() -> Path:
    """The folder of real labelled clips; skips the test when it is absent."""
    root = shared_videos_dir()
    if not (root / "labels.csv").is_file():
        pytest.skip(f"real clips not found at {root}")
    return root


@pytest.fixture(scope="session")
def shared_clips(shared_videos) -> list[dict]:
    """Rows of clips_meta.csv (path made absolute), one per real clip."""
    with open(shared_videos / "clips_meta.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["abspath"] = str(shared_videos / row["path"])
    return rows


@pytest.fixture
def one_thread():
    """Run a test on one intra-op thread (restored afterwards). Nets of hundreds of tiny ops gain
    nothing from a second thread, and on a busy 2-core machine OpenMP barriers can stall them 10×+."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
