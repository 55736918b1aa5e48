"""Files that are never half-written, and checkpoints that cannot run code when loaded."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch

__all__ = [
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_torch_save",
    "load_checkpoint",
    "CheckpointError",
    "remove_stale_temps",
    "ensure_writable_dir",
    "unique_names",
]


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, damaged, holds code, or would hold non-finite weights."""


#: temp names made by :func:`atomic_open`: ``.<target name>.<random>.tmp``
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}\.tmp$")


def remove_stale_temps(folder: str | os.PathLike, min_age_s: float = 0.0) -> list[Path]:
    """Delete temp files that killed atomic writes left in ``folder`` (not recursive); returns them.

    Call it when a run or writer starts in ``folder``: no write of this process is in flight then.
    ``min_age_s`` spares temp files younger than that, for folders another live process may write.
    """
    import time

    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for entry in folder.iterdir():
        if _TEMP_NAME.match(entry.name) and entry.is_file():
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime >= min_age_s:
                    entry.unlink()
                    removed.append(entry)
    return removed


def unique_names(paths, key=lambda p: Path(p).name) -> dict[str, str]:
    """``{path: name}`` for output files: ``key(path)`` (default: the file name), or, for paths whose
    names collide, the path relative to their common folder (``a/clip.avi``, ``b/clip.avi``), so two
    inputs never share one output."""
    groups: dict[str, list[str]] = {}
    for path in dict.fromkeys(str(p) for p in paths):
        groups.setdefault(key(path), []).append(path)
    names = {}
    for name, group in groups.items():
        if len(group) == 1:
            names[group[0]] = name
            continue
        real = [os.path.realpath(p) for p in group]
        if len(set(real)) < len(real):
            raise ValueError(f"the same file is given twice under different names: {', '.join(group)}")
        common = os.path.commonpath([os.path.dirname(r) for r in real])
        for path, resolved in zip(group, real):
            names[path] = Path(os.path.relpath(resolved, common)).as_posix()
    return names


def ensure_writable_dir(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and prove that a file can be written there, before any work starts.

    Writes and deletes a 64 KiB probe file, so a read-only folder or a full disk is reported now
    (``OSError`` naming the folder) rather than after hours of compute.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".vidnets-write-probe.", suffix=".tmp") as f:
            f.write(b"\0" * 65536)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        code = e.errno or errno.EACCES
        raise OSError(code, f"{what} is not writable ({os.strerror(code)})", str(folder)) from None
    return folder


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    A crash or exception leaves ``path`` untouched (either the old file or nothing).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file ordinary permissions
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=True) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`atomic_open`. A full disk is raised as the ``OSError`` it is
    (torch wraps it in a RuntimeError about the zip writer's position)."""
    try:
        with atomic_open(path, "wb") as f:
            torch.save(obj, f)
    except RuntimeError as e:
        cause = e.__cause__ or e.__context__
        if isinstance(cause, OSError):
            raise OSError(cause.errno, cause.strerror, str(path)) from e
        raise


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint with weights-only unpickling (no arbitrary code runs).

    Raises ``FileNotFoundError`` when it is missing and :class:`CheckpointError` (a ``ValueError``)
    naming the file when it is truncated, damaged or holds code objects.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path}: no such file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises UnpicklingError / RuntimeError / EOFError
        reason = " ".join(str(e).split())[:300]
        raise CheckpointError(
            f"checkpoint {path}: cannot be loaded as weights-only; it is truncated, damaged or "
            f"holds code ({type(e).__name__}: {reason})"
        ) from e
