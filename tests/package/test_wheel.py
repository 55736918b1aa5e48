"""The built wheel is a working vidnets: recipes included, commands and a tiny run outside the repository.

The wheel is built from the working tree without build isolation (no download), installed without
dependencies into a fresh virtual environment that borrows this environment's packages (torch,
PyAV, …) through a ``.pth`` line, and run from a folder that is not the repository.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.package


def _run(args: list, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``bin/`` of a fresh venv holding the wheel built from this tree."""
    work = tmp_path_factory.mktemp("wheel")
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            work / "dist",
            REPO,
        ],
        cwd=work,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((work / "dist").glob("vidnets-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert {"vidnets/configs/res3d.yaml", "vidnets/configs/c3d.yaml", "vidnets/py.typed"} <= names
    env_dir = work / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    packages = next(env_dir.glob("lib/python*/site-packages"))
    (packages / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # torch & co., not vidnets
    install = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            env_dir / "bin" / "python",
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            wheel,
        ],
        cwd=work,
    )
    assert install.returncode == 0, install.stderr
    return env_dir / "bin"


def test_installed_wheel_trains_from_any_folder(installed, tmp_path):
    from vidnets.data.synthetic import generate_dataset

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([installed / "python", "-c", "import vidnets; print(vidnets.__file__)"], cwd=elsewhere)
    assert str(installed.parent) in where.stdout, where  # the installed copy, not the repository's
    models = _run([installed / "vidnets", "models"], cwd=elsewhere)
    assert models.returncode == 0 and "res3d18" in models.stdout, models.stderr
    helped = _run([installed / "vidnets", "train", "res3d", "--help"], cwd=elsewhere)
    assert helped.returncode == 0 and "--profile" in helped.stdout, helped.stderr
    root = generate_dataset(tmp_path / "data", num_classes=2, videos_per_class=3, frames=12, size=32)
    run = _run(
        [
            installed / "vidnets",
            "train",
            "res3d",
            "--profile",
            "cpu",
            "--out",
            tmp_path / "run",
            "--set",
            f"data.root={root}",
            "--set",
            "train.epochs=1",
            "--set",
            "data.batch_size=2",
            "--set",
            "data.num_workers=0",
            "--set",
            "train.tensorboard=false",
            "--set",
            "train.progress=false",
            "--set",
            "train.precision=fp32",
        ],
        cwd=elsewhere,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "run" / "last.pt").is_file() and "trained 1 epochs" in run.stdout
