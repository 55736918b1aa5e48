"""Two-Stream CNN-M-2048 streams and the multi-task loss (papers.md §2, §7 items 7–10)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidnets.models import complexity, list_models
from vidnets.models.features import extract_features
from vidnets.models.two_stream import CNNM2048, multitask_loss, two_stream_spatial, two_stream_temporal

TASKS = {"ucf101": 101, "hmdb51": 51}


def on_meta(builder, **kwargs):
    with torch.device("meta"):
        return builder(**kwargs)


def test_registered():
    assert {"two_stream_spatial", "two_stream_temporal"} <= set(list_models("two_stream"))


def test_spatial_shapes_need_ceil_pooling():
    net = on_meta(two_stream_spatial).eval()
    f = extract_features(
        net, torch.empty(2, 3, 224, 224, device="meta"), ["conv1", "pool1", "conv2", "pool2", "conv5", "pool5", "full7"]
    )
    assert f["conv1"].shape == (2, 96, 109, 109)
    assert f["pool1"].shape == (2, 96, 54, 54)
    assert f["conv2"].shape == (2, 256, 26, 26)
    assert f["pool2"].shape == (2, 256, 13, 13)
    assert f["conv5"].shape == (2, 512, 13, 13)
    assert f["pool5"].shape == (2, 512, 6, 6)
    assert net.full6.in_features == 18_432 and f["full7"].shape == (2, 2048)
    assert on_meta(CNNM2048, ceil_pooling=False).full6.in_features == 12_800  # PyTorch's floor: 54 → 12 → 5


def test_temporal_stream_layout():
    net = on_meta(two_stream_temporal)
    assert net.conv1.weight.shape == (96, 20, 7, 7) and net.default_input == (20, 224, 224)
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in net.modules()) == 1
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in on_meta(two_stream_spatial).modules()) == 2
    norm = net.norm1
    assert (norm.size, norm.alpha, norm.beta, norm.k) == (5, 5e-4, 0.75, 2.0)
    assert on_meta(two_stream_temporal, flow_length=5).conv1.in_channels == 10
    assert net.drop6.p == 0.9 and on_meta(two_stream_spatial).drop6.p == 0.5


@pytest.mark.parametrize(
    "builder, kwargs, params, gmacs",
    [
        (two_stream_spatial, {}, 90_627_813, 1.664),
        (two_stream_temporal, {}, 90_707_781, 2.614),
        (two_stream_temporal, {"heads": TASKS}, 90_812_280, 2.614),
    ],
)
def test_counts(builder, kwargs, params, gmacs):
    c = complexity(on_meta(builder, **kwargs))
    assert c.params == params
    assert round(c.gmacs, 3) == gmacs


@pytest.mark.parametrize("in_channels, heads", [(3, None), (4, None), (4, TASKS)])
def test_forward_backward_small(in_channels, heads):
    net = CNNM2048(in_channels=in_channels, num_classes=5, heads=heads, norm2=in_channels == 3, input_size=64)
    out = net(torch.randn(2, in_channels, 64, 64))
    loss = multitask_loss(out, torch.tensor([3, 1]), ["ucf101", "hmdb51"]) if heads else out.sum()
    if heads:
        assert {k: v.shape for k, v in out.items()} == {"ucf101": (2, 101), "hmdb51": (2, 51)}
    else:
        assert out.shape == (2, 5)
    loss.backward()
    assert net.conv1.weight.grad.abs().sum() > 0


def test_flow_clip_is_stacked_dx_dy_per_frame():
    torch.manual_seed(0)
    net = CNNM2048(in_channels=4, norm2=False, input_size=64).eval()
    clip = torch.randn(1, 2, 2, 64, 64)  # (N, x/y, L, H, W)
    stacked = torch.stack([clip[:, 0, 0], clip[:, 1, 0], clip[:, 0, 1], clip[:, 1, 1]], dim=1)  # dx1 dy1 dx2 dy2
    assert torch.allclose(net(clip), net(stacked))
    with pytest.raises(ValueError, match=r"\(N, 4, H, W\)"):
        net(torch.randn(1, 3, 64, 64))


def test_multitask_heads_and_reset():
    net = CNNM2048(in_channels=4, heads=TASKS, norm2=False, input_size=64).eval()
    x = torch.randn(1, 4, 64, 64)
    both = net(x)
    assert torch.allclose(net(x, task="hmdb51"), both["hmdb51"])
    assert net.tasks == ["ucf101", "hmdb51"] and net.num_classes == 101
    ucf_before = net.heads["ucf101"].weight.clone()
    net.reset_classifier(10, task="hmdb51")
    assert net(x)["hmdb51"].shape == (1, 10) and torch.equal(net.heads["ucf101"].weight, ucf_before)
    net.reset_classifier(7)  # no task: the first head
    assert net.num_classes == 7
    with pytest.raises(KeyError, match="kinetics"):
        net(x, task="kinetics")
    with pytest.raises(KeyError, match="kinetics"):
        net.reset_classifier(3, task="kinetics")
    single = CNNM2048(input_size=64)
    with pytest.raises(ValueError, match="single classifier"):
        single(torch.randn(1, 3, 64, 64), task="ucf101")


def test_multitask_loss_uses_each_dataset_only_for_its_head():
    torch.manual_seed(0)
    ucf = torch.randn(4, 101, requires_grad=True)
    hmdb = torch.randn(4, 51, requires_grad=True)
    labels = torch.tensor([90, 7, 50, 2])  # 90 is a UCF class: out of range for the HMDB head
    task_ids = torch.tensor([0, 1, 1, 0])  # ucf, hmdb, hmdb, ucf
    loss = multitask_loss({"ucf101": ucf, "hmdb51": hmdb}, labels, task_ids)
    expected = F.cross_entropy(ucf[[0, 3]], labels[[0, 3]]) + F.cross_entropy(hmdb[[1, 2]], labels[[1, 2]])
    assert torch.allclose(loss, expected)
    loss.backward()
    assert torch.all(ucf.grad[[1, 2]] == 0) and torch.all(hmdb.grad[[0, 3]] == 0)
    assert ucf.grad[[0, 3]].abs().sum() > 0 and hmdb.grad[[1, 2]].abs().sum() > 0
    by_name = multitask_loss({"ucf101": ucf, "hmdb51": hmdb}, labels, ["ucf101", "hmdb51", "hmdb51", "ucf101"])
    assert torch.allclose(by_name, expected)


def test_multitask_loss_head_without_samples_adds_zero():
    ucf = torch.randn(2, 101, requires_grad=True)
    hmdb = torch.randn(2, 51, requires_grad=True)
    labels = torch.tensor([5, 6])
    loss = multitask_loss({"ucf101": ucf, "hmdb51": hmdb}, labels, ["ucf101", "ucf101"])
    assert torch.allclose(loss, F.cross_entropy(ucf, labels))
    loss.backward()
    assert hmdb.grad is not None and torch.all(hmdb.grad == 0)
    with pytest.raises(KeyError, match="kinetics"):
        multitask_loss({"ucf101": ucf}, labels, ["ucf101", "kinetics"])
    with pytest.raises(ValueError, match="task_ids"):
        multitask_loss({"ucf101": ucf}, labels, torch.tensor([0]))
