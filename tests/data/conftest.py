"""Fixtures for the data tests: a tiny synthetic dataset written once per session."""

from __future__ import annotations

import pytest

from vidnets.data.synthetic import generate_dataset


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    """4 classes × 4 videos, 20 frames of 32×32 (seed 3)."""
    return generate_dataset(
        tmp_path_factory.mktemp("synth"), num_classes=4, videos_per_class=4, frames=20, size=32, seed=3
    )
