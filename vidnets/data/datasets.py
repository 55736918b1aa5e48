"""Dataset indexes (UCF101, HMDB51, Kinetics CSV, class folders, raw frames) and the clip dataset.

``load_annotations`` turns a dataset's own split files into ``VideoRecord``s; ``VideoDataset``
combines records × a frame sampler × a clip transform::

    record ──► frame count (record / metadata cache / demux index)
           ──► sampler(num_frames, rng) ──► SampledIndices (V, S, L)
           ──► decode the unique indices once (video: PyAV sparse seek; folder: JPEGs)
           ──► transform ──► {"clip", "label", "index", "path"[, "looped"]}
    any failure ──► {"error", "path", "index"}   (on_error="skip"; "raise" re-raises)

``collate_skip_bad`` drops error items and carries the skipped/looped files inside the batch, so
``EpochReport`` (and the trainer's ``skipped.txt``) count them correctly with any number of
DataLoader workers. Batch fields about them, all lists of ``str``, one entry per item:

``skipped``        ``"<path>: <reason>: <detail>"``, reason one of :data:`SKIP_REASONS`
``skipped_paths``  the paths alone, in the same order
``errors``         the full error messages, in the same order
``looped``         ``"<path>: looped: <n> frames, shorter than one clip"`` for clips that were looped
``looped_paths``   the paths alone
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vidnets.data.cache import MetadataCache
from vidnets.data.sampling import SampledIndices, worker_rng
from vidnets.data.video import VIDEO_EXTENSIONS, frame_index, read_frames


class AnnotationError(ValueError):
    """An annotation file is malformed: the message names the file and line and what was expected."""


#: why an item was skipped, as ``collate_skip_bad`` reports it
SKIP_REASONS = ("missing", "empty", "truncated", "undecodable", "crop larger than frame", "error")


def skip_reason(message: str) -> str:
    """The :data:`SKIP_REASONS` category of a load error message."""
    text = message.lower()
    if "no such file" in text or "not found" in text:
        return "missing"
    if "empty file" in text or "0 bytes" in text or "has no" in text and "frames" in text:
        return "empty"
    if "truncated" in text or "out of range" in text or "could not be decoded" in text:
        return "truncated"
    if "larger than the frames" in text:
        return "crop larger than frame"
    if "not a readable video" in text or "decod" in text or "demux" in text or "no video stream" in text:
        return "undecodable"
    return "error"


@dataclass(slots=True)
class VideoRecord:
    """One video: a file, or a folder of raw frames. ``task`` tells datasets apart in
    multi-task training (Two-Stream trains UCF101 and HMDB51 heads together)."""

    path: str
    label: int
    num_frames: int | None = None
    fps: float | None = None
    task: int = 0


# ---------------------------------------------------------------- annotation formats


def _classes_from_classind(path: Path) -> list[str]:
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or not re.fullmatch(r"\d+", parts[0]):
            raise AnnotationError(f"{path}:{n}: expected '<class number> <class name>', found {line.strip()!r}")
        rows.append(parts)
    rows.sort(key=lambda r: int(r[0]))
    return [r[1] for r in rows]


def _load_ucf101(root: Path, ann: Path, split: int, subset: str):
    class_ind = ann / "classInd.txt"
    if not class_ind.is_file():
        raise FileNotFoundError(f"{class_ind}: UCF101 classInd.txt not found (annotations={ann})")
    classes = _classes_from_classind(class_ind)
    lookup = {c: i for i, c in enumerate(classes)}
    list_file = ann / f"{'train' if subset == 'train' else 'test'}list{split:02d}.txt"
    if not list_file.is_file():
        raise FileNotFoundError(f"{list_file}: UCF101 split list not found")
    records = []
    for n, line in enumerate(list_file.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        rel = parts[0]
        cls = rel.replace("\\", "/").split("/")[0]
        if cls not in lookup:
            raise AnnotationError(
                f"{list_file}:{n}: class folder {cls!r} is not in {class_ind}; add it there or fix the line"
            )
        records.append(VideoRecord(str(root / rel), lookup[cls]))
    return records, classes


def _load_hmdb51(root: Path, ann: Path, split: int, subset: str):
    files = sorted(ann.glob(f"*_test_split{split}.txt"))
    if not files:
        raise FileNotFoundError(f"{ann}: no HMDB51 '*_test_split{split}.txt' files")
    wanted = {"train": "1", "test": "2", "val": "2", "unused": "0"}[subset]
    classes = [f.name[: -len(f"_test_split{split}.txt")] for f in files]
    records = []
    for label, (cls, f) in enumerate(zip(classes, files)):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2 or parts[1] not in ("0", "1", "2"):
                raise AnnotationError(f"{f}:{n}: expected '<video file> <0|1|2>', found {line.strip()!r}")
            if parts[1] == wanted:
                records.append(VideoRecord(str(root / cls / parts[0]), label))
    return records, classes


def _kinetics_path(root: Path, row: dict) -> str:
    name = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}.mp4"
    label = row["label"]
    candidates = [root / label / name, root / label.replace(" ", "_") / name, root / name]
    for c in candidates:
        if c.exists():
            return str(c)
    return str(candidates[0])


def _load_kinetics(root: Path, ann: Path, split: int, subset: str):
    """``label,youtube_id,time_start,time_end,split`` (files ``<label>/<id>_<start:06d>_<end:06d>.mp4``,
    label folders with spaces or underscores), or ``path,label`` (label = name or integer)."""
    csv_path = ann
    if ann.is_dir():
        found = [ann / f"{subset}.csv", ann / f"{'validate' if subset in ('val', 'test') else subset}.csv"]
        csv_path = next((p for p in found if p.is_file()), None)
        if csv_path is None:
            raise FileNotFoundError(f"{ann}: no {subset}.csv (give annotations=<csv file>)")
    columns = _csv_header(csv_path)
    if "youtube_id" in columns:
        _require_columns(csv_path, columns, ("label", "youtube_id", "time_start", "time_end"))
        dicts = [(n, dict(zip(columns, r))) for n, r in _csv_rows(csv_path, columns)]
        if "split" in columns:
            accept = {subset, "validate" if subset in ("val", "test") else subset}
            dicts = [(n, r) for n, r in dicts if r["split"] in accept]
        for n, r in dicts:
            _check_kinetics_row(csv_path, n, r)
        classes = sorted({r["label"] for _, r in dicts})
        lookup = {c: i for i, c in enumerate(classes)}
        return [VideoRecord(_kinetics_path(root, r), lookup[r["label"]]) for _, r in dicts], classes
    if {"path", "label"} <= set(columns):
        # streamed: a million-row index keeps only its paths and labels, not its rows
        path_at, label_at, base = columns.index("path"), columns.index("label"), str(root)
        paths, labels = [], []
        for n, r in _csv_rows(csv_path, columns):
            label = r[label_at].strip()
            if not r[path_at] or not label or label[0] == "-" and label[1:].isdigit():
                raise AnnotationError(
                    f"{csv_path}:{n}: expected a path and a label (a class name or a number >= 0), "
                    f"found {','.join(r)!r}"
                )
            paths.append(os.path.join(base, r[path_at]))
            labels.append(label)
        if all(x.isdigit() and x.isascii() for x in labels):
            ids = [int(x) for x in labels]
            classes = [str(i) for i in range(max(ids, default=-1) + 1)]
        else:
            classes = sorted(set(labels))
            lookup = {c: i for i, c in enumerate(classes)}
            ids = [lookup[x] for x in labels]
        del labels
        return [VideoRecord(p, i) for p, i in zip(paths, ids)], classes
    raise AnnotationError(
        f"{csv_path}: expected columns label,youtube_id,time_start,time_end[,split] "
        f"or path,label; found {columns or 'no header'}"
    )


def _csv_header(csv_path: Path) -> list[str]:
    try:
        with open(csv_path, newline="") as f:
            return [c.strip() for c in next(csv.reader(f), [])]
    except csv.Error as e:
        raise AnnotationError(f"{csv_path}: not a readable CSV file ({e})") from None
    except UnicodeDecodeError as e:
        raise AnnotationError(f"{csv_path}: not a text CSV file ({e.reason} at byte {e.start})") from None


def _csv_rows(csv_path: Path, columns: list[str]):
    """(line number, fields) of every data row; a row with the wrong number of fields is an
    :class:`AnnotationError` naming its line (blank lines are skipped)."""
    width = len(columns)
    try:
        with open(csv_path, newline="") as f:
            reader = csv.reader(f)
            next(reader, None)
            for row in reader:
                if len(row) != width:
                    if not row:
                        continue
                    raise AnnotationError(
                        f"{csv_path}:{reader.line_num}: expected {width} comma-separated "
                        f"fields ({','.join(columns)}), found {len(row)}"
                    )
                yield reader.line_num, row
    except csv.Error as e:
        raise AnnotationError(f"{csv_path}: not a readable CSV file ({e})") from None
    except UnicodeDecodeError as e:
        raise AnnotationError(f"{csv_path}: not a text CSV file ({e.reason} at byte {e.start})") from None


def _require_columns(csv_path: Path, columns: list[str], wanted: tuple[str, ...]) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise AnnotationError(
            f"{csv_path}: missing column(s) {', '.join(missing)}; expected "
            f"{','.join(wanted)}[,split], found {','.join(columns)}"
        )


def _check_kinetics_row(csv_path: Path, n: int, row: dict) -> None:
    if not row["label"] or not row["youtube_id"]:
        raise AnnotationError(f"{csv_path}:{n}: empty label or youtube_id in {row!r}")
    for key in ("time_start", "time_end"):
        try:
            value = float(row[key])
        except ValueError:
            value = float("nan")
        if not value >= 0 or value == float("inf"):
            raise AnnotationError(f"{csv_path}:{n}: {key} must be a number of seconds >= 0, found {row[key]!r}")


def _class_dirs(root: Path) -> list[Path]:
    dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not dirs:
        raise FileNotFoundError(f"{root}: expected one sub-folder per class, found none")
    return dirs


def _load_folder(root: Path, ann: Path, split: int, subset: str):
    dirs = _class_dirs(root)
    records = [
        VideoRecord(str(f), label)
        for label, d in enumerate(dirs)
        for f in sorted(d.iterdir())
        if f.suffix.lower() in VIDEO_EXTENSIONS
    ]
    return records, [d.name for d in dirs]


def _load_rawframes(root: Path, ann: Path, split: int, subset: str):
    """Class folders of frame folders, or an mmaction2 list file ``<dir> <num_frames> <label>``."""
    if ann.is_file():
        records = []
        for n, line in enumerate(ann.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if (
                len(parts) < 3
                or not re.fullmatch(r"\d+", parts[1])
                or not re.fullmatch(r"\d+", parts[-1])
                or int(parts[1]) < 1
            ):
                raise AnnotationError(
                    f"{ann}:{n}: expected '<frame folder> <frames >= 1> <label >= 0>', found {line.strip()!r}"
                )
            records.append(VideoRecord(str(root / parts[0]), int(parts[-1]), num_frames=int(parts[1])))
        n = max((r.label for r in records), default=-1) + 1
        return records, [str(i) for i in range(n)]
    dirs = _class_dirs(root)
    records = [VideoRecord(str(v), label) for label, d in enumerate(dirs) for v in sorted(d.iterdir()) if v.is_dir()]
    return records, [d.name for d in dirs]


_LAYOUTS: dict[str, Callable] = {
    "ucf101": _load_ucf101,
    "hmdb51": _load_hmdb51,
    "kinetics": _load_kinetics,
    "folder": _load_folder,
    "rawframes": _load_rawframes,
}


def load_annotations(
    layout: str,
    root: str | os.PathLike,
    *,
    split: int = 1,
    subset: str = "train",
    annotations: str | os.PathLike | None = None,
) -> tuple[list[VideoRecord], list[str]]:
    """Read a dataset index → (records with 0-based labels, class names).

    ``root`` holds the videos; ``annotations`` the split files (UCF101/HMDB51 folder), the CSV or
    folder of CSVs (Kinetics) or an mmaction2 list (raw frames); it defaults to ``root``.
    ``subset`` is "train" or "test" ("val" is accepted as test). Files are not opened here.
    """
    if layout not in _LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {sorted(_LAYOUTS)}")
    if subset not in ("train", "test", "val"):
        raise ValueError(f"subset must be train, test or val, got {subset!r}")
    root = Path(root)
    ann = Path(annotations) if annotations is not None else root
    try:
        return _LAYOUTS[layout](root, ann, split, subset)
    except UnicodeDecodeError as e:
        raise AnnotationError(
            f"{layout} annotations under {ann}: a file is not text ({e.reason} at byte {e.start})"
        ) from None
    except IsADirectoryError as e:
        raise AnnotationError(f"{e.filename}: expected an annotation file, found a folder") from None


def annotate_records(
    records: Sequence[VideoRecord], cache: MetadataCache, *, workers: int = 4
) -> tuple[list[VideoRecord], dict[str, str]]:
    """Fill ``num_frames``/``fps`` from the metadata cache (probing uncached files in parallel).
    Returns (records, {path: error}) — bad files keep ``num_frames=None`` and are listed."""
    metas = cache.get_many([r.path for r in records], workers=workers)
    out, bad = [], {}
    for r in records:
        meta = metas[r.path]
        if "error" in meta:
            bad[r.path] = meta["error"]
            out.append(r)
        else:  # direct construction: dataclasses.replace costs seconds over a million records
            out.append(VideoRecord(r.path, r.label, r.num_frames or int(meta["num_frames"]), meta.get("fps"), r.task))
    return out, bad


# ---------------------------------------------------------------- the dataset


def _read_torchcodec(path: str, indices: np.ndarray, size) -> np.ndarray:
    """Optional TorchCodec backend (used only when ``torchcodec`` imports)."""
    from torchcodec.decoders import VideoDecoder  # noqa: PLC0415

    frames = VideoDecoder(path, dimension_order="NHWC").get_frames_at(indices=indices.tolist()).data.numpy()
    if size is None:
        return frames
    from vidnets.data.transforms import Resize

    return Resize(size)([frames], None)[0]


class VideoDataset(Dataset):
    """Clips from ``records`` (video files or raw-frame folders) — see the module docstring.

    ``sampler``: a frame sampler from :mod:`vidnets.data.sampling`; ``transform``: a
    :class:`~vidnets.data.transforms.ClipTransform` (or any ``f(frames, rng) -> Tensor``).
    ``decode_size`` resizes while decoding (short side or (H, W)). ``modality`` "rgb" or "flow"
    (flow reads x/y JPEG pairs from raw-frame folders). ``cache`` (a MetadataCache) probes all
    files once up front, in parallel, so bad files are known before training starts.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        sampler: Callable[..., SampledIndices],
        transform: Callable,
        *,
        on_error: str = "skip",
        backend: str = "pyav",
        cache: MetadataCache | None = None,
        decode_size=None,
        modality: str = "rgb",
        decode_threads: int = 1,
        probe_workers: int = 4,
    ):
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        if backend not in ("pyav", "torchcodec"):
            raise ValueError(f"backend must be 'pyav' or 'torchcodec', got {backend!r}")
        if backend == "torchcodec":
            try:
                import torchcodec  # noqa: F401
            except Exception as e:
                raise ImportError(
                    "backend='torchcodec' needs the torchcodec package (not installed); use backend='pyav'"
                ) from e
        self.records = list(records)
        self.bad: dict[str, str] = {}
        if cache is not None:
            self.records, self.bad = annotate_records(self.records, cache, workers=probe_workers)
        self.sampler, self.transform = sampler, transform
        self.on_error, self.backend = on_error, backend
        self.decode_size, self.modality, self.decode_threads = decode_size, modality, decode_threads

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.records]

    def _num_frames(self, rec: VideoRecord) -> int:
        if rec.num_frames:
            return rec.num_frames
        if os.path.isdir(rec.path):
            from vidnets.data.frames import count_frames

            return count_frames(rec.path, self.modality)
        return len(frame_index(rec.path).pts)

    def _decode(self, rec: VideoRecord, indices: np.ndarray) -> np.ndarray:
        if os.path.isdir(rec.path):
            from vidnets.data.frames import read_frame_folder

            return read_frame_folder(rec.path, indices, modality=self.modality, size=self.decode_size)
        if self.backend == "torchcodec":
            return _read_torchcodec(rec.path, indices, self.decode_size)
        return read_frames(rec.path, indices, size=self.decode_size, threads=self.decode_threads)

    def load(self, index: int, rng: np.random.Generator) -> dict:
        """The item for ``index`` with an explicit RNG (raises on bad input)."""
        rec = self.records[index]
        if rec.path in self.bad:
            raise RuntimeError(self.bad[rec.path])
        sample = self.sampler(self._num_frames(rec), rng)
        unique, inverse = np.unique(sample.indices.reshape(-1), return_inverse=True)
        decoded = self._decode(rec, unique)
        frames = decoded[inverse].reshape(*sample.indices.shape, *decoded.shape[1:])
        if hasattr(self.transform, "labelled"):  # a flip with a label map may change the label
            clip, label = self.transform.labelled(frames, rng, rec.label)
        else:
            clip, label = self.transform(frames, rng), rec.label
        item = {"clip": clip, "label": label, "index": index, "path": rec.path}
        if rec.task:
            item["task"] = rec.task
        if sample.looped:
            item["looped"] = f"{self._num_frames(rec)} frames, shorter than one clip"
        return item

    def __getitem__(self, index: int) -> dict:
        try:
            return self.load(index, worker_rng())
        except Exception as e:
            if self.on_error == "raise":
                raise
            path = self.records[index].path
            msg = str(e) if path in str(e) else f"{path}: {type(e).__name__}: {e}"
            return {"error": msg, "path": path, "index": index}


