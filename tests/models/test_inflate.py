"""2D → 3D weight inflation (I3D-style averaging and centre placement)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidnets.models.inflate import inflate_state_dict, inflate_weight


def constant_clip(image: torch.Tensor, frames: int) -> torch.Tensor:
    """(N, C, H, W) → (N, C, T, H, W) with every frame equal to ``image``."""
    return image.unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous()


def test_average_inflation_on_constant_clip_reproduces_2d_conv():
    torch.manual_seed(0)
    conv2d = nn.Conv2d(3, 8, 3, padding=1)
    conv3d = nn.Conv3d(3, 8, (3, 3, 3), padding=(0, 1, 1))  # no temporal padding: every output sees 3 real frames
    report = inflate_state_dict(conv3d, conv2d.state_dict())
    assert report.inflated == ["weight"] and sorted(report.loaded) == ["bias", "weight"]
    image = torch.randn(2, 3, 10, 10)
    with torch.no_grad():
        out3d = conv3d(constant_clip(image, 5))
        out2d = conv2d(image)
    assert out3d.shape[2] == 3
    for t in range(out3d.shape[2]):
        torch.testing.assert_close(out3d[:, :, t], out2d, rtol=1e-5, atol=1e-5)


def test_center_inflation_is_the_2d_conv_on_every_frame():
    torch.manual_seed(0)
    weight = torch.randn(4, 3, 3, 3)
    inflated = inflate_weight(weight, 3, mode="center")
    assert torch.equal(inflated[:, :, 1], weight) and inflated[:, :, [0, 2]].abs().sum() == 0
    clip = torch.randn(1, 3, 4, 9, 9)  # frames differ
    out = F.conv3d(clip, inflated, padding=1)
    for t in range(4):
        torch.testing.assert_close(out[:, :, t], F.conv2d(clip[:, :, t], weight, padding=1))


def test_average_inflation_sums_to_the_2d_kernel():
    weight = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(inflate_weight(weight, 4).sum(dim=2), weight)
    with pytest.raises(ValueError, match="mode"):
        inflate_weight(weight, 3, mode="repeat")
    with pytest.raises(ValueError, match="4-D"):
        inflate_weight(torch.randn(2, 3, 1, 5, 5), 3)


class Tiny3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv3d(3, 4, (3, 3, 3), bias=False)
        self.norm = nn.BatchNorm3d(4)
        self.head = nn.Linear(4, 5)


def test_report_with_key_map(tmp_path):
    source = {
        "features.0.weight": torch.randn(4, 3, 3, 3),
        "features.1.weight": torch.ones(4),
        "features.1.bias": torch.zeros(4),
        "classifier.weight": torch.randn(1000, 4),
        "aux.weight": torch.randn(2),
    }
    renames = {"features.0": "stem", "features.1": "norm", "classifier": "head"}

    def key_map(key: str) -> str | None:
        prefix, _, leaf = key.rpartition(".")
        return f"{renames[prefix]}.{leaf}" if prefix in renames else None

    path = tmp_path / "net2d.pt"
    torch.save({"state_dict": source}, path)  # a wrapped checkpoint file, read weights-only
    model = Tiny3d()
    report = inflate_state_dict(model, path, key_map=key_map, mode="center")
    assert report.inflated == ["stem.weight"]
    assert sorted(report.loaded) == ["norm.bias", "norm.weight", "stem.weight"]
    assert report.unexpected == ["aux.weight"]
    assert report.shape_mismatched == [("head.weight", (1000, 4), (5, 4))]
    assert sorted(report.missing) == ["head.bias", "norm.num_batches_tracked", "norm.running_mean", "norm.running_var"]
    torch.testing.assert_close(model.stem.weight[:, :, 1], source["features.0.weight"])
    assert "inflated" in report.summary()


def test_bad_checkpoint_is_named(tmp_path):
    path = tmp_path / "bad.pt"
    torch.save({"weights": [1, 2, 3]}, path)
    with pytest.raises(ValueError, match="bad.pt"):
        inflate_state_dict(Tiny3d(), path)
