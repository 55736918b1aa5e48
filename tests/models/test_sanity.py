"""Sanity checks that catch silent breakage of a model: its loss at initialisation is about
ln(classes), and it can memorise 16 fixed clips, in fp32 and under bf16 autocast.

Every registered model is checked at step 0, on the smallest input its layout takes. Memorising
runs are for the models whose builders shrink (``width``): the same code paths at CPU-test cost.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vidnets.models import create, list_models

NUM_CLASSES = 10
#: |loss at step 0 − ln(classes)|, averaged over 16 random clips. A classifier whose logits have
#: standard deviation s starts near ln(C) + s²/2; 0.6 admits s ≈ 1 (P3D's msra-initialised fc,
#: measured 2.1–2.8 for ln 10 = 2.30) and catches saturated or exploding heads.
STEP0_TOLERANCE = 0.6
SMALL_KWARGS = {
    "c3d": {"width": 8, "fc_width": 64, "crop_size": 32, "init": "msra"},
    "c3d_search_net": {"crop_size": 32},
    "two_stream_spatial": {"input_size": 64},
    "two_stream_temporal": {"input_size": 64},
}
#: models whose builders shrink, memorised in every precision (the rest: step 0 only)
MEMORISE = ("c3d", "res3d10", "res3d18")


def _small(name: str) -> tuple[nn.Module, torch.Size]:
    kwargs = SMALL_KWARGS.get(name, {"width": 8} if name.startswith("res3d") else {})
    model = create(name, num_classes=NUM_CLASSES, **kwargs)
    shape = list(model.default_input)
    if name.startswith(("two_stream", "tsn")):
        shape[-2:] = [64, 64]
    elif name.startswith("c3d"):
        shape[-2:] = [32, 32]
    else:
        shape[-3], shape[-2:] = min(shape[-3], 8), [32, 32]
    return model, torch.Size(shape)


@pytest.mark.parametrize("name", list_models())
def test_loss_at_step_zero_is_about_ln_classes(name):
    torch.manual_seed(0)
    model, shape = _small(name)
    model.train()  # as at the first optimizer step (batch statistics)
    x = torch.randn(16, *shape)
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model(x), torch.arange(16) % NUM_CLASSES)
    assert abs(float(loss) - math.log(NUM_CLASSES)) < STEP0_TOLERANCE, float(loss)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name", MEMORISE)
def test_memorises_sixteen_fixed_clips(name, precision):
    torch.manual_seed(0)
    model, shape = _small(name)
    clips, labels = torch.randn(16, *shape), torch.arange(16) % NUM_CLASSES
    if name.startswith("c3d"):
        model.drop6.p = model.drop7.p = 0.0  # memorising, not regularising
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(60):
        model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(clips)
        loss = nn.functional.cross_entropy(logits.float(), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 5 == 4:
            model.eval()
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                if bool((model(clips).argmax(1) == labels).all()):
                    return
    pytest.fail(f"{name} ({precision}) did not reach 100 % training accuracy on 16 clips in 60 steps")
