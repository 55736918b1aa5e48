"""Fidelity pins: the logits of one model per family, with fixed weights, on a fixed input.

Any change to an architecture (a layer, a stride, a padding, a nonlinearity, a coefficient, a
parameter name) changes these logits, so it is noticed here. The weights do not come from the
builders' initialisation (which may change freely): every tensor is filled from its own generator
seeded by the CRC-32 of its name (``fill_deterministic``), so the values depend only on the names
and shapes of the parameters. The input comes from a fixed-seed generator too.

Tolerance: ``rtol=1e-4`` and ``atol=1e-4 × max|expected|``: float32 results differ between
machines and thread counts by summation order only (about 1e-6 relative); an architecture change
moves the logits by orders of magnitude more.

The expected values live in ``fidelity_logits.json`` next to this file. After an intended change
of architecture, regenerate them with ``python -m tests.models.test_fidelity --write`` and review
the diff.
"""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidnets.models import create
from vidnets.models.p3d import P3DBottleneck

EXPECTED_FILE = Path(__file__).with_name("fidelity_logits.json")
NUM_CLASSES = 7
RTOL = 1e-4

# one model per family (both Two-Stream nets, DenseNet3D beside T3D), at small valid inputs
CASES: dict[str, tuple[int, ...]] = {
    "c3d": (3, 16, 112, 112),
    "two_stream_spatial": (3, 224, 224),
    "two_stream_temporal": (20, 224, 224),
    "tsn_bninception": (2, 3, 96, 96),
    "p3d63": (3, 16, 32, 32),
    "densenet3d121": (3, 8, 32, 32),
    "t3d121": (3, 8, 32, 32),
    "res3d18": (3, 8, 32, 32),
}


def fill_deterministic(model: nn.Module) -> nn.Module:
    """Set every parameter and BN statistic from a generator seeded by its name (see module doc)."""
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if not tensor.is_floating_point():
                continue
            g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
            u = torch.rand(tensor.shape, generator=g, dtype=torch.float64)
            if name.endswith("running_var"):
                values = 0.5 + u
            elif name.endswith("running_mean") or (tensor.dim() == 1 and name.endswith("bias")):
                values = 0.2 * u - 0.1
            elif tensor.dim() == 1:  # BN / LRN-free scale vectors
                values = 0.5 + u
            else:  # conv / fc weights: uniform with variance 2 / fan_in (He)
                fan_in = tensor[0].numel()
                values = (2 * u - 1) * (6 / fan_in) ** 0.5
            tensor.copy_(values.to(tensor.dtype))
    return model


def fixed_input(shape: tuple[int, ...]) -> torch.Tensor:
    g = torch.Generator().manual_seed(20171129)
    return torch.rand((1, *shape), generator=g, dtype=torch.float64).mul(2).sub(1).float()


def pinned_model(name: str, **kwargs) -> nn.Module:
    return fill_deterministic(create(name, num_classes=NUM_CLASSES, **kwargs)).eval()


def logits(name: str, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return pinned_model(name, **kwargs)(fixed_input(CASES[name]))[0]


def expected() -> dict[str, list[float]]:
    return json.loads(EXPECTED_FILE.read_text())


def assert_pinned(got: torch.Tensor, want: list[float]) -> None:
    want_t = torch.tensor(want, dtype=got.dtype)
    torch.testing.assert_close(got, want_t, rtol=RTOL, atol=RTOL * float(want_t.abs().max()))


pytestmark = pytest.mark.usefixtures("one_thread")


def test_every_case_is_pinned():
    assert set(expected()) == set(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_logits_are_pinned(name):
    assert_pinned(logits(name), expected()[name])


def test_p3d_c_blocks_sum_half_half():
    """Each C block computes relu(0.5·s + 0.5·bn(T(s))) (the prototxts' Eltwise coeffs), and the pinned
    logits tell this apart from the unweighted sum."""
    model = pinned_model("p3d63")
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def check(block: P3DBottleneck, inputs, output) -> None:
        x = F.relu(block.bn1(block.conv1(inputs[0])))
        s = F.relu(block.bn2(block.conv2(x)))
        want = F.relu(0.5 * s + 0.5 * block.bn_t(block.conv_t(s)))
        seen.append((block.spatial_temporal(x), want))

    blocks = [m for m in model.modules() if isinstance(m, P3DBottleneck) and m.block_type == "C"]
    handles = [b.register_forward_hook(check) for b in blocks]
    with torch.no_grad():
        model(fixed_input(CASES["p3d63"]))
    for h in handles:
        h.remove()
    assert len(seen) == len(blocks) == 4  # p3d63: 13 P3D blocks, C = 3rd, 6th, 9th, 12th
    for got, want in seen:
        torch.testing.assert_close(got, want)
    unweighted = logits("p3d63", c_block_coeffs=(1.0, 1.0))
    with pytest.raises(AssertionError):
        assert_pinned(unweighted, expected()["p3d63"])


def main() -> None:
    parser = argparse.ArgumentParser(description="Regenerate the pinned logits (review the diff).")
    parser.add_argument("--write", action="store_true", help=f"write {EXPECTED_FILE.name}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    values = {name: [float(v) for v in logits(name)] for name in CASES}
    text = json.dumps(values, indent=1) + "\n"
    if args.write:
        EXPECTED_FILE.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
