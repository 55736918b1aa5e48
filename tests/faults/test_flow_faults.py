"""Flow extraction: settings never mix, stems never collide silently, concurrent writers, kills."""

from __future__ import annotations

import random
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.faults.conftest import assert_one_line_error, run_cli, spawn
from vidnets.flow import store

pytestmark = pytest.mark.timeout(300)  # a kill that misses must not hang the suite

ARGS = ["--method", "dis", "--keep-size"]


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".vidnets-locks" not in p.parts
    }


@pytest.fixture(scope="module")
def clips(videos) -> list[str]:
    return [str(p) for p in sorted(videos.rglob("*.avi"))[:3]]


@pytest.fixture(scope="module")
def references(clips, tmp_path_factory) -> dict[float, dict]:
    """Trees of an undisturbed extraction with bound 20 and with bound 10."""
    from vidnets.cli import main

    out = {}
    for bound in (20.0, 10.0):
        folder = tmp_path_factory.mktemp(f"flow-ref-{bound:g}")
        assert main(["flow", "extract", *clips, "--out", str(folder), *ARGS, "--bound", str(bound)]) == 0
        out[bound] = _tree(folder)
    return out


def test_rerun_with_other_settings_refuses_then_overwrite_recomputes(clips, references, tmp_path, capsys, faults):
    out = tmp_path / "flow"
    assert run_cli(capsys, ["flow", "extract", *clips, "--out", out, *ARGS])[0] == 0
    for other in (
        [*ARGS, "--bound", "10"],
        ["--method", "farneback", "--keep-size"],
        ["--method", "dis", "--short-side", "16"],
        [*ARGS, "--backward"],
        [*ARGS, "--quality", "50"],
        [*ARGS, "--warp"],
    ):
        args = ["flow", "extract", *clips, "--out", out, *other]
        status, err = run_cli(capsys, args)
        assert_one_line_error(status, err, "other settings", "--overwrite")
        assert _tree(out) == references[20.0]
        faults.bad_input()
    assert run_cli(capsys, ["flow", "extract", *clips, "--out", out, *ARGS, "--bound", "10", "--overwrite"])[0] == 0
    assert _tree(out) == references[10.0]


def test_another_video_with_the_same_stem_is_not_already_complete(clips, videos, tmp_path, capsys, faults):
    out = tmp_path / "flow"
    assert run_cli(capsys, ["flow", "extract", clips[0], "--out", out, *ARGS])[0] == 0
    before = _tree(out)
    twin = tmp_path / "elsewhere" / Path(clips[0]).name
    twin.parent.mkdir()
    shutil.copy(clips[1], twin)  # same file name, other content
    status, err = run_cli(capsys, ["flow", "extract", twin, "--out", out, *ARGS])
    assert_one_line_error(status, err, "another video")
    assert _tree(out) == before
    faults.bad_input()


def test_concurrent_writers_with_the_same_settings(clips, references, tmp_path, faults):
    out = tmp_path / "flow"
    writers = [spawn(["flow", "extract", *clips, "--out", out, *ARGS]) for _ in range(2)]
    for process in writers:
        assert process.wait() == 0, process.stderr.read().decode()
        process.stderr.close()
    faults.fault()
    assert _tree(out) == references[20.0]


def test_concurrent_writers_with_other_settings_never_mix(clips, references, tmp_path, faults):
    out = tmp_path / "flow"
    writers = [spawn(["flow", "extract", *clips, "--out", out, *ARGS, "--bound", bound]) for bound in ("20", "10")]
    statuses = []
    for process in writers:
        statuses.append(process.wait())
        process.stderr.close()
    faults.fault()
    assert 0 in statuses and set(statuses) <= {0, 1, 2}
    tree = _tree(out)
    for clip in clips:
        folder = store.flow_dir_for(out, clip)
        bound = store.read_meta(folder).bound
        prefix = folder.relative_to(out).as_posix() + "/"
        mine = {k: v for k, v in tree.items() if k.startswith(prefix)}
        expected = {k: v for k, v in references[bound].items() if k.startswith(prefix)}
        if mine != expected:
            faults.lost()
            pytest.fail(f"{folder} mixes flow of two settings")


def test_sigkill_during_extraction_then_rerun(clips, references, tmp_path, faults):
    rng = random.Random(5)
    for trial in range(2):
        out = tmp_path / f"killed{trial}"
        process = spawn(["flow", "extract", *clips, "--out", out, *ARGS])
        deadline = time.monotonic() + 30
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.4))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
        faults.fault()
        rerun = spawn(["flow", "extract", *clips, "--out", out, *ARGS])
        assert rerun.wait() == 0, rerun.stderr.read().decode()
        rerun.stderr.close()
        if _tree(out) != references[20.0]:
            faults.lost()
            pytest.fail(f"trial {trial}: rerun after a kill differs from an undisturbed extraction")
