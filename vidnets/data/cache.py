"""Per-file metadata cache, so building a dataset of 100k videos does not re-probe every file.

Entries (frames, fps, size, codec, or the probe error) are keyed by the file's real path (symlinks
resolved to their targets, so a folder of links to one file probes it once) and stay valid while
that file's size and modification time are unchanged. ``get_many`` resolves each distinct path
string once and probes each distinct uncached target once, so an index of a million entries
costs one lookup per distinct file, not per entry. The cache is one JSON file written
atomically (temp file + rename), so an interrupted run never leaves it half-written. Probing of
the files that are not cached runs in a thread pool (PyAV releases the GIL while demuxing and
decoding).
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vidnets.utils.io import atomic_write_json

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    return Path(os.environ.get("VIDNETS_CACHE", Path.home() / ".cache" / "vidnets"))


def _file_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def probe_any(path: str) -> dict:
    """Probe a video file or a raw-frame folder → dict of metadata, or ``{"error": message}``."""
    from vidnets.data.frames import count_frames
    from vidnets.data.video import VideoError, probe

    try:
        if os.path.isdir(path):
            n = count_frames(path)
            if n == 0:
                raise VideoError(f"{path}: raw-frame folder has no img_XXXXX.jpg frames")
            return {"num_frames": n, "fps": 0.0, "width": 0, "height": 0, "codec": "jpeg-frames"}
        return probe(path).to_dict()
    except Exception as e:  # a bad file is data, not a crash
        return {"error": str(e)}


class MetadataCache:
    """``cache.get_many(paths, workers=...)`` → ``{path: metadata dict}`` (probing only what changed).

    ``path=None`` keeps the cache in memory only.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else None
        self._entries: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._dirty = False
        self.probed = 0  # files probed (not found in the cache) since construction
        if self.path is not None and self.path.parent.is_dir():
            from vidnets.utils.io import remove_stale_temps

            remove_stale_temps(self.path.parent, min_age_s=3600)  # left by a killed save; live ones are younger
        if self.path is not None and self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
                if data.get("version") == CACHE_VERSION:
                    self._entries = data.get("entries", {})
            except (OSError, ValueError):
                self._entries = {}  # a damaged cache is rebuilt, never trusted

    def _lookup(self, path: str) -> dict | None:
        key = _file_key(path)
        entry = self._entries.get(path)
        if entry is None or key is None or entry.get("key") != list(key):
            return None
        return entry["meta"]

    def get(self, path: str | os.PathLike) -> dict:
        return self.get_many([path])[str(path)]

    def get_many(self, paths: Iterable[str | os.PathLike], *, workers: int = 4) -> dict[str, dict]:
        """``{path as given (str): metadata}``; every distinct real file is looked up or probed once."""
        given = list(dict.fromkeys(str(p) for p in paths))
        target_of = {p: os.path.realpath(p) for p in given}
        found: dict[str, dict] = {}
        todo = []
        for target in dict.fromkeys(target_of.values()):
            meta = self._lookup(target)
            if meta is None:
                todo.append(target)
            else:
                found[target] = meta
        if todo:
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                for target, meta in zip(todo, pool.map(probe_any, todo)):
                    found[target] = meta
                    key = _file_key(target)
                    with self._lock:
                        self.probed += 1
                        if key is not None:  # a missing file is reported, not cached
                            self._entries[target] = {"key": list(key), "meta": meta}
                            self._dirty = True
            self.save()
        return {p: found[target_of[p]] for p in given}

    def save(self) -> None:
        """Write the cache file. A cache that cannot be written (read-only or full disk) only costs
        re-probing next time: it warns and keeps the entries in memory instead of failing the run."""
        if self.path is None or not self._dirty:
            return
        with self._lock:
            try:
                atomic_write_json(self.path, {"version": CACHE_VERSION, "entries": self._entries})
            except OSError as e:
                warnings.warn(
                    f"metadata cache {self.path} not written ({e.strerror or e}); files will be probed "
                    "again next time (set VIDNETS_CACHE to a writable folder)",
                    stacklevel=2,
                )
                self.path = None
            self._dirty = False
