"""Bad input at every entry point: one clear line and exit 2 (or a per-file report), never a traceback."""

from __future__ import annotations

import dataclasses
import shutil
import typing

import pytest

from tests.faults.conftest import TINY_FEATURES, assert_one_line_error, run_cli, train_sets
from vidnets.data.datasets import AnnotationError, collate_skip_bad, load_annotations
from vidnets.engine import config as config_module
from vidnets.engine.config import ConfigError, load_config

CORRUPT = ("missing", "empty", "text", "truncated", "garbled")
EXPECTED_REASON = {"missing": "missing", "empty": "empty", "text": "undecodable", "truncated": "", "garbled": ""}


# -- corrupt files × entry points ---------------------------------------------------------------------


def test_check_reports_every_corrupt_file(corrupt_files, videos, capsys, faults):
    import json

    from vidnets.cli import main

    good = sorted(videos.rglob("*.avi"))[0]
    for deep in ([], ["--deep"]):
        capsys.readouterr()
        assert main(["check", str(good), *map(str, corrupt_files.values()), "--json", *deep]) == 1
        rows = {r["path"]: r for r in json.loads(capsys.readouterr().out)}
        assert "error" not in rows[str(good)]
        for name, path in corrupt_files.items():
            assert "error" in rows[str(path)], (name, deep)
        faults.bad_input(len(corrupt_files))


@pytest.mark.parametrize("name", CORRUPT)
def test_predict_and_timeline_refuse_a_corrupt_video(checkpoint, corrupt_files, tmp_path, capsys, faults, name):
    path = corrupt_files[name]
    status, err = run_cli(capsys, ["predict", checkpoint, path])
    assert_one_line_error(status, err, path.name)
    status, err = run_cli(capsys, ["predict", checkpoint, path, "--timeline", "--out", tmp_path / "t"])
    assert_one_line_error(status, err, path.name)
    assert not (tmp_path / "t.png").exists()
    faults.bad_input(2)


def _dataset_with(videos, corrupt_files, tmp_path):
    """A copy of ``videos`` whose train and test lists also name every corrupt file."""
    root = tmp_path / "data"
    shutil.copytree(videos, root)
    for name, path in corrupt_files.items():
        if path.exists():
            shutil.copy(path, root / "MoveUp" / path.name)
        with open(root / "trainlist01.txt", "a") as f:
            f.write(f"MoveUp/{path.name} 1\n")
        with open(root / "testlist01.txt", "a") as f:
            f.write(f"MoveUp/{path.name}\n")
    return root


def test_train_and_test_skip_corrupt_files_with_reasons(videos, corrupt_files, checkpoint, tmp_path, capsys, faults):
    root = _dataset_with(videos, corrupt_files, tmp_path)
    out = tmp_path / "run"
    status, err = run_cli(
        capsys, ["train", "res3d", "--out", out, *train_sets(root, **{"train.epochs": 2, "data.batch_size": 9})]
    )
    assert status == 0, err
    faults.bad_input(len(corrupt_files))
    lines = (out / "skipped.txt").read_text().splitlines()
    for name, path in corrupt_files.items():
        entry = next((line for line in lines if line.startswith(f"{root / 'MoveUp' / path.name}: ")), None)
        assert entry is not None, (name, lines)
        assert entry.split(": ")[1] in ("missing", "empty", "truncated", "undecodable"), entry
    status, err = run_cli(capsys, ["test", out / "last.pt", "--out", tmp_path / "test", "--set", f"data.root={root}"])
    assert status == 0, err
    faults.bad_input(len(corrupt_files))


def test_batches_carry_reasons_and_looped_clips(videos, corrupt_files, faults):
    from vidnets.data.datasets import VideoRecord
    from vidnets.data.presets import build_dataset

    good = sorted(videos.rglob("*.avi"))[0]
    records = [VideoRecord(str(good), 0)] + [VideoRecord(str(p), 0) for p in corrupt_files.values()]
    short = build_dataset("res3d", records, train=True, frames=32, size=24, crop=16)  # 16-frame videos loop
    batch = collate_skip_bad([short[i] for i in range(len(records))])
    faults.bad_input(len(corrupt_files))
    assert batch["looped"] == [f"{good}: looped: 16 frames, shorter than one clip"]
    assert batch["looped_paths"] == [str(good)]
    assert batch["skipped_paths"] == [str(p) for p in corrupt_files.values()]
    for line, (name, path) in zip(batch["skipped"], corrupt_files.items()):
        assert line.startswith(f"{path}: "), line
        if EXPECTED_REASON[name]:
            assert line.split(": ")[1] == EXPECTED_REASON[name], line
    too_big = build_dataset("res3d", records[:1], train=True, frames=4, size=24, crop=64)
    batch = collate_skip_bad([too_big[0]])
    assert batch["skipped"][0].split(": ")[1] == "crop larger than frame", batch["skipped"]
    faults.bad_input()


