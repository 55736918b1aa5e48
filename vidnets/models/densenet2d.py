"""2D DenseNet-121: the frozen image teacher of T3D's 2D→3D supervision transfer (papers.md §5.1).

The module tree and parameter names follow torchvision's ``densenet121`` exactly
(``features.conv0``, ``features.denseblock1.denselayer1.norm1``, ``features.transition1.conv``,
``features.norm5``, ``classifier``), so an ImageNet state dict saved from torchvision loads
unchanged from a local file (:func:`load_torchvision_weights`; nothing is ever downloaded)::

    image (N,3,H,W) ─► conv0 7×7/2 ─► pool0 3×3/2 ─► [dense block ─► transition] ×3
                    ─► dense block 4 ─► norm5 ─► ReLU ─► global avg ─► 1024 ─► classifier

It is an *image* network: it does not take clips, so it is a plain builder and is not in the
video model registry (``vidnets models`` lists video classifiers only). It still offers the
uniform ``forward_features`` / ``forward_head(pre_logits=True)`` split, which is what the
transfer task uses to read the 1024-d pooled feature.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vidnets.models.base import VideoClassifier

__all__ = ["DenseNet2d", "densenet121_2d", "load_torchvision_weights"]


class _DenseLayer(nn.Module):
    """BN-ReLU-Conv1×1 (bottleneck to ``bn_size·growth``) then BN-ReLU-Conv3×3 (``growth``)."""

    def __init__(self, in_features: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_features, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu1(self.norm1(x)))
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return torch.cat([x, out], 1)


class _Transition(nn.Sequential):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_features, out_features, 1, bias=False)
        self.pool = nn.AvgPool2d(2, 2)


class DenseNet2d(VideoClassifier):
    """DenseNet-BC for images (Huang et al. 2017), torchvision's layout and initialisation."""

    first_conv = "features.conv0"
    classifier = "classifier"
    default_input = (3, 224, 224)

    def __init__(
        self,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        growth_rate: int = 32,
        num_init_features: int = 64,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv0=nn.Conv2d(3, num_init_features, 7, stride=2, padding=3, bias=False),
            norm0=nn.BatchNorm2d(num_init_features),
            relu0=nn.ReLU(inplace=True),
            pool0=nn.MaxPool2d(3, stride=2, padding=1),
        )
        width = num_init_features
        for i, num_layers in enumerate(block_config, start=1):
            block = nn.Sequential()
            for j in range(num_layers):
                block.add_module(
                    f"denselayer{j + 1}", _DenseLayer(width + j * growth_rate, growth_rate, bn_size, drop_rate)
                )
            layers[f"denseblock{i}"] = block
            width += num_layers * growth_rate
            if i != len(block_config):
                layers[f"transition{i}"] = _Transition(width, width // 2)
                width //= 2
        layers["norm5"] = nn.BatchNorm2d(width)
        self.features = nn.Sequential(layers)
        self.num_features = width
        # Registered under "classifier" (torchvision's key); ``self.classifier`` stays the path string.
        self.classifier = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()
        self._classifier_in_features = width
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def get_classifier(self) -> nn.Module:
        # The head keeps torchvision's name "classifier", which on VideoClassifier is also the
        # class attribute holding the head's path, so look the module up directly.
        return self._modules["classifier"]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.features(x))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = torch.flatten(F.adaptive_avg_pool2d(features, 1), 1)
        return pooled if pre_logits else self.get_classifier()(pooled)


def densenet121_2d(num_classes: int = 1000, drop_rate: float = 0.0) -> DenseNet2d:
    """DenseNet-121 (blocks 6-12-24-16, growth 32): 7,978,856 parameters with 1000 classes."""
    return DenseNet2d((6, 12, 24, 16), 32, 64, 4, drop_rate, num_classes)


# Old torchvision checkpoints name layers "norm.1", "conv.2"; the current layout is "norm1", "conv2".
_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def load_torchvision_weights(model: DenseNet2d, path: str | Path, strict_features: bool = True) -> list[str]:
    """Load a torchvision DenseNet state dict from the local file ``path`` into ``model``.

    Old-style keys (``denselayer1.norm.1.weight``) are renamed. The classifier is loaded only when
    its shape matches (an ImageNet head is dropped for a model built with other ``num_classes``).
    Returns the names of the classifier tensors that were skipped. Raises ``ValueError`` naming the
    file when feature weights are missing or mis-shaped (``strict_features``).
    """
    from vidnets.utils.io import load_checkpoint

    state = load_checkpoint(path)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    renamed = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        m = _OLD_KEY.match(key)
        renamed[m.group(1) + m.group(2) if m else key] = value
    own = model.state_dict()
    skipped = [k for k in renamed if k.startswith("classifier.") and (k not in own or own[k].shape != renamed[k].shape)]
    for k in skipped:
        del renamed[k]
    missing, unexpected = model.load_state_dict(renamed, strict=False)
    missing = [k for k in missing if not k.startswith("classifier.")]
    if strict_features and (missing or unexpected):
        raise ValueError(
            f"{path}: not a torchvision DenseNet-121 state dict; missing {missing[:5]}"
            f"{'…' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}{'…' if len(unexpected) > 5 else ''}"
        )
    return skipped
