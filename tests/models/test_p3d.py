"""P3D ResNet against papers.md §4 / §7 (items 18–21), and 2D-ResNet initialisation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidnets.models import complexity
from vidnets.models.convert import caffe_layer_names
from vidnets.models.p3d import (
    P3D,
    P3D_RELEASE_DROPOUT,
    P3DBottleneck,
    load_2d_resnet_weights,
    p3d63,
    p3d131,
    p3d199,
)


def meta(builder, **kwargs):
    with torch.device("meta"):
        return builder(**kwargs)


def p3d_blocks(model: P3D) -> list[P3DBottleneck]:
    return [m for m in model.modules() if isinstance(m, P3DBottleneck)]


def test_p3d199_params_macs_and_temporal_convs():
    sports = complexity(meta(p3d199, num_classes=487))
    assert sports.params == 66_670_503
    assert abs(sports.gmacs - 18.40) < 0.005
    model = meta(p3d199, num_classes=400)
    assert complexity(model).params == 66_492_240
    assert sum(b.conv_t.weight.numel() for b in p3d_blocks(model)) == 7_507_968


def test_p3d199_depth_and_block_cycle():
    model = meta(p3d199)
    blocks = p3d_blocks(model)
    assert len(blocks) == 47
    assert "".join(b.block_type for b in blocks) == "ABC" * 15 + "AB"
    assert model.layer2[0].block_type == "A" and model.layer1[2].block_type == "C"  # the cycle runs on across stages
    weight_layers = [
        m
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear)) and "downsample" not in name
    ]
    assert len(weight_layers) == 199
    assert not any(isinstance(m, nn.Conv3d) for m in model.layer4.modules())  # res5 is 2D


def test_p3d199_shapes_at_16x160x160():
    model = meta(p3d199)
    x = torch.empty(1, 3, 16, 160, 160, device="meta")
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    assert tuple(x.shape[1:]) == (64, 8, 40, 40)
    x = model.temporal_pool(model.layer1(x))
    x = model.layer2(x)
    assert tuple(x.shape[1:]) == (512, 4, 20, 20)
    x = model.layer3(model.temporal_pool(x))
    assert tuple(x.shape[1:]) == (1024, 2, 10, 10)
    features = model.forward_features(torch.empty(1, 3, 16, 160, 160, device="meta"))
    assert tuple(features.shape[1:]) == (2048, 1, 5, 5)


def test_other_input_sizes_and_depths():
    assert tuple(meta(p3d63).forward_features(torch.empty(1, 3, 32, 64, 64, device="meta")).shape[1:]) == (
        2048,
        2,
        2,
        2,
    )
    assert [len(meta(f).layer3) for f in (p3d63, p3d131, p3d199)] == [6, 23, 36]


@pytest.mark.parametrize(
    "block_type, c_coeffs", [("A", (0.5, 0.5)), ("B", (0.5, 0.5)), ("C", (0.5, 0.5)), ("C", (1.0, 1.0))]
)
def test_block_nonlinearity_placement(block_type, c_coeffs):
    """Caffe's A/B/C equations (papers.md §4.1): no ReLU on T before the sum in B and C; the C sum
    is weighted 0.5/0.5 as in the prototxts' Eltwise layers (or unweighted on request)."""
    torch.manual_seed(0)
    block = P3DBottleneck(16, 4, block_type, stride=1, projection=True, c_block_coeffs=c_coeffs).eval()
    for bn in (m for m in block.modules() if isinstance(m, nn.BatchNorm3d)):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.bias.data.uniform_(-1, 1)
    x = torch.randn(2, 16, 4, 6, 6)
    with torch.no_grad():
        x1 = F.relu(block.bn1(block.conv1(x)))
        s = F.relu(block.bn2(block.conv2(x1)))
        if block_type == "A":
            st = F.relu(block.bn_t(block.conv_t(s)))
        elif block_type == "B":
            st = F.relu(s + block.bn_t(block.conv_t(x1)))
        else:
            st = F.relu(c_coeffs[0] * s + c_coeffs[1] * block.bn_t(block.conv_t(s)))
        expected = F.relu(block.bn3(block.conv3(st)) + block.downsample(x))
        torch.testing.assert_close(block(x), expected)


def test_c_blocks_weighted_half_half_by_default():
    """The prototxts: 15 C blocks with Eltwise coeff 0.5/0.5, the 16 B blocks 1/1."""
    blocks = p3d_blocks(meta(p3d199))
    coeffs = [b.sum_coeffs for b in blocks if b.block_type == "C"]
    assert coeffs == [(0.5, 0.5)] * 15
    assert {b.sum_coeffs for b in blocks if b.block_type == "B"} == {(1.0, 1.0)}
    plain = p3d_blocks(meta(p3d199, c_block_coeffs=(1.0, 1.0)))
    assert {b.sum_coeffs for b in plain if b.block_type == "C"} == {(1.0, 1.0)}
    with pytest.raises(ValueError, match="c_block_coeffs"):
        P3D((3, 4, 6, 3), c_block_coeffs=(0.5,))