def test_flow_extract_and_features_report_corrupt_files(corrupt_files, videos, tmp_path, capsys, faults):
    good = sorted(videos.rglob("*.avi"))[0]
    paths = [good, *corrupt_files.values()]
    status, err = run_cli(
        capsys, ["flow", "extract", *paths, "--out", tmp_path / "flow", "--method", "dis", "--keep-size"]
    )
    assert status == 1 and "Traceback" not in err
    for path in corrupt_files.values():
        assert path.name in err
    status, err = run_cli(
        capsys,
        [
            "features",
            *paths,
            "--output",
            tmp_path / "feat",
            *TINY_FEATURES,
            "--num-classes",
            "2",
        ],
    )
    assert status == 0 and "Traceback" not in err, err
    failed = (tmp_path / "feat" / "failed.txt").read_text()
    for path in corrupt_files.values():
        assert path.name in failed
    faults.bad_input(2 * len(corrupt_files))


def test_features_keeps_colliding_names_apart(videos, tmp_path, capsys, faults):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    sources = sorted(videos.rglob("*.avi"))
    shutil.copy(sources[0], a / "clip.avi")
    shutil.copy(sources[1], b / "clip.avi")
    status, err = run_cli(
        capsys,
        [
            "features",
            a / "clip.avi",
            b / "clip.avi",
            "--output",
            tmp_path / "feat",
            *TINY_FEATURES,
            "--num-classes",
            "2",
        ],
    )
    assert status == 0, err
    assert sorted(p.relative_to(tmp_path / "feat").as_posix() for p in (tmp_path / "feat").rglob("*.npz")) == [
        "a/clip.avi.npz",
        "b/clip.avi.npz",
    ]
    faults.bad_input()
    for video in (a / "clip.avi", b / "clip.avi"):  # one at a time: the second is not "already done"
        status, err = run_cli(
            capsys,
            [
                "features",
                video,
                "--output",
                tmp_path / "one",
                "--model",
                "res3d10",
                "--layer",
                "pre_logits",
                "--window",
                "4",
                "--stride",
                "4",
                "--resize",
                "24",
                "24",
                "--crop",
                "16",
                "--no-progress",
                "--num-classes",
                "2",
            ],
        )
    assert status == 1 and "another video" in err, err
    faults.bad_input()


# -- malformed annotations × every layout ---------------------------------------------------------------


def _ucf(tmp_path, videos, class_ind=None, trainlist=None):
    root = tmp_path / "ucf"
    shutil.copytree(videos, root)
    if class_ind is not None:
        (root / "classInd.txt").write_bytes(class_ind)
    if trainlist is not None:
        (root / "trainlist01.txt").write_bytes(trainlist)
    return root


UCF_CASES = {
    "classInd without number": (b"MoveUp\n2 MoveDown\n", None, "classInd.txt:1"),
    "classInd binary": (b"\xff\xfe\x00\x01garbage", None, "not text"),
    "label missing from classInd": (None, b"Jump/v_Jump_g01_c01.avi 3\n", "trainlist01.txt:1"),
}


@pytest.mark.parametrize("case", UCF_CASES)
def test_malformed_ucf101(videos, tmp_path, capsys, faults, case):
    class_ind, trainlist, needle = UCF_CASES[case]
    root = _ucf(tmp_path, videos, class_ind, trainlist)
    with pytest.raises((AnnotationError, FileNotFoundError), match=needle.replace(".", r"\.")):
        load_annotations("ucf101", root)
    status, err = run_cli(capsys, ["train", "res3d", "--out", tmp_path / "run", *train_sets(root)])
    assert_one_line_error(status, err, needle)
    faults.bad_input(2)


