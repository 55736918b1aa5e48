"""C3D and the kernel-depth search net: shapes, counts and weight loading (papers.md §1, §7 items 1–6)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidnets.models import complexity, create, list_models
from vidnets.models.c3d import C3D, c3d, c3d_search_net, load_c3d_sports1m
from vidnets.models.features import extract_features


def on_meta(builder, **kwargs):
    with torch.device("meta"):
        return builder(**kwargs)


def tiny_c3d(num_classes: int = 487) -> C3D:
    """The Sports-1M layer layout (same names) with tiny widths, for fast loading tests."""
    return C3D(num_classes=num_classes, stages=((4,), (4,), (4, 4), (4, 4), (4, 4)), fc_width=16, crop_size=32)


def test_registered():
    assert {"c3d", "c3d_search_net"} <= set(list_models("c3d"))
    assert isinstance(create("c3d_search_net", num_classes=5, crop_size=56), C3D)


def test_shapes_follow_the_sports1m_prototxt():
    net = on_meta(c3d).eval()
    x = torch.empty(2, 3, 16, 112, 112, device="meta")
    f = extract_features(net, x, ["pool1", "pool2", "conv5b", "pool5", "fc6", "fc7", "fc8"])
    assert f["pool1"].shape == (2, 64, 16, 56, 56)  # pool1 is 1×2×2: time kept
    assert f["pool2"].shape == (2, 128, 8, 28, 28)
    assert f["conv5b"].shape == (2, 512, 2, 7, 7)
    assert f["pool5"].shape == (2, 512, 1, 4, 4)  # Caffe ceil: 7 → 4
    assert net.fc6.in_features == 8192
    assert f["fc6"].shape == f["fc7"].shape == (2, 4096)
    assert f["fc8"].shape == (2, 487)
    assert net.forward_features(x).shape == (2, 512, 1, 4, 4)
    assert net.forward_head(net.forward_features(x), pre_logits=True).shape == (2, 4096)


@pytest.mark.parametrize("num_classes, params", [(487, 79_991_015), (101, 78_409_573)])
def test_parameter_count(num_classes, params):
    net = on_meta(c3d, num_classes=num_classes)
    assert complexity(net).params == params
    conv = sum(p.numel() for m in net.modules() if isinstance(m, nn.Conv3d) for p in m.parameters())
    assert conv == 27_655_936


def test_macs_match_the_published_38_5g():
    assert complexity(on_meta(c3d)).macs == 38_548_959_232


def test_pool5_rounding_modes():
    floor = on_meta(c3d, num_classes=400, pool5="floor")
    assert floor.fc6.in_features == 4608  # 512×1×3×3
    assert complexity(floor).params == 64_954_512  # VMZ's "64.9M", not C3D's 8192-input fc6
    pad = on_meta(c3d, pool5="pad")
    assert pad.fc6.in_features == 8192 and complexity(pad).params == 79_991_015
    # "pad" and "ceil" give the same shape but different windows (mmaction2 vs Caffe)
    x = torch.randn(1, 2, 2, 7, 7)
    ceil_pool = C3D(stages=((2,),) * 5, fc_width=4).pool5
    pad_pool = C3D(stages=((2,),) * 5, fc_width=4, pool5="pad").pool5
    a, b = ceil_pool(x), pad_pool(x)
    assert a.shape == b.shape == (1, 2, 1, 4, 4)
    assert not torch.equal(a, b)
    assert torch.equal(a[:, :, 0, 0, 0], x[..., 0:2, 0:2].amax(dim=(-3, -2, -1)))  # ceil: windows start at 0
    with pytest.raises(ValueError, match="pool5"):
        C3D(pool5="round")


def test_search_net_counts():
    assert complexity(on_meta(c3d_search_net)).params == 17_444_965
    # The appendix's resolution study: net-64/128/256 ≈ 11.1M / 17.5M / 34.8M [S:C3D-es]
    for crop, paper in [(56, 11.1e6), (112, 17.5e6), (224, 34.8e6)]:
        params = complexity(on_meta(c3d_search_net, crop_size=crop), (3, 16, crop, crop)).params
        assert abs(params - paper) / paper < 0.005
    varying = on_meta(c3d_search_net, temporal_depths=[3, 3, 5, 5, 7])
    assert [getattr(varying, f"conv{i}a").kernel_size for i in range(1, 6)] == [
        (3, 3, 3),
        (3, 3, 3),
        (5, 3, 3),
        (5, 3, 3),
        (7, 3, 3),
    ]
    assert varying.fc6.in_features == 256 * 1 * 4 * 4
    with pytest.raises(ValueError, match="temporal_depths"):
        c3d_search_net(temporal_depths=[3, 3, 5])
    with pytest.raises(ValueError, match="temporal_depths"):
        c3d_search_net(temporal_depths=4)


def test_init_follows_the_prototxt():
    net = tiny_c3d()
    assert torch.all(net.conv1a.bias == 0) and torch.all(net.conv3b.bias == 1)
    assert torch.all(net.fc6.bias == 1) and torch.all(net.fc8.bias == 0)


@pytest.mark.parametrize("builder_kwargs", [dict(), dict(temporal_depths=[7, 5, 5, 3, 3])])
def test_forward_backward_small(builder_kwargs):
    net = c3d_search_net(num_classes=7, crop_size=32, **builder_kwargs)
    out = net(torch.randn(1, 3, 16, 32, 32))
    assert out.shape == (1, 7)
    out.sum().backward()
    assert net.conv1a.weight.grad is not None and net.conv1a.weight.grad.abs().sum() > 0


def test_wrong_input_is_explained():
    net = tiny_c3d()
    with pytest.raises(ValueError, match=r"\(N, C, T, H, W\)"):
        net(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="fc6 expects 4 inputs"):
        net(torch.randn(1, 3, 16, 64, 64))


def test_fc6_feature_is_post_relu_like_caffe():
    torch.manual_seed(0)
    net = tiny_c3d().eval()
    nn.init.normal_(net.fc6.bias)  # make some pre-activations negative
    x = torch.randn(2, 3, 16, 32, 32)
    caffe = extract_features(net, x, ["fc6", "fc7"])
    raw = extract_features(net, x, ["fc6"], resolve_aliases=False)
    assert (raw["fc6"] < 0).any()
    assert torch.equal(caffe["fc6"], torch.relu(raw["fc6"]))
    assert caffe["fc7"].shape == (2, 16) and (caffe["fc7"] >= 0).all()


def port_layout(state: dict) -> dict:
    """Rename our keys to the common PyTorch port layout (conv1, conv2, conv3a, …, fc8)."""
    return {k.replace("conv1a.", "conv1.").replace("conv2a.", "conv2."): v for k, v in state.items()}


def test_load_sports1m_port_layout(tmp_path):
    torch.manual_seed(0)
    source = tiny_c3d(487)
    state = port_layout(source.state_dict())
    assert "conv1.weight" in state and "conv3b.bias" in state and "fc8.bias" in state
    path = tmp_path / "c3d_sports1m.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)

    same = tiny_c3d(487)
    report = load_c3d_sports1m(same, path)
    assert len(report.matched) == len(state) and not report.missing and not report.mismatched
    for key, value in source.state_dict().items():
        assert torch.equal(same.state_dict()[key], value), key

    finetune = tiny_c3d(101)  # Sports-1M weights into a UCF101 model: fc8 is skipped and reported
    before = finetune.fc8.weight.clone()
    report = load_c3d_sports1m(finetune, path)
    assert report.missing == []
    assert [m.split(":")[0] for m in report.mismatched] == ["fc8.weight", "fc8.bias"]
    assert torch.equal(finetune.fc8.weight, before)
    assert torch.equal(finetune.conv1a.weight, source.conv1a.weight)
    assert "loaded 20 tensors" in str(report)  # 22 in the file, fc8 weight and bias skipped


class NotWeights:
    pass


def test_load_refuses_code_and_foreign_files(tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "obj": NotWeights()}, evil)
    with pytest.raises(ValueError, match="weights-only"):
        load_c3d_sports1m(tiny_c3d(), evil)
    foreign = tmp_path / "foreign.pth"
    torch.save({"encoder.layer.weight": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="no key matches"):
        load_c3d_sports1m(tiny_c3d(), foreign)
    with pytest.raises(FileNotFoundError):
        load_c3d_sports1m(tiny_c3d(), tmp_path / "absent.pth")


def test_batch_norm_switch_adds_a_bn_per_conv_and_folds_exactly():
    """``batch_norm=True`` (not in the paper; off by default) puts a BatchNorm between every conv
    and its ReLU; the inference fast path folds each one back into its conv."""
    from vidnets.engine.fastpath import fold_batchnorm

    plain = c3d(num_classes=4, width=8, fc_width=32, clip_len=16, crop_size=32, init="msra")
    model = c3d(num_classes=4, width=8, fc_width=32, clip_len=16, crop_size=32, init="msra", batch_norm=True)
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in plain.modules())
    convs = [n for n in model._trunk if n.startswith("conv")]
    assert [model._trunk[model._trunk.index(n) + 1] for n in convs] == [n.replace("conv", "bn") for n in convs]
    torch.manual_seed(0)
    x = torch.randn(3, 3, 16, 32, 32)
    model.train()
    model(x)  # non-trivial running statistics
    model.eval()
    expected = model(x)
    assert len(fold_batchnorm(model)) == len(convs)
    torch.testing.assert_close(model(x), expected, atol=1e-4, rtol=1e-4)


def test_temporal_depth_one_is_the_2d_twin():
    """``temporal_depths=1`` gives the paper's depth-1 net: every kernel is 1×3×3, so each frame is
    convolved on its own and only the pools mix time."""
    three_d, two_d = (
        c3d(num_classes=4, width=8, fc_width=32, crop_size=32),
        c3d(num_classes=4, width=8, fc_width=32, crop_size=32, temporal_depths=1),
    )
    kernels = lambda net: [m.kernel_size for m in net.modules() if isinstance(m, nn.Conv3d)]
    assert set(kernels(three_d)) == {(3, 3, 3)} and set(kernels(two_d)) == {(1, 3, 3)}
    assert two_d(torch.randn(2, 3, 16, 32, 32)).shape == (2, 4)
    with pytest.raises(ValueError, match="temporal_depths"):
        c3d(num_classes=4, width=8, fc_width=32, crop_size=32, temporal_depths=2)
