"""precision="auto" on CPU: env override, ISA pre-check, measured calibration and its cache."""

from __future__ import annotations

import json
import math

import pytest
import torch

from vidnets.utils import device
from vidnets.utils.device import BF16_MIN_SPEEDUP, autocast_dtype, cpu_bf16_calibration, cpu_has_native_bf16

CPU = torch.device("cpu")
BF16_CPU = frozenset({"avx512f", "avx512_bf16"})


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache dir, no override, and an empty in-process cache before and after (so a
    faked measurement never leaks into other tests of the same process)."""
    monkeypatch.setenv("VIDNETS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(device.CPU_BF16_ENV, raising=False)
    device._calibration.cache_clear()
    yield tmp_path / "cache" / device.CPU_PRECISION_CACHE_FILE
    device._calibration.cache_clear()


def _no_timing():
    raise AssertionError("the calibration must not be timed here")


class _FakeTimer:
    """Stands in for the Conv3d timing: returns a fixed speedup and counts the calls."""

    def __init__(self, speedup: float):
        self.speedup, self.calls = speedup, 0

    def __call__(self) -> dict[str, float]:
        self.calls += 1
        return {"speedup": self.speedup, "fp32_ms": 10.0, "bf16_ms": 10.0 / self.speedup, "calibration_ms": 150.0}


@pytest.fixture
def bf16_isa(monkeypatch):
    """Pretend the CPU has AVX-512 BF16 so the decision goes past the pre-check to the timing."""
    monkeypatch.setattr(device, "_cpu_flags", lambda: BF16_CPU)
    monkeypatch.setattr(device, "_cpu_capability", lambda: "AVX512")


@pytest.mark.parametrize("value, expected", [("1", True), ("0", False)])
def test_env_override_forces_answer_without_timing(monkeypatch, isolated, value, expected):
    monkeypatch.setenv(device.CPU_BF16_ENV, value)
    monkeypatch.setattr(device, "_measure_bf16_speedup", _no_timing)
    assert cpu_has_native_bf16() is expected
    assert cpu_bf16_calibration()["source"] == "env"
    assert autocast_dtype(CPU, "auto") is (torch.bfloat16 if expected else None)
    assert not isolated.exists()


def test_env_override_invalid_value_names_variable(monkeypatch):
    monkeypatch.setenv(device.CPU_BF16_ENV, "yes")
    with pytest.raises(ValueError, match=r"VIDNETS_CPU_BF16: expected 1 .* or 0 .*found 'yes'"):
        cpu_has_native_bf16()


@pytest.mark.parametrize(
    "flags, capability",
    [
        (frozenset({"avx512f", "avx2"}), "AVX512"),  # AVX-512 but no bf16 instructions
        (BF16_CPU, "AVX2"),  # torch kernels not built for AVX-512 here
    ],
)
def test_precheck_says_fp32_without_timing(monkeypatch, isolated, flags, capability):
    monkeypatch.setattr(device, "_cpu_flags", lambda: flags)
    monkeypatch.setattr(device, "_cpu_capability", lambda: capability)
    monkeypatch.setattr(device, "_measure_bf16_speedup", _no_timing)
    record = cpu_bf16_calibration()
    assert record["native_bf16"] is False and record["source"] == "no_bf16_isa"
    assert record["speedup"] is None
    assert autocast_dtype(CPU, "auto") is None
    assert not isolated.exists()


@pytest.mark.parametrize("speedup", [2.5, 0.6, BF16_MIN_SPEEDUP])
def test_calibration_is_cached_and_read_back_without_timing(monkeypatch, isolated, bf16_isa, speedup):
    timer = _FakeTimer(speedup)
    monkeypatch.setattr(device, "_measure_bf16_speedup", timer)
    first = cpu_bf16_calibration()
    assert first["source"] == "measured" and timer.calls == 1
    assert first["native_bf16"] is (speedup >= BF16_MIN_SPEEDUP)
    assert cpu_has_native_bf16() is first["native_bf16"] and timer.calls == 1  # in-process cache

    entries = json.loads(isolated.read_text())["entries"]
    (entry,) = entries.values()
    assert entry["speedup"] == speedup and entry["threads"] == torch.get_num_threads()
    assert entry["torch"] == torch.__version__ and entry["cpu_flags"] == ["avx512f", "avx512_bf16"]
    assert entry["timestamp"]

    device._calibration.cache_clear()
    monkeypatch.setattr(device, "_measure_bf16_speedup", _no_timing)
    second = cpu_bf16_calibration()
    assert second["source"] == "cache"
    assert {k: second[k] for k in ("native_bf16", "speedup", "timestamp")} == {
        k: first[k] for k in ("native_bf16", "speedup", "timestamp")
    }


def test_cache_entry_is_per_thread_count(monkeypatch, isolated, bf16_isa):
    timer = _FakeTimer(2.0)
    monkeypatch.setattr(device, "_measure_bf16_speedup", timer)
    cpu_bf16_calibration()
    threads = torch.get_num_threads()
    device._calibration.cache_clear()
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads + 1)
    assert cpu_bf16_calibration()["source"] == "measured" and timer.calls == 2
    assert sorted(e["threads"] for e in json.loads(isolated.read_text())["entries"].values()) == [threads, threads + 1]


def _valid_key_with_bad_speedup() -> str:
    key = device._cache_key(device._machine_record(torch.get_num_threads()))
    return json.dumps({"format": 1, "entries": {key: {"speedup": float("nan")}}})


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"format": 1, "entries": []}',
        '{"format": 99, "entries": {}}',
        b"\xff\xfe\x00",
        _valid_key_with_bad_speedup,
    ],
)
def test_corrupt_cache_is_measured_again_and_rewritten(monkeypatch, isolated, bf16_isa, content):
    isolated.parent.mkdir(parents=True)
    content = content() if callable(content) else content
    if isinstance(content, bytes):
        isolated.write_bytes(content)
    else:
        isolated.write_text(content)
    timer = _FakeTimer(3.0)
    monkeypatch.setattr(device, "_measure_bf16_speedup", timer)
    record = cpu_bf16_calibration()
    assert record["source"] == "measured" and record["native_bf16"] is True and timer.calls == 1
    (entry,) = json.loads(isolated.read_text())["entries"].values()
    assert entry["speedup"] == 3.0


def test_unwritable_cache_dir_still_decides(monkeypatch, tmp_path, bf16_isa):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("VIDNETS_CACHE_DIR", str(blocker / "cache"))
    timer = _FakeTimer(0.6)
    monkeypatch.setattr(device, "_measure_bf16_speedup", timer)
    assert cpu_has_native_bf16() is False and timer.calls == 1
    assert blocker.read_text() == "not a directory"


def test_refresh_measures_again(monkeypatch, isolated, bf16_isa):
    monkeypatch.setattr(device, "_measure_bf16_speedup", _FakeTimer(0.6))
    assert cpu_has_native_bf16() is False
    monkeypatch.setattr(device, "_measure_bf16_speedup", _FakeTimer(2.0))
    assert cpu_bf16_calibration(refresh=True)["native_bf16"] is True
    assert cpu_has_native_bf16() is True  # the refreshed entry, now read from the file


def test_cache_dir_fallbacks(monkeypatch, tmp_path):
    monkeypatch.delenv("VIDNETS_CACHE_DIR")
    monkeypatch.delenv("VIDNETS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert device._cache_file() == tmp_path / "xdg" / "vidnets" / "cpu_precision.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert device._cache_file() == tmp_path / "home" / ".cache" / "vidnets" / "cpu_precision.json"


def test_real_calibration_on_this_cpu(isolated):
    rng = torch.get_rng_state()
    record = cpu_bf16_calibration()
    assert torch.equal(torch.get_rng_state(), rng)  # seeded runs are not shifted by the measurement
    if record["source"] == "no_bf16_isa":
        pytest.skip(f"{record['cpu']} has no AVX-512 BF16 / AMX: nothing to measure")
    assert record["source"] == "measured"
    assert math.isfinite(record["speedup"]) and record["speedup"] > 0
    assert record["native_bf16"] is (record["speedup"] >= BF16_MIN_SPEEDUP)
    assert record["fp32_ms"] > 0 and record["bf16_ms"] > 0
    assert json.loads(isolated.read_text())["entries"]


def test_bf16_training_check_passes_with_this_cpus_kernels():
    """Correct bf16 kernels stay well inside the bound (about 4 % from rounding through BN's backward)."""
    error = device.bf16_training_error()
    assert math.isfinite(error) and error < device.BF16_MAX_STEP_ERROR


@pytest.mark.parametrize("broken", ["nan", "wrong"])
def test_a_cpu_whose_bf16_step_is_broken_is_not_picked(monkeypatch, isolated, bf16_isa, broken):
    """Fast but wrong bf16 convolutions (NaN, or a mirrored result) keep ``auto`` at fp32."""
    monkeypatch.setattr(device, "_measure_bf16_speedup", _FakeTimer(3.0))
    real_conv3d = torch.nn.functional.conv3d

    def conv3d(x, w, *args, **kwargs):
        out = real_conv3d(x, w, *args, **kwargs)
        if torch.is_autocast_enabled("cpu"):
            return out * float("nan") if broken == "nan" else out.flip(-1)  # a mirrored result
        return out

    monkeypatch.setattr(device.F, "conv3d", conv3d)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)  # route both checks through conv3d
    record = device.cpu_bf16_calibration(refresh=True)
    assert record["speedup"] == 3.0 and not record["native_bf16"]
    assert not record["bf16_step_error"] <= device.BF16_MAX_STEP_ERROR
    assert device.autocast_dtype(torch.device("cpu"), "auto") is None
