"""benchmarks/fast_layers.py: a quick run times both sides of each fast-path choice, checks their
outputs, and times res3d18 and C3D layer by layer."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import fast_layers  # noqa: E402


def _rows(table: str) -> list[list[str]]:
    lines = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def test_quick_run_reports_both_choices(capsys):
    assert fast_layers.main(["--quick", "--no-write"]) == 0
    first, rest = capsys.readouterr().out.split("Max-pools of a ReLU's output")
    pools, rest = rest.split("fp32 NCDHW clip → bf16 channels-last")
    casts, layers_by_model = rest.split("layer by layer")
    layers = _rows(first)
    assert len(layers) == 2 * 2 * 2  # two layers, two precisions, two batch sizes
    for layer, precision, plain, padded, _, picked, difference in layers:
        assert picked in ("padded", "3 channels")
        # the zero channel changes nothing: fp32 equal up to summation order, bf16 within its rounding
        assert float(difference) <= (1e-4 if precision == "fp32" else 5e-2), layer
    assert [row[-1] for row in _rows(pools)] == ["yes", "yes"]
    assert len(_rows(casts)) == 2
    by_layer = {row[0]: row for row in _rows(layers_by_model)}
    assert {"res3d18 conv1", "c3d conv1a", "c3d pool1"} <= by_layer.keys()
    assert float(by_layer["c3d conv2a"][3].replace(",", "")) > 0  # a convolution's GFLOP/s
