"""DenseNet3D and T3D against papers.md §5 / §7 (items 22–23) and the TTL design."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidnets.models import complexity
from vidnets.models.blocks import same_conv3d
from vidnets.models.t3d import (
    DEFAULT_TTL_PRESET,
    T3D_TTL_PRESETS,
    DenseNet3D,
    HalvingAvgPool3d,
    TemporalTransition,
    densenet3d121,
    densenet3d169,
    t3d121,
    t3d169,
)


def meta(builder, **kwargs):
    with torch.device("meta"):
        return builder(**kwargs)


def test_densenet3d_params_macs_and_width():
    d121 = complexity(meta(densenet3d121, num_classes=400))
    assert d121.params == 11_658_896
    assert abs(d121.gmacs - 34.1) < 0.05
    assert complexity(meta(densenet3d121, num_classes=101)).params == 11_352_421
    d169 = meta(densenet3d169, num_classes=400)
    assert complexity(d169).params == 19_214_992
    assert d169.fc.in_features == 1664


def test_densenet3d121_shapes_at_32x224x224():
    model = meta(densenet3d121)
    x = torch.empty(1, 3, 32, 224, 224, device="meta")
    x = model.conv0(x)
    assert tuple(x.shape[1:]) == (64, 16, 112, 112)  # conv0 strides in time too
    x = model.stem(x)
    assert tuple(x.shape[1:]) == (64, 8, 56, 56)
    expected = [
        (256, 8, 56, 56),
        (128, 4, 28, 28),
        (512, 4, 28, 28),
        (256, 2, 14, 14),
        (1024, 2, 14, 14),
        (512, 1, 7, 7),
        (1024, 1, 7, 7),
    ]
    for stage, shape in zip(model.features, expected):
        x = stage(x)
        assert tuple(x.shape[1:]) == shape


def test_halving_pool_matches_authors_avgpool_on_even_sizes():
    x = torch.randn(1, 2, 4, 6, 8)
    torch.testing.assert_close(HalvingAvgPool3d()(x), nn.AvgPool3d(2, 2)(x))
    assert HalvingAvgPool3d()(torch.randn(1, 2, 1, 3, 5)).shape == (1, 2, 1, 2, 3)


@pytest.mark.parametrize("depth", [2, 4, 6])
def test_even_temporal_kernels_keep_length(depth):
    conv = same_conv3d(3, 2, (depth, 3, 3))
    for frames in (1, 2, 5, 8):
        assert conv(torch.randn(1, 3, frames, 7, 7)).shape == (1, 2, frames, 7, 7)


def test_even_kernel_padding_puts_the_extra_frame_at_the_end():
    conv = same_conv3d(1, 1, (4, 1, 1))
    with torch.no_grad():
        conv[1].weight.copy_(torch.tensor([1.0, 10.0, 100.0, 1000.0]).view(1, 1, 4, 1, 1))
    x = torch.arange(1.0, 6.0).view(1, 1, 5, 1, 1)
    # output t reads frames t-1 .. t+2 (one before, two after)
    expected = torch.tensor(
        [
            0 * 1 + 1 * 10 + 2 * 100 + 3 * 1000,
            1 + 20 + 300 + 4000,
            2 + 30 + 400 + 5000,
            3 + 40 + 500 + 0,
            4 + 50 + 0 + 0.0,
        ]
    )
    torch.testing.assert_close(conv(x).flatten(), expected)


def _ttls(model: nn.Module) -> list[TemporalTransition]:
    return [m for m in model.modules() if isinstance(m, TemporalTransition)]


def _depths(model: nn.Module) -> list[list[tuple[int, ...]]]:
    return [
        [next(m for m in b.modules() if isinstance(m, nn.Conv3d)).kernel_size for b in t.branches] for t in _ttls(model)
    ]


def test_t3d_default_is_the_authors_draft_ttl():
    """MohsenFayyaz89/T3D models/T3D.py: 1×1×1, 3×3×3, 4×3×3 branches of 128, kept at 384 channels."""
    model = meta(t3d121)
    assert DEFAULT_TTL_PRESET == "authors"
    assert _depths(model) == [[(1, 1, 1), (3, 3, 3), (4, 3, 3)]] * 3
    assert [(t.transition[2].in_channels, t.transition[2].out_channels) for t in _ttls(model)] == [(384, 384)] * 3
    assert model.fc.in_features == 384 + 16 * 32
    x = torch.empty(1, 3, 32, 224, 224, device="meta")
    assert tuple(model.forward_features(x).shape[1:]) == (896, 1, 7, 7)


# T3D-121 / T3D-169 at 400 classes: params and GMACs at 3×32×224×224 (module docstring table)
PRESET_COST = {
    "authors": (29_731_728, 114.30, 38_374_032),
    "keras": (36_723_344, 120.06, 49_290_128),
    "tf_keras": (25_577_232, 120.27, 33_620_496),
    "half_block": (26_594_192, 118.14, 36_002_704),
}


@pytest.mark.parametrize("preset", sorted(PRESET_COST))
def test_t3d_presets_params_and_macs(preset):
    params121, gmacs121, params169 = PRESET_COST[preset]
    cost = complexity(meta(t3d121, num_classes=400, ttl_preset=preset))
    assert cost.params == params121
    assert abs(cost.gmacs - gmacs121) < 0.005
    assert complexity(meta(t3d169, num_classes=400, ttl_preset=preset)).params == params169


def test_t3d_preset_layouts():
    keras = meta(t3d121, ttl_preset="keras")  # rekon/T3D-keras: spatial first branch, full block width kept
    assert _depths(keras) == [[(1, 3, 3), (3, 3, 3), (4, 3, 3)]] * 3
    assert [t.transition[2].out_channels for t in _ttls(keras)] == [256, 640, 1408]
    tf_keras = meta(t3d121, ttl_preset="tf_keras")  # deeper TTL1, 384 halved to 192
    assert [[k[0] for k in d] for d in _depths(tf_keras)] == [[1, 3, 6], [1, 3, 4], [1, 3, 4]]
    assert [t.transition[2].out_channels for t in _ttls(tf_keras)] == [192] * 3
    half = meta(t3d121, ttl_preset="half_block")  # DenseNet3D's widths: same final width as densenet3d121
    assert [t.transition[2].out_channels for t in _ttls(half)] == [128, 256, 512]
    assert half.fc.in_features == 1024 and meta(t3d169, ttl_preset="half_block").fc.in_features == 1664
    assert set(T3D_TTL_PRESETS) == set(PRESET_COST) and all(p.source for p in T3D_TTL_PRESETS.values())
    with pytest.raises(ValueError, match="ttl_preset"):
        t3d121(ttl_preset="paper")


def test_t3d_options():
    custom = meta(t3d121, ttl_out_channels=384, ttl_width=64)
    assert [t.transition[2].in_channels for t in _ttls(custom)] == [192] * 3
    assert [t.transition[2].out_channels for t in _ttls(custom)] == [384] * 3
    with pytest.raises(ValueError, match="ttl_kernels"):
        DenseNet3D((6, 12, 24, 16), ttl_kernels=(((1, 1, 1),),))
    with pytest.raises(ValueError, match="ttl_out_channels"):
        DenseNet3D((6, 12, 24, 16), ttl_kernels=((((1, 1, 1),),)) * 3, ttl_out_channels="double")


def test_memory_efficient_gives_the_same_forward_and_gradients():
    torch.manual_seed(0)
    plain = DenseNet3D((2, 2), num_init_features=8, growth_rate=4, bn_size=2, num_classes=3)
    efficient = DenseNet3D((2, 2), num_init_features=8, growth_rate=4, bn_size=2, num_classes=3, memory_efficient=True)
    efficient.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 4, 16, 16)
    out_plain, out_eff = plain(x), efficient(x)
    torch.testing.assert_close(out_eff, out_plain)
    out_plain.sum().backward()
    out_eff.sum().backward()
    torch.testing.assert_close(efficient.conv0.weight.grad, plain.conv0.weight.grad)
