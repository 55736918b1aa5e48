"""Every registered model exported to ONNX (run by onnxruntime), pt2 (``torch.export.load``) and
TorchScript, loaded back from disk and compared with eager fp32 logits at batch 1 and 3.

Models are built small (narrow ``width``s, small inputs) so the same export code paths run at test
cost. A model a format cannot express must be listed in ``CANNOT_EXPRESS`` with the reason the
exporter gives; the test then asserts that export fails with that reason, so nothing is skipped
silently and a format that starts to work is noticed.
"""

from __future__ import annotations

import os

import pytest
import torch

from vidnets.deploy.export import FORMATS, PARITY_TOLERANCES, ExportError, check_export, export_model
from vidnets.models import create, list_models

pytest.importorskip("onnxruntime")

NUM_CLASSES = 5
#: builder kwargs and one input view (no batch axis) per model; all other builder arguments are defaults
SMALL: dict[str, tuple[dict, tuple[int, ...]]] = {
    "c3d": ({"width": 8, "fc_width": 64, "crop_size": 32}, (3, 16, 32, 32)),
    "c3d_search_net": ({"crop_size": 32}, (3, 16, 32, 32)),
    "two_stream_spatial": ({"input_size": 64}, (3, 64, 64)),
    "two_stream_temporal": ({"input_size": 64}, (20, 64, 64)),
    "tsn_bninception": ({}, (3, 3, 64, 64)),
    **{name: ({}, (3, 8, 32, 32)) for name in ("p3d63", "p3d131", "p3d199")},
    **{
        name: ({"growth_rate": 8, "num_init_features": 16}, (3, 8, 32, 32))
        for name in ("densenet3d121", "densenet3d169")
    },
    **{
        name: ({"growth_rate": 8, "num_init_features": 16, "ttl_width": 16}, (3, 8, 32, 32))
        for name in ("t3d121", "t3d169")
    },
    **{
        name: ({"width": 8}, (3, 8, 32, 32))
        for name in ("res3d10", "res3d16", "res3d18", "res3d26", "res3d34", "res3d18_simplified")
    },
}
#: (model, format) → the reason its export fails; empty while every format expresses every model
CANNOT_EXPRESS: dict[tuple[str, str], str] = {}
#: deep graphs: the exporters' time grows with the number of layers, not their width (about a minute
#: each on a busy 2-core machine); marked ``slow`` so that ``-m "not slow"`` can leave them out
DEEP = {"p3d63", "p3d131", "p3d199", "densenet3d121", "densenet3d169", "t3d121", "t3d169", "tsn_bninception"}
#: deeper siblings of a family whose shallowest member is already checked (same blocks, more of them):
#: run with VIDNETS_FULL_EXPORT_PARITY=1 to check them too (several minutes on 2 cores)
DEEPER_SIBLINGS = {"p3d131", "p3d199", "densenet3d169", "t3d169"}
FULL = os.environ.get("VIDNETS_FULL_EXPORT_PARITY") == "1"


def _case(name: str):
    marks = [pytest.mark.slow] if name in DEEP else []
    if name in DEEPER_SIBLINGS and not FULL:
        marks.append(
            pytest.mark.skip(reason="deeper sibling of a checked family; VIDNETS_FULL_EXPORT_PARITY=1 runs it")
        )
    return pytest.param(name, marks=marks)


def test_every_registered_model_has_a_small_version():
    assert sorted(SMALL) == sorted(list_models())


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small graphs gain nothing from threads; one keeps eager and runtime results comparable."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("name", [_case(n) for n in list_models()])
def test_export_reproduces_eager_logits(name, tmp_path):
    kwargs, shape = SMALL[name]
    torch.manual_seed(0)
    model = create(name, num_classes=NUM_CLASSES, **kwargs).eval()
    example = torch.randn(2, *shape)
    program = None
    for fmt, filename in FORMATS.items():
        path = tmp_path / filename
        reason = CANNOT_EXPRESS.get((name, fmt))
        if reason is not None:
            with pytest.raises(ExportError, match=reason):
                export_model(model, example, fmt, path)
            continue
        if fmt == "pt2":  # ONNX is exported from the same program
            program = torch.export.export(
                model, (example,), dynamic_shapes=({0: torch.export.Dim("N", min=1)},), strict=False
            )
        export_model(model, example, fmt, path, program=program if fmt != "torchscript" else None)
        parity = check_export(model, fmt, path, shape)
        for batch, result in parity["batches"].items():
            assert result["rel_error"] <= PARITY_TOLERANCES[fmt], (fmt, batch, result)
            assert result["top1_agreement"] == 1.0, (fmt, batch, result)


def test_parity_check_catches_a_wrong_export(tmp_path):
    """An export of other weights than the model's must fail the check, not pass it."""
    model = create("res3d10", num_classes=NUM_CLASSES, width=8).eval()
    other = create("res3d10", num_classes=NUM_CLASSES, width=8).eval()
    shape = (3, 8, 32, 32)
    export_model(other, torch.randn(2, *shape), "onnx", tmp_path / "model.onnx")
    with pytest.raises(ExportError, match="does not reproduce"):
        check_export(model, "onnx", tmp_path / "model.onnx", shape)
