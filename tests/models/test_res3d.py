"""Res3D against the facts of papers.md §6 / §7 (items 24–27)."""

from __future__ import annotations

import pytest
import torch

from vidnets.models import complexity
from vidnets.models.res3d import Res3D, res3d10, res3d16, res3d18, res3d18_simplified, res3d26, res3d34


def meta(builder, **kwargs):
    with torch.device("meta"):
        return builder(**kwargs)


def stage_shapes(model: Res3D, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Output shape (without batch) of conv1 and of every stage, computed on the meta device."""
    x = torch.empty(1, *shape, device="meta")
    x = model.relu(model.bn1(model.conv1(x)))
    shapes = [tuple(x.shape[1:])]
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    return shapes


def test_res3d18_stage_shapes():
    model = meta(res3d18)
    assert stage_shapes(model, (3, 8, 112, 112)) == [
        (64, 8, 56, 56),
        (64, 8, 56, 56),
        (128, 4, 28, 28),
        (256, 2, 14, 14),
        (512, 1, 7, 7),
    ]


def test_res3d18_params_and_macs():
    # torchvision r3d_18 topology (no res2a projection) at 400 classes: its published num_params.
    tv = complexity(meta(res3d18, num_classes=400))
    assert tv.params == 33_371_472
    assert tv.macs == 20_348_379_136
    assert abs(tv.gmacs - 20.35) < 0.01
    # default: 101 classes
    assert complexity(meta(res3d18)).params == 33_218_085
    # the C3D-v1.1 prototxt's res2a 1x1x1 projection
    proto = complexity(meta(res3d18, res2_projection=True))
    assert proto.params == 33_222_309
    assert abs(proto.gmacs - 20.45) < 0.01


def test_16_frames_doubles_compute():
    assert complexity(meta(res3d18, num_classes=400), (3, 16, 112, 112)).macs == 40_696_553_472


def test_simplified_net():
    model = meta(res3d18_simplified)
    assert model.default_input == (3, 4, 112, 112)
    assert stage_shapes(model, (3, 4, 112, 112))[-1] == (512, 1, 7, 7)
    assert abs(complexity(model).gmacs - 10.78) < 0.01


@pytest.mark.parametrize(
    "builder, blocks",
    [
        (res3d10, [1, 1, 1, 1]),
        (res3d16, [2, 2, 2, 1]),
        (res3d18, [2, 2, 2, 2]),
        (res3d26, [2, 3, 4, 3]),
        (res3d34, [3, 4, 6, 3]),
    ],
)
def test_depths(builder, blocks):
    model = meta(builder)
    assert [len(layer) for layer in (model.layer1, model.layer2, model.layer3, model.layer4)] == blocks
    convs = sum(1 for m in model.modules() if isinstance(m, torch.nn.Conv3d) and m.kernel_size != (1, 1, 1))
    assert convs + 1 == int(builder.__name__[5:])  # conv layers + fc = the depth in the name


def test_no_max_pool_and_msra_fan_out():
    torch.manual_seed(0)
    model = res3d10()
    assert not any(isinstance(m, torch.nn.MaxPool3d) for m in model.modules())
    w = model.layer4[0].conv2.weight  # fan_out = 512 * 27
    assert abs(w.std().item() - (2 / (512 * 27)) ** 0.5) < 0.1 * (2 / (512 * 27)) ** 0.5


def test_mixed_2d_3d_stages():
    model = meta(res3d18, conv_types=("3d", "3d", "3d", "2d", "2d"))
    assert model.layer3[0].conv1.kernel_size == (1, 3, 3)
    assert model.layer3[0].conv1.stride == (1, 2, 2)  # a 2D stage never strides in time
    assert model.layer2[0].conv1.kernel_size == (3, 3, 3)
    assert stage_shapes(model, (3, 8, 112, 112))[-1] == (512, 4, 7, 7)


def test_fully_2d_single_frame_baseline_trains():
    torch.manual_seed(0)
    model = res3d10(conv_types="2d", width=16, num_classes=3)
    assert model.conv1.kernel_size == (1, 7, 7)
    x = torch.randn(2, 3, 1, 32, 32)
    out = model(x)
    assert out.shape == (2, 3)
    out.sum().backward()
    assert model.conv1.weight.grad is not None


def test_width_scales_channels():
    model = meta(res3d10, width=16)
    assert stage_shapes(model, (3, 8, 32, 32))[-1] == (128, 1, 2, 2)
    assert model.fc.in_features == 128


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="conv_types"):
        Res3D((1, 1, 1, 1), conv_types=("3d", "4d", "3d", "3d", "3d"))
    with pytest.raises(ValueError, match="conv_types"):
        Res3D((1, 1, 1, 1), conv_types=("3d", "3d"))