# ---------------------------------------------------------------- batching and reporting


def collate_skip_bad(items: Sequence[dict]) -> dict:
    """Stack the good items; list the skipped (error) and looped paths.

    Returns ``{"clip", "label", "index", "path", "skipped", "skipped_paths", "errors", "looped", "looped_paths"}``
    (+ ``"task"`` when any item has one; the list fields are described in the module docstring). If every item failed, ``clip`` is ``torch.empty(0)`` and ``label``/``index``
    are empty LongTensors. Clips with different shapes (e.g. T3D's all-clips test with a varying
    number of views) cannot be stacked: use ``batch_size=1`` there.
    """
    good = [it for it in items if "error" not in it]
    bad = [it for it in items if "error" in it]
    looped = [it for it in good if it.get("looped")]
    if good:
        shapes = {tuple(it["clip"].shape) for it in good}
        if len(shapes) > 1:
            raise ValueError(
                f"clips of different shapes {sorted(shapes)} in one batch "
                "(a varying number of test views?): use batch_size=1"
            )
        clip = torch.stack([it["clip"] for it in good])
    else:
        clip = torch.empty(0)
    batch = {
        "clip": clip,
        "label": torch.tensor([it["label"] for it in good], dtype=torch.long),
        "index": torch.tensor([it["index"] for it in good], dtype=torch.long),
        "path": [str(it.get("path", "")) for it in good],  # one per clip: score dumps key videos by it
        "skipped": [_skip_line(it) for it in bad],
        "skipped_paths": [it["path"] for it in bad],
        "errors": [it["error"] for it in bad],
        "looped": [
            f"{it['path']}: looped: {it['looped'] if isinstance(it['looped'], str) else 'shorter than one clip'}"
            for it in looped
        ],
        "looped_paths": [it["path"] for it in looped],
    }
    if any("task" in it for it in good):
        batch["task"] = torch.tensor([it.get("task", 0) for it in good], dtype=torch.long)
    return batch


