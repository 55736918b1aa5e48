"""TSN with BN-Inception: counts, consensus, partial BN, optimiser groups, cross-modality init
(papers.md §3, §7 items 12–16)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidnets.models import complexity, list_models
from vidnets.models.tsn import TSN, load_bninception_weights, rgb_difference, tsn_bninception

SMALL = 64  # the smallest round input that passes every ceil-mode pool (64 → 2×2 at inception 5b)


def on_meta(**kwargs) -> TSN:
    with torch.device("meta"):
        return tsn_bninception(**kwargs)


def bns(model: TSN) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def test_registered_and_defaults():
    assert "tsn_bninception" in list_models("tsn")
    rgb, flow, diff = on_meta(), on_meta(modality="flow"), on_meta(modality="rgbdiff")
    assert rgb.num_segments == 3 and rgb.default_input == (3, 3, 224, 224)
    assert (flow.in_channels, diff.in_channels) == (10, 15)
    assert flow.backbone.conv1_7x7_s2.weight.shape == (64, 10, 7, 7)
    assert (rgb.dropout.p, flow.dropout.p) == (0.8, 0.7)
    assert len(bns(rgb)) == 69  # 1 unfrozen + 68 frozen in the Caffe prototxt
    with pytest.raises(ValueError, match="modality"):
        tsn_bninception(modality="depth")


@pytest.mark.parametrize("modality, params, gmacs", [("rgb", 10_373_765, 2.03), ("flow", 10_395_717, 2.31)])
def test_counts_per_snippet(modality, params, gmacs):
    net = on_meta(modality=modality)
    c = complexity(net, (1, *net.default_input[1:]))  # one 224² snippet
    assert c.params == params
    assert round(c.gmacs, 2) == gmacs
    assert complexity(on_meta(num_classes=1000), (1, 3, 224, 224)).params == 11_295_240  # ImageNet head


def test_feature_shapes():
    net = on_meta().eval()
    x = torch.empty(2, 3, 3, 224, 224, device="meta")
    maps = net.forward_features(x)
    assert maps.shape == (2, 3, 1024, 7, 7)
    assert net.forward_head(maps, pre_logits=True).shape == (2, 1024)
    assert net(x).shape == (2, 101)
    assert net(torch.empty(6, 3, 224, 224, device="meta")).shape == (2, 101)  # (N·K, C, H, W)
    assert net(torch.empty(1, 25, 3, 224, 224, device="meta")).shape == (1, 101)  # 25 test segments


@pytest.mark.parametrize("modality, consensus", [("rgb", "avg"), ("flow", "max"), ("rgbdiff", "weighted")])
def test_forward_backward_small(modality, consensus):
    net = tsn_bninception(num_classes=5, modality=modality, consensus=consensus, num_segments=2)
    out = net(torch.randn(1, 2, net.in_channels, SMALL, SMALL))
    assert out.shape == (1, 5)
    out.sum().backward()
    assert net.backbone.conv1_7x7_s2.weight.grad.abs().sum() > 0


def test_consensus_is_taken_over_snippet_scores():
    torch.manual_seed(0)
    net = tsn_bninception(num_classes=4, consensus="weighted").eval()
    assert torch.allclose(net.consensus.weights, torch.full((3,), 1 / 3))  # starts as the average
    x = torch.randn(1, 3, 3, SMALL, SMALL)
    with torch.no_grad():
        maps = net.forward_features(x)
    scores = net.fc(maps.mean(dim=(-2, -1)))  # (N, K, classes), before any softmax
    with torch.no_grad():
        net.consensus.weights.copy_(torch.tensor([0.5, 0.2, 0.3]))
    expected = 0.5 * scores[:, 0] + 0.2 * scores[:, 1] + 0.3 * scores[:, 2]
    assert torch.allclose(net.forward_head(maps), expected, atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(net(x.flatten(0, 1)), net.forward_head(maps), atol=1e-6)  # folded input
    net.consensus.kind = "max"
    assert torch.allclose(net.forward_head(maps), scores.amax(dim=1), atol=1e-6)
    net.consensus.kind = "avg"
    assert torch.allclose(net.forward_head(maps), scores.mean(dim=1), atol=1e-6)
    with pytest.raises(ValueError, match="multiple of num_segments"):
        net(torch.randn(4, 3, SMALL, SMALL))
    with pytest.raises(ValueError, match=r"\(N, K, 3, H, W\)"):
        net(torch.randn(1, 3, 10, SMALL, SMALL))


def test_partial_bn_updates_only_the_first_bn():
    torch.manual_seed(0)
    net = tsn_bninception(num_classes=4).partial_bn(True)
    net.eval().train()  # must survive mode switches
    before = [bn.running_mean.clone() for bn in bns(net)]
    opt = torch.optim.SGD(net.optimizer_param_groups(lr=0.1, weight_decay=5e-4), lr=0.1, momentum=0.9)
    loss = nn.functional.cross_entropy(net(torch.randn(1, 3, 3, SMALL, SMALL)), torch.tensor([1]))
    loss.backward()
    opt.step()
    changed = [not torch.equal(b, bn.running_mean) for b, bn in zip(before, bns(net))]
    assert changed[0] and sum(changed) == 1
    assert all(not bn.weight.requires_grad and not bn.training for bn in bns(net)[1:])
    net.partial_bn(False)
    assert all(bn.training and bn.weight.requires_grad for bn in bns(net))


def group(policies: list[dict], name: str) -> dict:
    return next(g for g in policies if g["name"] == name)


@pytest.mark.parametrize("modality, first_w, first_b", [("rgb", 1, 2), ("flow", 5, 10), ("rgbdiff", 1, 2)])
def test_optim_policies_follow_tsn_pytorch(modality, first_w, first_b):
    net = on_meta(modality=modality)
    policies = net.get_optim_policies()
    assert (group(policies, "first_conv_weight")["lr_mult"], group(policies, "first_conv_bias")["lr_mult"]) == (
        first_w,
        first_b,
    )
    assert group(policies, "first_conv_bias")["decay_mult"] == 0
    assert group(policies, "first_conv_weight")["params"][0] is net.backbone.conv1_7x7_s2.weight
    normal_w, normal_b, bn = (group(policies, n) for n in ("normal_weight", "normal_bias", "bn"))
    assert (normal_w["lr_mult"], normal_w["decay_mult"], normal_b["lr_mult"], normal_b["decay_mult"]) == (1, 1, 2, 0)
    assert (bn["lr_mult"], bn["decay_mult"]) == (1, 0)
    assert any(p is net.fc.weight for p in normal_w["params"]) and any(p is net.fc.bias for p in normal_b["params"])
    grouped = [id(p) for g in policies for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in net.parameters())  # every parameter exactly once
    assert len(bn["params"]) == 2 * 69
    net.partial_bn(True)
    assert len(group(net.get_optim_policies(), "bn")["params"]) == 2  # only the first BN's γ, β
    sgd = net.optimizer_param_groups(lr=0.001, weight_decay=5e-4)
    assert group(sgd, "first_conv_bias")["lr"] == pytest.approx(0.001 * first_b)
    assert group(sgd, "first_conv_bias")["weight_decay"] == 0


def test_reset_classifier_keeps_the_tsn_init():
    net = tsn_bninception()
    net.reset_classifier(51)
    assert net.num_classes == 51 and net.fc.weight.std() < 0.002  # fc-action: N(0, 0.001)
    net.reset_classifier(0)  # no classifier: the consensus runs over the 1024-d snippet features
    with torch.device("meta"):
        net = net.to("meta")
        assert net(torch.empty(2, 3, 3, 224, 224)).shape == (2, 1024)


def test_cross_modality_adaptation_replicates_the_rgb_mean():
    net = tsn_bninception()
    rgb = net.backbone.conv1_7x7_s2.weight.detach().clone()
    net.adapt_input_channels(10)
    w = net.backbone.conv1_7x7_s2.weight
    assert w.shape == (64, 10, 7, 7)
    assert torch.allclose(w, rgb.mean(dim=1, keepdim=True).repeat(1, 10, 1, 1))
    assert net.default_input == (3, 10, 224, 224) and net.in_channels == 10


def flat_port_keys(state: dict) -> dict:
    """Our keys → the flat names of the PyTorch BN-Inception ports (inception_3a_1x1.weight)."""
    return {k.replace(".", "_", 1) if k.startswith("inception_") else k: v for k, v in state.items()}


def test_load_imagenet_weights_into_flow_net(tmp_path):
    torch.manual_seed(0)
    imagenet = tsn_bninception(num_classes=1000)
    state = flat_port_keys(imagenet.backbone.state_dict())
    assert "inception_3a_double_3x3_1_bn.running_var" in state
    state["last_linear.weight"] = torch.zeros(1000, 1024)
    path = tmp_path / "bn_inception.pth"
    torch.save(state, path)

    flow = tsn_bninception(modality="flow")
    report = load_bninception_weights(flow, path)
    assert not report["missing"] and not report["unexpected"]
    rgb_conv1 = imagenet.backbone.conv1_7x7_s2.weight
    assert torch.allclose(flow.backbone.conv1_7x7_s2.weight, rgb_conv1.mean(dim=1, keepdim=True).repeat(1, 10, 1, 1))
    assert torch.equal(
        flow.backbone.inception_5b._modules["pool_proj_bn"].running_var,
        imagenet.backbone.inception_5b._modules["pool_proj_bn"].running_var,
    )
    assert not torch.equal(flow.fc.weight[:1], torch.zeros(1, 1024))  # the ImageNet classifier is not loaded
    torch.save({"something.else": torch.zeros(1)}, tmp_path / "foreign.pth")
    with pytest.raises(ValueError, match="no key matches"):
        load_bninception_weights(flow, tmp_path / "foreign.pth")


def test_rgb_difference():
    frames = torch.arange(6.0).view(6, 1, 1, 1).expand(6, 3, 2, 2)  # frame i is constant i
    diff = rgb_difference(frames)
    assert diff.shape == (15, 2, 2) and torch.all(diff == 1)
    assert rgb_difference(torch.randn(2, 3, 6, 3, 8, 8)).shape == (2, 3, 15, 8, 8)  # (N, K, L+1, 3, H, W)
    with pytest.raises(ValueError, match="rgb_difference"):
        rgb_difference(torch.randn(1, 3, 8, 8))
