"""extract_features: named activations from any model through forward hooks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidnets.models import create
from vidnets.models.features import extract_features, resolve_feature_name


class Reused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.fc(self.act(x)))


def test_any_model_by_module_path():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Linear(8, 2)).eval()
    x = torch.randn(3, 4)
    f = extract_features(net, x, ["0", "2"])
    assert f["0"].shape == (3, 8) and torch.allclose(f["2"], net(x))
    # the in-place ReLU ran after the hook: the clone keeps the pre-ReLU values
    assert torch.allclose(f["0"], net[0](x)) and (f["0"] < 0).any()


@pytest.mark.parametrize(
    "name, x, layers, shapes",
    [
        ("two_stream_spatial", (1, 3, 224, 224), ["pool5", "full7"], [(1, 512, 6, 6), (1, 2048)]),
        ("tsn_bninception", (1, 3, 3, 224, 224), ["backbone.inception_5b", "fc"], [(3, 1024, 7, 7), (3, 101)]),
        ("c3d", (1, 3, 16, 112, 112), ["fc6", "fc7"], [(1, 4096), (1, 4096)]),
    ],
)
def test_works_for_the_registered_models(name, x, layers, shapes):
    with torch.device("meta"):
        net = create(name).eval()
    f = extract_features(net, torch.empty(x, device="meta"), layers)
    assert [tuple(f[n].shape) for n in layers] == shapes


def test_aliases_and_errors():
    with torch.device("meta"):
        c3d = create("c3d")
    assert resolve_feature_name(c3d, "fc6") == "relu6"
    assert resolve_feature_name(c3d, "fc6", resolve_aliases=False) == "fc6"
    assert resolve_feature_name(c3d, "conv5b") == "relu5b"
    x = torch.empty(1, 3, 16, 112, 112, device="meta")
    with pytest.raises(KeyError, match="no submodule 'fc9'"):
        extract_features(c3d, x, ["fc9"])
    with pytest.raises(TypeError, match="list of names"):
        extract_features(c3d, x, "fc6")
    with pytest.raises(RuntimeError, match="ran 2 times"):
        extract_features(Reused(), torch.randn(1, 4), ["act"])