KINETICS_CASES = {
    "missing column": "label,youtube_id,time_start\nabseiling,aaa,0\n",
    "extra field": "label,youtube_id,time_start,time_end,split\nabseiling,aaa,0,10,train,extra\n",
    "short row": "label,youtube_id,time_start,time_end,split\nabseiling,aaa,0\n",
    "time not a number": "label,youtube_id,time_start,time_end,split\nabseiling,aaa,zero,10,train\n",
    "negative time": "label,youtube_id,time_start,time_end,split\nabseiling,aaa,-5,10,train\n",
    "empty label": "label,youtube_id,time_start,time_end,split\n,aaa,0,10,train\n",
    "unknown header": "name,url\nabseiling,aaa\n",
    "negative path label": "path,label\na.mp4,-1\n",
    "empty file": "",
    "not text": b"\xff\xfe\xfa garbage \x00\x01",
}


@pytest.mark.parametrize("case", KINETICS_CASES)
def test_malformed_kinetics_csv_names_file_and_line(tmp_path, capsys, faults, case):
    text = KINETICS_CASES[case]
    csv_path = tmp_path / "train.csv"
    csv_path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(AnnotationError, match="train.csv"):
        load_annotations("kinetics", tmp_path, annotations=csv_path)
    status, err = run_cli(
        capsys,
        [
            "train",
            "res3d",
            "--out",
            tmp_path / "run",
            *train_sets(tmp_path, **{"data.layout": "kinetics", "data.annotations": csv_path}),
        ],
    )
    assert_one_line_error(status, err, "train.csv")
    if case not in ("unknown header", "empty file", "not text", "missing column"):
        assert "train.csv:2" in err, err
    faults.bad_input(2)


