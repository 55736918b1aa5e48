"""Interface checks run on every registered model (all families), on small inputs."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from vidnets.models import base, create, list_models, model_info
from vidnets.models.commands import model_rows, register

# Small valid inputs (one sample, without the batch axis) per model; a model not listed here runs at
# its default input. Every stage still keeps at least one position, so every layer is exercised.
SMOKE_INPUTS: dict[str, tuple[int, ...]] = {
    **{name: (3, 16, 16, 16) for name in ("p3d63", "p3d131", "p3d199")},
    **{name: (3, 4, 16, 16) for name in ("res3d10", "res3d16", "res3d18", "res3d26", "res3d34", "res3d18_simplified")},
    **{name: (3, 8, 16, 16) for name in ("densenet3d121", "densenet3d169", "t3d121", "t3d169")},
}

NUM_CLASSES = 5


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny inputs gain nothing from threads, and on a busy 2-core machine OpenMP spin-waiting made
    each small op ~20× slower; one thread keeps this file fast and its timing steady."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def smoke_shape(name: str, model: torch.nn.Module) -> tuple[int, ...]:
    """The model's small input; after ``adapt_input_channels`` it follows the model's new channel count."""
    if name not in SMOKE_INPUTS:
        return tuple(model.default_input)
    shape = SMOKE_INPUTS[name]
    return (model.in_channels, *shape[1:])


def randn(batch: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", list_models())
def test_model_interface(name):
    """One build per model (they are large): train step, pre-logits, export, reset, channel adaptation."""
    torch.manual_seed(0)
    model = create(name, num_classes=NUM_CLASSES)
    assert isinstance(model, base.VideoClassifier)
    assert tuple(model.default_input) == model_info(name).default_input

    # forward + backward in training mode (batch 2: BN needs more than one value per channel)
    model.train()
    out = model(randn(2, smoke_shape(name, model)))
    assert out.shape == (2, NUM_CLASSES)
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: no gradient for {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.zero_grad(set_to_none=True)

    model.eval()
    x = randn(1, smoke_shape(name, model))
    with torch.no_grad():
        # forward_head(pre_logits=True) is the pooled vector the classifier reads
        features = model.forward_features(x)
        pooled = model.forward_head(features, pre_logits=True)
        logits = model.forward_head(features)
        head = model.get_classifier()
        assert pooled.shape == (1, head.in_features)
        torch.testing.assert_close(head(pooled), logits)
        torch.testing.assert_close(model(x), logits)

        # export reproduces eager
        exported = torch.export.export(model, (x,))
        torch.testing.assert_close(exported.module()(x), logits, rtol=1e-4, atol=1e-5)

        # a new classifier size
        model.reset_classifier(7)
        assert model(x).shape == (1, 7) and model.num_classes == 7

    # cross-modality input adaptation: the new kernel is the RGB mean, replicated
    rgb = model.get_submodule(model.first_conv).weight.detach().clone()
    model.adapt_input_channels(10)
    new = model.get_submodule(model.first_conv).weight
    assert new.shape[1] == 10
    torch.testing.assert_close(new, rgb.mean(dim=1, keepdim=True).expand_as(new))
    with torch.no_grad():
        assert model(randn(1, smoke_shape(name, model))).shape == (1, 7)


def test_models_table_covers_every_model():
    rows = model_rows(num_classes=NUM_CLASSES)
    assert [r["name"] for r in rows] == list_models()
    for row in rows:
        assert row["params"] > 0 and row["macs"] > 0
        assert row["family"] == model_info(row["name"]).family


def test_models_command_json(capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["models", "--json", "--family", "res3d", "--num-classes", "400"])
    assert args.func(args) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["res3d18"]["params"] == 33_371_472  # torchvision r3d_18 topology at 400 classes
    assert rows["res3d18"]["macs"] == 20_348_379_136
    args = parser.parse_args(["models", "--family", "p3d"])
    assert args.func(args) == 0
    table = capsys.readouterr().out
    assert "MACs" in table and "p3d199" in table and "18.40" in table