def test_single_type_variants_and_dropout():
    assert {b.block_type for b in p3d_blocks(meta(p3d63, block_types="B"))} == {"B"}
    assert meta(p3d199).dropout.p == 0.5
    assert meta(p3d199, dropout=0.1).dropout.p == 0.1
    assert P3D_RELEASE_DROPOUT == {"sports1m": 0.1, "kinetics": 0.5, "kinetics_flow": 0.7}
    flow = meta(p3d199, in_channels=2, dropout=P3D_RELEASE_DROPOUT["kinetics_flow"])
    assert flow.dropout.p == 0.7 and flow.conv1.in_channels == 2
    with pytest.raises(ValueError, match="block_types"):
        P3D((3, 4, 6, 3), block_types="ABD")


# -- initialisation from a torchvision-layout 2D ResNet ------------------------------------------


def resnet2d_state_dict(layers=(3, 4, 6, 3), num_classes=1000, seed=0) -> dict[str, torch.Tensor]:
    """Random tensors under torchvision's resnet50/101/152 key names and shapes."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def bn(prefix: str, c: int) -> None:
        sd[f"{prefix}.weight"] = torch.rand(c, generator=g) + 0.5
        sd[f"{prefix}.bias"] = torch.randn(c, generator=g) * 0.1
        sd[f"{prefix}.running_mean"] = torch.randn(c, generator=g) * 0.1
        sd[f"{prefix}.running_var"] = torch.rand(c, generator=g) + 0.5
        sd[f"{prefix}.num_batches_tracked"] = torch.tensor(100)

    def conv(key: str, out: int, inp: int, k: int) -> None:
        sd[key] = torch.randn(out, inp, k, k, generator=g) * (2 / (inp * k * k)) ** 0.5

    conv("conv1.weight", 64, 3, 7)
    bn("bn1", 64)
    inp = 64
    for stage, blocks in enumerate(layers):
        planes = 64 * 2**stage
        for b in range(blocks):
            p = f"layer{stage + 1}.{b}"
            conv(f"{p}.conv1.weight", planes, inp, 1)
            bn(f"{p}.bn1", planes)
            conv(f"{p}.conv2.weight", planes, planes, 3)
            bn(f"{p}.bn2", planes)
            conv(f"{p}.conv3.weight", planes * 4, planes, 1)
            bn(f"{p}.bn3", planes * 4)
            if b == 0:
                conv(f"{p}.downsample.0.weight", planes * 4, inp, 1)
                bn(f"{p}.downsample.1", planes * 4)
            inp = planes * 4
    sd["fc.weight"] = torch.randn(num_classes, 2048, generator=g) * 0.01
    sd["fc.bias"] = torch.zeros(num_classes)
    return sd


@pytest.fixture(scope="module", params=[(0.5, 0.5), (1.0, 1.0)], ids=["weighted", "unweighted"])
def loaded(request):
    torch.manual_seed(0)
    model = p3d63(num_classes=10, c_block_coeffs=request.param)
    sd = resnet2d_state_dict()
    report = load_2d_resnet_weights(model, sd)
    return model.eval(), sd, report


def test_2d_weights_report(loaded):
    model, sd, report = loaded
    assert report.unexpected == []
    assert report.shape_mismatched == [("fc.weight", (1000, 2048), (10, 2048)), ("fc.bias", (1000,), (10,))]
    assert all(".conv_t." in k or ".bn_t." in k for k in report.missing)
    assert len(report.missing) == 13 * 6  # 13 P3D blocks × (conv_t weight + 5 BN entries)
    assert len(report.loaded) == len(sd) - 2
    torch.testing.assert_close(model.layer1[1].conv2.weight[:, :, 0], sd["layer1.1.conv2.weight"])
    torch.testing.assert_close(model.conv1.weight[:, :, 0], sd["conv1.weight"])
    torch.testing.assert_close(model.layer4[2].conv2.weight, sd["layer4.2.conv2.weight"])  # 2D res5 copies as is


def test_2d_weights_from_local_file(tmp_path):
    sd = resnet2d_state_dict(num_classes=10, seed=1)
    path = tmp_path / "resnet50.pth"
    torch.save(sd, path)
    model = p3d63(num_classes=10)
    report = load_2d_resnet_weights(model, path, temporal_init="msra")
    assert report.shape_mismatched == [] and report.unexpected == []
    torch.testing.assert_close(model.fc.weight, sd["fc.weight"])
    assert not torch.equal(model.layer1[0].conv_t.weight[:, :, 1, 0, 0], torch.eye(64))  # left random
    with pytest.raises(ValueError, match="temporal_init"):
        load_2d_resnet_weights(model, sd, temporal_init="zeros")


def _bottleneck_2d(x: torch.Tensor, sd: dict[str, torch.Tensor], p: str) -> torch.Tensor:
    def bn(t, name):
        return F.batch_norm(
            t, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"], sd[f"{name}.bias"]
        )

    out = F.relu(bn(F.conv2d(x, sd[f"{p}.conv1.weight"]), f"{p}.bn1"))
    out = F.relu(bn(F.conv2d(out, sd[f"{p}.conv2.weight"], padding=1), f"{p}.bn2"))
    out = bn(F.conv2d(out, sd[f"{p}.conv3.weight"]), f"{p}.bn3")
    shortcut = (
        bn(F.conv2d(x, sd[f"{p}.downsample.0.weight"]), f"{p}.downsample.1") if f"{p}.downsample.0.weight" in sd else x
    )
    return F.relu(out + shortcut)


@pytest.mark.parametrize("index", [0, 1, 2])  # res2a = A, res2b = B, res2c = C
def test_identity_temporal_init_reproduces_2d_resnet_per_frame(loaded, index):
    model, sd, _ = loaded
    block = model.layer1[index]
    assert block.block_type == "ABC"[index]
    torch.manual_seed(index)
    clip = torch.randn(1, 256 if index else 64, 4, 8, 8)  # frames differ: the equality holds for any clip
    with torch.no_grad():
        got = block(clip)
        frames = clip[0].transpose(0, 1)  # (T, C, H, W)
        expected = _bottleneck_2d(frames, sd, f"layer1.{index}").transpose(0, 1).unsqueeze(0)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


PROTOTXTS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "prototxts"


@pytest.mark.skipif(not PROTOTXTS.is_dir(), reason="authors' prototxts not present")
@pytest.mark.parametrize("prototxt", ["p3d_sports1m.prototxt", "p3d_kinetics.prototxt", "p3d_kinetics_flow.prototxt"])
def test_sum_coefficients_are_the_prototxts(prototxt):
    """Each block's S + T coefficients equal its Eltwise layer's in the authors' deploy prototxt."""
    eltwise = {}
    for chunk in re.split(r"\blayer\s*\{", (PROTOTXTS / prototxt).read_text())[1:]:
        name = re.search(r'name:\s*"([^"]+)"', chunk).group(1)
        if name.endswith("_branch2b_st"):
            coeffs = tuple(float(c) for c in re.findall(r"coeff:\s*([\d.]+)", chunk)) or (1.0, 1.0)
            eltwise[name.removesuffix("_st")] = coeffs
    model = meta(p3d199)
    by_module = {path: name for name, path in caffe_layer_names(model, "p3d199").items() if name.startswith("res")}
    blocks = {f"layer{i}.{j}": b for i in (1, 2, 3) for j, b in enumerate(getattr(model, f"layer{i}"))}
    got = {by_module[f"{path}.conv2"]: b.sum_coeffs for path, b in blocks.items() if b.block_type != "A"}
    assert len(eltwise) == 31 and got == eltwise  # 16 B blocks at 1/1, 15 C blocks at 0.5/0.5
    assert sorted(set(eltwise.values())) == [(0.5, 0.5), (1.0, 1.0)]


def test_zero_init_residual_starts_every_block_as_its_shortcut():
    """With ``zero_init_residual`` each bottleneck's last BN starts at γ = 0, so the net starts as
    its stem, shortcuts and pools: with only max-pools in time, a clip and its time reversal give
    the same features (the default init does not)."""
    from vidnets.models.p3d import Bottleneck2d, P3DBottleneck, p3d63

    clip = torch.randn(2, 3, 8, 32, 32)
    reversed_clip = clip.flip(2)
    for zero, same in ((True, True), (False, False)):
        torch.manual_seed(0)
        net = p3d63(num_classes=4, width=8, zero_init_residual=zero).eval()
        blocks = [m for m in net.modules() if isinstance(m, (P3DBottleneck, Bottleneck2d))]
        assert len(blocks) == 16 and all(bool((b.bn3.weight == 0).all()) == zero for b in blocks)
        with torch.no_grad():
            a, b = net.forward_features(clip), net.forward_features(reversed_clip)
        assert torch.allclose(a, b) == same