def test_malformed_hmdb51_rawframes_folder(tmp_path, faults):
    (tmp_path / "hmdb").mkdir()
    (tmp_path / "hmdb" / "jump_test_split1.txt").write_text("a.avi 1\nb.avi seven\n")
    with pytest.raises(AnnotationError, match="jump_test_split1.txt:2"):
        load_annotations("hmdb51", tmp_path / "hmdb")
    for line in ("clip 10\n", "clip ten 3\n", "clip 10 -1\n", "clip 0 2\n"):
        (tmp_path / "frames.txt").write_text(line)
        with pytest.raises(AnnotationError, match="frames.txt:1"):
            load_annotations("rawframes", tmp_path, annotations=tmp_path / "frames.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="one sub-folder per class"):
        load_annotations("folder", tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="classInd.txt"):
        load_annotations("ucf101", tmp_path / "empty")
    faults.bad_input(7)


# -- invalid values for every numeric config key ------------------------------------------------------------


def _numeric_keys():
    """(dotted key, bad values) for every config key with an allowed range."""
    cases = []
    for section in dataclasses.fields(config_module.Config):
        cls = typing.get_type_hints(config_module.Config)[section.name]
        if not dataclasses.is_dataclass(cls):
            continue
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            spec = f.metadata.get("range")
            if not spec:
                continue
            low, high, low_open, _ = spec
            bad = []
            if low is not None:
                bad.append(low - 1 if not low_open else low)
            if high is not None and high < 2**62:
                bad.append(high + 1)
            if float in typing.get_args(hints[f.name]) or hints[f.name] is float:
                bad += [".nan", ".inf", "-.inf"]
            cases.append((f"{section.name}.{f.name}", bad))
    return cases


NUMERIC = _numeric_keys()


def test_every_numeric_key_has_a_range():
    keys = {k for k, _ in NUMERIC}
    for key in (
        "data.batch_size",
        "data.num_workers",
        "optim.lr",
        "train.epochs",
        "train.max_iters",
        "optim.momentum",
        "optim.weight_decay",
        "schedule.gamma",
        "test.batch_size",
        "train.seed",
    ):
        assert key in keys, key


@pytest.mark.parametrize("key,bad", NUMERIC, ids=[k for k, _ in NUMERIC])
def test_invalid_numeric_config_values(key, bad, faults):
    base = ["train.epochs=1"] if key != "train.epochs" else ["train.max_iters=1"]
    for value in bad:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
            load_config(None, [*base, f"{key}={value}"])
        assert "expected" in str(info.value)
        faults.bad_input()


@pytest.mark.parametrize(
    "override",
    [
        "model.kwargs={width: 0}",
        "model.kwargs={width: -4}",
        "data.train_kwargs={frames: 0}",
        "data.train_kwargs={crop: -16}",
        "data.test_kwargs={views: 0}",
        "model.kwargs={dropout: 1.5}",
        "data.train_kwargs={size: [24, 0]}",
    ],
)
def test_invalid_builder_kwargs(override, faults):
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.")):
        load_config(None, ["train.epochs=1", override])
    faults.bad_input()


@pytest.mark.parametrize(
    "override,needle",
    [
        ("optim.lr=.nan", "optim.lr"),
        ("optim.lr=-0.1", "optim.lr"),
        ("optim.lr=0", "optim.lr"),
        ("data.batch_size=0", "data.batch_size"),
        ("data.batch_size=-2", "data.batch_size"),
        ("data.num_workers=-1", "data.num_workers"),
        ("train.epochs=0", "train.epochs"),
        ("model.kwargs={width: -1}", "model.kwargs.width"),
        ("data.train_kwargs={frames: 0}", "data.train_kwargs.frames"),
    ],
)
def test_train_cli_refuses_invalid_values(videos, tmp_path, capsys, faults, override, needle):
    status, err = run_cli(capsys, ["train", "res3d", "--out", tmp_path / "run", *train_sets(videos), "--set", override])
    assert_one_line_error(status, err, needle)
    assert not (tmp_path / "run").exists()
    faults.bad_input()


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--topk", "0"], "--topk"),
        (["--topk", "-3"], "--topk"),
        (["--timeline", "--window", "-1"], "--window"),
        (["--timeline", "--hop", "0"], "--hop"),
        (["--timeline", "--window", "nan"], "--window"),
    ],
)
def test_predict_flags(checkpoint, videos, capsys, faults, flags, needle):
    status, err = run_cli(capsys, ["predict", checkpoint, sorted(videos.rglob("*.avi"))[0], *flags])
    assert_one_line_error(status, err, needle)
    faults.bad_input()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["synth", "{tmp}/s", "--frames", "0"], "--frames"),
        (["check", "{video}", "--workers", "0"], "--workers"),
        (["flow", "extract", "{video}", "--out", "{tmp}/f", "--bound", "-1"], "--bound"),
        (["flow", "extract", "{video}", "--out", "{tmp}/f", "--bound", "inf"], "--bound"),
        (["flow", "extract", "{video}", "--out", "{tmp}/f", "--short-side", "0"], "--short-side"),
        (["flow", "extract", "{video}", "--out", "{tmp}/f", "--workers", "0"], "--workers"),
        (["features", "{video}", "--output", "{tmp}/f", "--window", "0"], "--window"),
        (["features", "{video}", "--output", "{tmp}/f", "--model", "nonexistent"], "--model"),
        (
            [
                "features",
                "{video}",
                "--output",
                "{tmp}/f",
                "--model",
                "res3d10",
                "--num-classes",
                "2",
                "--layer",
                "nolayer",
                "--no-progress",
            ],
            "--layer",
        ),
        (["fuse", "{tmp}/bad.npz", "{tmp}/bad.npz"], "bad.npz"),
        (["svm", "--features", "{tmp}", "--train", "{tmp}/l.txt", "--test", "{tmp}/l.txt", "--C", "0"], "--C"),
        (["fuse", "{tmp}/missing.npz"], "missing.npz"),
        (["test", "{tmp}/missing.pt"], "missing.pt"),
        (["transfer", "--root", "{tmp}", "--output", "{tmp}/s.pt", "--lr", "nan"], "--lr"),
        (["models", "--num-classes", "0"], "--num-classes"),
        (["flow", "show", "{tmp}/nowhere", "--out", "{tmp}/show"], "nowhere"),
    ],
)
def test_other_subcommands_refuse_bad_values(videos, tmp_path, capsys, faults, args, needle):
    video = str(sorted(videos.rglob("*.avi"))[0])
    (tmp_path / "bad.npz").write_text("not a score dump")
    args = [a.format(tmp=tmp_path, video=video) for a in args]
    status, err = run_cli(capsys, args)
    assert status == 2 and needle in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    faults.bad_input()


def test_negative_label_in_split_list(tmp_path, faults):
    from vidnets.methods.svm import read_split_list

    (tmp_path / "l.txt").write_text("a.avi 1\nb.avi -1\n")
    with pytest.raises(ValueError, match="l.txt:2"):
        read_split_list(tmp_path / "l.txt")
    faults.bad_input()
