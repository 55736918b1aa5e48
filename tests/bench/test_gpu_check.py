"""benchmarks/gpu_check.sh: valid bash, and its CPU rehearsal runs every step and prints one table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def test_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.timeout(600)
def test_cpu_rehearsal_runs_every_step(tmp_path):
    env = {
        **os.environ,
        "GPU_CHECK_DEVICE": "cpu",
        "GPU_CHECK_OUT": str(tmp_path),
        "PYTHON": sys.executable,
        "OMP_NUM_THREADS": "1",
    }
    run = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=580)
    assert run.returncode == 0, run.stdout + run.stderr
    table = (tmp_path / "summary.md").read_text()
    assert table.strip() in run.stdout
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| step")]
    names = [row.split(" | ")[0].lstrip("| ") for row in rows]
    assert names[0] == "test suite: CUDA tests"
    for model, dtype in (("res3d18", "bfloat16"), ("res3d18", "float16"), ("tsn_bninception", "bfloat16")):
        row = rows[names.index(f"amp {model} {dtype}")]
        assert "| PASS |" in row and f"logits {dtype}" in row
    assert "| SKIP |" in rows[names.index("amp tsn_bninception float16")]  # CUDA-only
    assert "GradScaler on" in rows[names.index("amp res3d18 float16")]
    assert "GradScaler off" in rows[names.index("amp res3d18 bfloat16")]
    ddp = rows[names.index("ddp parameters agree")]
    assert "| PASS |" in ddp and "2 processes" in ddp
    assert "vs torchvision" in names
    assert all("| FAIL |" not in row for row in rows)


def test_unknown_device_is_a_one_line_error(tmp_path):
    env = {**os.environ, "GPU_CHECK_DEVICE": "tpu", "GPU_CHECK_OUT": str(tmp_path)}
    run = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "GPU_CHECK_DEVICE" in run.stderr and len(run.stderr.splitlines()) == 1


def test_cuda_run_without_a_gpu_says_so(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the real check would run")
    env = {**os.environ, "GPU_CHECK_OUT": str(tmp_path), "PYTHON": sys.executable}
    env.pop("GPU_CHECK_DEVICE", None)
    run = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "no usable device" in run.stderr and len(run.stderr.splitlines()) == 1
