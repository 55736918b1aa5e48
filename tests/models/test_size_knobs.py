"""The size knobs of the CPU profiles: every layer scales with them, the defaults are the papers'
nets, and a bad value is a one-line error naming the key."""

from __future__ import annotations

import pytest
import torch

from vidnets.models import create

pytestmark = pytest.mark.usefixtures("one_thread")


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_p3d_width_scales_every_stage_and_fc():
    net = create("p3d63", num_classes=4, width=8).eval()
    assert net.conv1.out_channels == 8 and net.layer1[0].conv1.out_channels == 8
    assert net.layer3[0].conv3.out_channels == 4 * 32 and net.fc.in_features == 32 * 8
    assert net(torch.zeros(1, 3, 8, 32, 32)).shape == (1, 4)
    with torch.device("meta"):
        assert params(create("p3d63", width=64)) == params(create("p3d63"))  # the paper's net


def test_cnnm_width_and_fc_width():
    net = create("two_stream_spatial", num_classes=4, width=12, fc_width=256, input_size=64, init="msra").eval()
    assert [getattr(net, f"conv{i}").out_channels for i in range(1, 6)] == [12, 32, 64, 64, 64]
    assert (net.full6.out_features, net.full7.out_features, net.fc8.in_features) == (256, 128, 128)
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 4)
    temporal = create("two_stream_temporal", heads={"a": 4, "b": 3}, width=12, fc_width=256, input_size=64)
    assert {k: v.shape for k, v in temporal(torch.zeros(1, 20, 64, 64)).items()} == {"a": (1, 4), "b": (1, 3)}
    with torch.device("meta"):
        assert params(create("two_stream_spatial", width=96, fc_width=4096)) == 90_627_813


def test_bninception_width_scales_every_conv():
    net = create("tsn_bninception", num_classes=4, width=8, input_size=32).eval()
    assert net.backbone.out_channels == 128 and net.fc.in_features == 128 and net.default_input[-1] == 32
    assert net(torch.zeros(1, 3, 3, 32, 32)).shape == (1, 4)
    with torch.device("meta"):
        assert params(create("tsn_bninception", width=64)) == 10_373_765


@pytest.mark.parametrize(
    "name, key, value",
    [
        ("p3d63", "width", 0),
        ("two_stream_spatial", "width", 0),
        ("two_stream_temporal", "fc_width", -1),
        ("tsn_bninception", "width", 0),
        ("t3d121", "num_init_features", 0),
        ("t3d121", "ttl_width", 0),
        ("densenet3d121", "growth_rate", 0),
        ("t3d121", "ttl_out_channels", 0),
        ("p3d63", "width", 2.5),
    ],
)
def test_bad_size_is_a_one_line_error_naming_the_key(name, key, value):
    with pytest.raises(ValueError, match=rf"{key}={value!r}: expected a positive int"), torch.device("meta"):
        create(name, **{key: value})


def test_cnnm_init_is_checked():
    with pytest.raises(ValueError, match="init='he': expected caffe or msra"):
        create("two_stream_spatial", init="he")
