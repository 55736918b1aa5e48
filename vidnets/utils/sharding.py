"""Which slice of a long job this process does: ``--shard i/n`` or torchrun's RANK/WORLD_SIZE."""

from __future__ import annotations

import os
from typing import Sequence, TypeVar

T = TypeVar("T")

__all__ = ["parse_shard", "current_shard", "take_shard"]


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"i/n"`` (0 ≤ i < n) into ``(i, n)``."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise ValueError(f"--shard: expected i/n such as 0/4, found {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--shard: expected 0 <= i < n, found {text!r}")
    return i, n


def current_shard(shard: str | None = None) -> tuple[int, int]:
    """The explicit ``shard`` if given, else RANK/WORLD_SIZE from torchrun, else ``(0, 1)``."""
    if shard:
        return parse_shard(shard)
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return rank, world


def take_shard(items: Sequence[T], index: int, count: int) -> list[T]:
    """Every ``count``-th item starting at ``index``: shards are disjoint and cover all items."""
    return list(items[index::count])
