"""The int8 benchmark's decision rule (benchmarks/int8.py), on made-up rates: no timing here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import common, int8  # noqa: E402


def _rates(bf16: float, **int8_rates: float) -> dict:
    rates = {"fp32 fast": common.Stats([bf16 / 2]), "bf16 fast": common.Stats([bf16])}
    rates.update({name.replace("_", " "): common.Stats([r]) for name, r in int8_rates.items()})
    return rates


def test_best_int8_ratio_picks_the_fastest_int8_setting():
    label, ratio = int8._best_int8_ratio(_rates(10.0, pt2e_int8=5.0, ort_int8=14.0))
    assert label == "ort int8" and abs(ratio - 1.4) < 1e-9


def test_decision_needs_every_case_fast_enough_and_little_top1_lost():
    fast = {"res3d18 b1": ("ort int8", 1.5), "res3d18 b8": ("ort int8", 1.31)}
    assert "**Met.**" in int8.decision(fast, {("res3d", "ort int8"): 0.0})
    assert "Not met" in int8.decision(fast, {("res3d", "ort int8"): 0.02})  # 2 points lost
    slow = {**fast, "c3d b8": ("ort int8", 0.6)}
    text = int8.decision(slow, {("res3d", "ort int8"): 0.0})
    assert "Not met" in text and "c3d b8: best int8 ort int8 0.60×" in text
    assert "Not met" in int8.decision({}, {})  # nothing measured: nothing ships
