"""The commands of README.md and vidnets/configs/README.md, run as written on tiny data made here.

Every fenced shell block of the two files is read, and each ``vidnets …`` command in it runs in this
process (``vidnets.cli.main``), in document order, in a working folder of its document, so that the
runs, checkpoints and flow one command writes are there for the next. Two tables, and only they,
change a command:

* ``DATA``: the data paths the docs invent (``/data/UCF-101``) become stand-ins made here
  (``vidnets synth`` videos in the layout the path stands for, their split files, extracted flow).
  The files the docs name in the working folder (``videos/*.avi``, ``video.mp4``,
  ``c3d_sports1m.pth`` …) are made there under those names (``NAMED_FILES``).
* ``TINY``: options appended so that a command costs seconds, not hours: ``--profile cpu`` and a
  one-epoch ``--set`` for training, fewer and smaller synthetic videos, a smaller flow size.
  argparse keeps the last value of an option, so an appended option wins over the documented one.

A command fails its block when it exits with a non-zero status or does not write what it says it
writes: the target of ``--out``/``--output``/``> FILE``, and the files of :func:`documented_files`
(each must be new or rewritten by that command). A command that cannot run here is in ``NOT_RUN``
with the reason; one that is neither run nor listed fails ``test_every_command_is_run_or_listed``.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "vidnets/configs/README.md")

#: the data paths of the docs → the stand-in made by :func:`make_stand_ins` (a folder of the data dir)
DATA = {
    "/data/UCF-101": "ucf101",  # vidnets synth: 2 motion classes × 3 videos, class folders
    "/data/ucfTrainTestlist": "ucfTrainTestlist",  # its classInd.txt, trainlist01.txt, testlist01.txt
    "/data/my_videos": "my_videos",  # vidnets synth: 2 classes × 5 videos (every 5th is a test video)
    "/data/kinetics400/train": "ucf101",  # the same videos, indexed by
    "/data/kinetics400/annotations": "kinetics_csv",  # train.csv, validate.csv (path,label)
    "/data/hmdb51": "hmdb51",  # vidnets synth: 3 other motion classes × 3 videos
    "/data/splits": "hmdb51_splits",  # <Class>_test_split1.txt
    "/data/testTrainMulti_7030_splits": "hmdb51_splits",
    "/data/flow/ucf101": "ucf101_flow",  # DIS flow of ucf101, short side 72 (the CPU profiles' size)
    "/data/flow/hmdb51": "hmdb51_flow",
    "/tmp": "tmp",  # the configs README's scratch folder
}

#: files the docs name in the working folder, made there by :func:`make_named_files`
NAMED_FILES = {
    "videos/": "two synthetic clips, one named v_ApplyEyeMakeup_g01_c01.avi",
    "videos.txt": "their paths, one a line",
    "video.mp4": "a 16-frame synthetic clip",
    "long_video.mp4": "a 4-second synthetic clip",
    "c3d_sports1m.pth": "C3D weights in the ports' layout (conv1 only: the real file is 300 MB)",
    "densenet121.pth": "a random torchvision-layout DenseNet-121 state dict",
}

#: the start of a documented command → options appended to it (every entry that matches, in order)
TRAIN_TINY = [
    "--profile",
    "cpu",
    "--set",
    "train.epochs=1",
    "--set",
    "data.batch_size=2",
    "--set",
    "data.num_workers=0",
    "--set",
    "train.progress=false",
    "--set",
    "train.tensorboard=false",
]
TINY = (
    ("vidnets synth", ["--videos-per-class", "3", "--frames", "16", "--size", "32"]),
    ("vidnets flow extract videos/*.avi", ["--size", "48x32"]),  # TV-L1 (also under --warp) at 340×256: minutes
    ("vidnets train", TRAIN_TINY),
    (
        "vidnets train res3d --out runs/res3d --set data.root=/data/UCF-101 --set data.annotations=/data/ucfTrainTestlist "
        "--resume auto",
        ["--set", "train.epochs=2"],
    ),  # so that the resumed run has an epoch to continue with
    ("vidnets transfer", ["--frames", "8", "--size", "32", "--crop", "32", "--max-steps", "2", "--batch-size", "2"]),
)

#: the start of a command that is not run here → why
NOT_RUN = {
    "make demo": "trains the demo's two nets for about a minute; `vidnets demo --quick` is tests/engine/test_demo.py",
    "make test": "runs this test suite",
    "torchrun": "4 processes, on one or several machines; 2 processes are tests/engine/test_distributed.py",
    "pip install": "installs from a package index (the serve extra is part of the test install)",
    "vidnets serve": "listens on a port until stopped; the app is tested in tests/deploy/test_serve_api.py",
    "curl": "talks to the server of `vidnets serve`",
    "sudo apt-get install": "installs a system package as root",
    "export LD_PRELOAD=": "sets up the processes started later, with the library installed above",
}

SHELL_FENCES = {"bash", "sh", "shell", "console"}


@dataclass
class Command:
    text: str  # as documented, without its comment; continuation lines joined
    argv: list[str]  # the tokens after the environment assignments, without a redirection
    env: dict[str, str] = field(default_factory=dict)
    stdout: str | None = None  # the file of ``> FILE``

    @property
    def reason_not_run(self) -> str | None:
        return next((why for start, why in NOT_RUN.items() if _starts(self.text, start)), None)

    @property
    def runs(self) -> bool:
        return self.reason_not_run is None and self.argv[0] == "vidnets"


@dataclass
class Block:
    doc: str
    line: int
    section: str  # the heading above it
    commands: list[Command]

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}-" + re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-")


def _starts(text: str, start: str) -> bool:
    """``text`` begins with the words of ``start`` (or, for ``NAME=``, with an assignment to NAME)."""
    return text == start or text.startswith(start if start.endswith("=") else start + " ")


def parse_command(line: str) -> Command | None:
    tokens = shlex.split(line, comments=True)
    env = {}
    while tokens and re.fullmatch(r"[A-Za-z_]\w*=\S*", tokens[0]):
        name, value = tokens.pop(0).split("=", 1)
        env[name] = value
    if not tokens:
        return None
    text = " ".join(tokens)
    stdout = None
    if ">" in tokens:
        at = tokens.index(">")
        stdout, tokens = tokens[at + 1], tokens[:at] + tokens[at + 2 :]
    return Command(text, tokens, env, stdout)


def parse_blocks(doc: str) -> list[Block]:
    """The fenced shell blocks of ``doc`` with their commands (continuation lines joined, comments dropped)."""
    blocks, lines = [], (REPO / doc).read_text().splitlines()
    index, section = 0, ""
    while index < len(lines):
        fence = re.fullmatch(r"\s*```(\w*)\s*", lines[index])
        section = lines[index].lstrip("#").strip() if lines[index].startswith("#") else section
        index += 1
        if not fence:
            continue
        start, body = index, []
        while not re.fullmatch(r"\s*```\s*", lines[index]):
            body.append(lines[index].strip())
            index += 1
        index += 1
        if fence.group(1) not in SHELL_FENCES:
            continue
        logical = " ".join(line[:-1] if line.endswith("\\") else line + "\n" for line in body)
        commands = [parse_command(line) for line in logical.splitlines() if line.strip()]
        blocks.append(Block(doc, start, section, [c for c in commands if c is not None]))
    return blocks


BLOCKS = [block for doc in DOCS for block in parse_blocks(doc)]


# -- the data ---------------------------------------------------------------------------------------


def make_stand_ins(data: Path) -> None:
    """Tiny stand-ins for every folder of ``DATA``."""
    from vidnets.data.datasets import load_annotations
    from vidnets.data.synthetic import generate_dataset
    from vidnets.flow.extract import FlowOptions, extract_videos

    ucf = generate_dataset(data / "ucf101", num_classes=2, videos_per_class=3, frames=16, size=32, seed=0)
    lists = data / "ucfTrainTestlist"  # UCF101 ships its split lists apart from the videos
    lists.mkdir()
    for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        shutil.move(ucf / name, lists / name)
    generate_dataset(data / "my_videos", num_classes=2, videos_per_class=5, frames=16, size=32, seed=3)
    kinetics = data / "kinetics_csv"
    kinetics.mkdir()
    for subset, csv_name in (("train", "train.csv"), ("test", "validate.csv")):
        records, classes = load_annotations("ucf101", ucf, subset=subset, annotations=lists)
        rows = [f"{Path(r.path).relative_to(ucf).as_posix()},{classes[r.label]}" for r in records]
        (kinetics / csv_name).write_text("path,label\n" + "\n".join(rows) + "\n")

    hmdb = generate_dataset(data / "hmdb51", num_classes=3, videos_per_class=3, frames=16, size=32, seed=1)
    splits = data / "hmdb51_splits"
    splits.mkdir()
    for subset, mark in (("train", "1"), ("test", "2")):
        records, classes = load_annotations("ucf101", hmdb, subset=subset)
        for r in records:
            with open(splits / f"{classes[r.label]}_test_split1.txt", "a") as f:
                f.write(f"{Path(r.path).name} {mark}\n")

    options = FlowOptions(method="dis", short_side=72)
    for name, root in (("ucf101_flow", ucf), ("hmdb51_flow", hmdb)):
        results = extract_videos(sorted(str(p) for p in root.glob("*/*.avi")), data / name, options, workers=1)
        assert all(r.status == "done" for r in results), results
    (data / "tmp").mkdir()


def make_named_files(folder: Path, data: Path) -> None:
    """The files of ``NAMED_FILES`` in the working folder ``folder``."""
    import numpy as np
    import torch

    from vidnets.data.synthetic import generate_dataset, write_video
    from vidnets.data.video import iter_frames
    from vidnets.methods.transfer import densenet121_2d

    clips = sorted((data / "ucf101").glob("*/*.avi"))
    (folder / "videos").mkdir()
    for clip, name in zip(clips[:2], ("v_ApplyEyeMakeup_g01_c01.avi", "v_ApplyLipstick_g01_c01.avi")):
        shutil.copy(clip, folder / "videos" / name)
    (folder / "videos.txt").write_text("".join(f"videos/{p.name}\n" for p in sorted((folder / "videos").iterdir())))
    write_video(folder / "video.mp4", np.stack(list(iter_frames(clips[0]))))
    long = generate_dataset(folder / ".long", num_classes=2, videos_per_class=2, frames=100, size=32, seed=2)
    write_video(folder / "long_video.mp4", np.stack(list(iter_frames(next(long.glob("*/*.avi"))))))
    shutil.rmtree(long)
    conv1 = {"conv1.weight": 0.05 * torch.randn(64, 3, 3, 3, 3), "conv1.bias": torch.zeros(64)}  # C3D's conv1
    torch.save(conv1, folder / "c3d_sports1m.pth")
    torch.save(densenet121_2d(num_classes=1000).state_dict(), folder / "densenet121.pth")
    assert {p.name + ("/" if p.is_dir() else "") for p in folder.iterdir()} == set(NAMED_FILES)


# -- running a command --------------------------------------------------------------------------------

_DATA_PATH = re.compile(
    "(?<![\\w./-])(" + "|".join(map(re.escape, sorted(DATA, key=len, reverse=True))) + ")(?=$|[/,}\\s])"
)


def substitute(token: str, data: Path) -> str:
    return _DATA_PATH.sub(lambda m: str(data / DATA[m.group(1)]), token)


def tiny_options(command: Command) -> list[str]:
    return [option for start, options in TINY if _starts(command.text, start) for option in options]


def expand(argv: list[str]) -> list[str]:
    """Glob patterns as the shell expands them (kept as written when nothing matches)."""
    out = []
    for token in argv:
        matches = sorted(glob.glob(token)) if "*" in token else []
        out += matches or [token]
    return out


def _option(argv: list[str], *names: str) -> str | None:
    values = [argv[i + 1] for i, token in enumerate(argv[:-1]) if token in names]
    return values[-1] if values else None


def documented_files(argv: list[str]) -> list[str]:
    """The files a ``vidnets`` command says it writes (in the README or its --help), besides its --out."""
    command, positional = argv[0], [t for t in argv[1:] if not t.startswith("-")]
    out = _option(argv, "--out")
    if command == "train" and "--dry-run" not in argv:  # README: --out (default runs/<recipe>) receives …
        run = out or f"runs/{argv[1]}"
        return [f"{run}/{name}" for name in ("last.pt", "config.yaml", "epochs.csv", "curves.png")]
    if command == "test":  # the reports, beside the checkpoint or in --out, named by --prefix
        prefix = _option(argv, "--prefix") or "test"
        folder = out or str(Path(argv[1]).parent)
        return [f"{folder}/{prefix}_{name}" for name in ("metrics.json", "scores.npz", "confusion.csv")]
    if command == "predict" and "--timeline" in argv:  # --help: <video name>_timeline.png and .csv in --out
        stem = Path(positional[1]).stem
        return [f"{out or '.'}/{stem}_timeline.png", f"{out or '.'}/{stem}_timeline.csv"]
    if command == "flow" and argv[1] == "show":  # colour PNGs + strip
        return [f"{out}/strip.png", f"{out}/flow_00001.png"]
    if command == "synth":  # a dataset in UCF101 layout
        return [f"{positional[0]}/classInd.txt", f"{positional[0]}/trainlist01.txt"]
    if command == "export":  # the network file and model.json
        network = {"onnx": "model.onnx", "pt2": "model.pt2", "torchscript": "model.ts"}[_option(argv, "--format")]
        return [f"{out}/model.json", f"{out}/{network}"]
    return []


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def _written(path: Path, before: dict[str, int]) -> bool:
    """``path`` (a file, or a folder: any file in it) is new or rewritten since ``before``."""
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path] if path.is_file() else []
    return any(before.get(str(p)) != p.stat().st_mtime_ns for p in files)


@contextlib.contextmanager
def _inside(folder: Path, env: dict[str, str]):
    cwd, saved = os.getcwd(), {name: os.environ.get(name) for name in env}
    os.chdir(folder)
    os.environ.update(env)
    try:
        yield
    finally:
        os.chdir(cwd)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_command(command: Command, folder: Path, data: Path) -> None:
    from vidnets.cli import main

    argv = [substitute(t, data) for t in command.argv[1:]] + tiny_options(command)
    out, err = io.StringIO(), io.StringIO()
    before = {**_snapshot(folder.parent), **_snapshot(data)}
    with _inside(folder, command.env):
        argv = expand(argv)
        stdout = open(command.stdout, "w") if command.stdout else contextlib.nullcontext(out)
        with stdout as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(err):
            status = main(argv)
    ran = f"`{command.text}`\n  ran as: vidnets {shlex.join(argv)}"
    assert status == 0, f"{ran}\n  exit status {status}:\n{err.getvalue()[-3000:]}"
    outputs = [t for t in (command.stdout, _option(argv, "--out", "--output", "-o")) if t]
    if "--dry-run" in argv:  # README: trains and writes nothing
        changed = sorted(set({**_snapshot(folder.parent), **_snapshot(data)}.items()) - set(before.items()))
        assert not changed, f"{ran}\n  a dry run wrote {changed[:5]}"
        outputs = []
    missing = [p for p in outputs + documented_files(argv) if not _written(folder / p, before)]
    assert not missing, f"{ran}\n  did not write {missing}\n{out.getvalue()[-2000:]}{err.getvalue()[-2000:]}"


# -- the tests --------------------------------------------------------------------------------------


class Workspaces:
    """One working folder per document; its blocks run in order, each once."""

    def __init__(self, root: Path, data: Path) -> None:
        self.root, self.data = root, data
        self.outcome: dict[str, str | None] = {}  # block id → None (passed) or what failed

    def folder(self, doc: str) -> Path:
        folder = self.root / doc.replace("/", "_")
        if not folder.exists():
            folder.mkdir()
            make_named_files(folder, self.data)
        return folder

    def run(self, block: Block) -> None:
        """Run ``block`` after the blocks before it in its document (a block may use what they wrote)."""
        for earlier in [b for b in BLOCKS if b.doc == block.doc and b.line < block.line]:
            if self.outcome.get(earlier.id, None) is not None:
                pytest.fail(f"needs block {earlier.id}, which failed")
            if earlier.id not in self.outcome:
                self._run(earlier)
                if self.outcome[earlier.id]:
                    pytest.fail(f"needs block {earlier.id}, which failed: {self.outcome[earlier.id]}")
        if block.id not in self.outcome:
            self._run(block)
        if self.outcome[block.id]:
            pytest.fail(self.outcome[block.id], pytrace=False)

    def _run(self, block: Block) -> None:
        self.outcome[block.id] = "interrupted"
        try:
            for command in block.commands:
                if command.runs:
                    run_command(command, self.folder(block.doc), self.data)
        except AssertionError as failure:
            self.outcome[block.id] = str(failure)
        else:
            self.outcome[block.id] = None


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the nets are tiny; a second thread only adds waiting on a busy machine
    data = tmp_path_factory.mktemp("readme-data")
    make_stand_ins(data)
    yield Workspaces(tmp_path_factory.mktemp("readme-run"), data)
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block_runs_as_documented(block, workspaces):
    if not any(command.runs for command in block.commands):
        pytest.skip("; ".join(f"`{c.text}`: {c.reason_not_run}" for c in block.commands))
    workspaces.run(block)


def test_every_command_is_run_or_listed():
    commands = [c for b in BLOCKS for c in b.commands]
    unknown = [c.text for c in commands if not c.runs and c.reason_not_run is None]
    assert not unknown, f"neither run (a `vidnets` command) nor in NOT_RUN with a reason: {unknown}"
    assert len(BLOCKS) >= 10 and sum(c.runs for c in commands) >= 30  # the parser still finds the docs' blocks
    texts = " ".join(c.text for c in commands)
    stale = [k for k in [*NOT_RUN, *(start for start, _ in TINY)] if not any(_starts(c.text, k) for c in commands)]
    stale += [k for k in DATA if k not in texts]
    assert not stale, f"table entries that no documented command uses any more: {stale}"