def _skip_line(item: dict) -> str:
    """``"<path>: <reason>: <detail>"`` for an error item (the detail without the repeated path)."""
    path, error = item["path"], item["error"]
    detail = error[len(path) + 2 :] if error.startswith(f"{path}: ") else error
    return f"{path}: {skip_reason(error)}: {detail}"


@dataclass
class EpochReport:
    """Accumulates skipped and looped files over an epoch's batches.

    >>> report = EpochReport()
    >>> for batch in loader: report.update(batch); ...
    >>> print(report.format())        # names every skipped / looped file, with the reason
    """

    skipped: dict[str, str] = field(default_factory=dict)
    looped: dict[str, int] = field(default_factory=dict)
    skip_count: int = 0
    loop_count: int = 0

    def update(self, batch: dict) -> None:
        lines = batch.get("skipped", [])
        for path, line in zip(batch.get("skipped_paths", lines), lines):
            self.skipped[path] = line
            self.skip_count += 1
        for path in batch.get("looped_paths", batch.get("looped", [])):
            self.looped[path] = self.looped.get(path, 0) + 1
            self.loop_count += 1

    def reset(self) -> None:
        self.skipped.clear()
        self.looped.clear()
        self.skip_count = self.loop_count = 0

    def format(self) -> str:
        lines = [
            f"skipped {self.skip_count} item(s) from {len(self.skipped)} file(s); "
            f"looped {self.loop_count} item(s) from {len(self.looped)} short file(s)"
        ]
        lines += [f"  skipped: {err or path}" for path, err in sorted(self.skipped.items())]
        lines += [f"  looped:  {path} (x{n})" for path, n in sorted(self.looped.items())]
        return "\n".join(lines)
