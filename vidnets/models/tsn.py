"""TSN — Wang et al., "Temporal Segment Networks", ECCV 2016 (arXiv:1608.00859), on BN-Inception.

::

    video ─► K segments ─► one snippet each: (N, K, C, H, W)
                            K = 3; C = 3 (RGB), 2·5 (flow), 3·5 (RGB difference)
          fold ─► (N·K, C, H, W) ─► BN-Inception ─► (N·K, 1024, 7, 7) ─► global avg ─► 1024
          ─► dropout ─► fc ─► (N, K, classes)
          ─► consensus over K (avg | max | weighted) ─► (N, classes)
             (before the softmax, which lives in the loss)

``forward_features`` returns the per-snippet BN-Inception maps unfolded, ``(N, K, 1024, 7, 7)``;
``forward_head(f, pre_logits=True)`` returns the pooled 1024-d feature averaged over the K
snippets, ``(N, 1024)`` (for the default average consensus, ``fc`` of it equals the logits). 1024 is
the published width; ``width`` scales every conv down for CPU runs (:class:`BNInception`).

BN-Inception is built exactly as ``tsn_bn_inception_*_train_val.prototxt`` ``[C:TSN-caffe]``
(papers.md §3.1): every conv is conv+BN+ReLU with a bias, pools use Caffe's ceil rounding, 5b's
pool branch is a max pool. Modules are named after the Caffe layers (``/`` → ``_``; inception
blocks are submodules, e.g. ``backbone.inception_3a.double_3x3_1_bn``), so the common PyTorch
BN-Inception ImageNet state dicts (flat keys such as ``inception_3a_1x1.weight``) load with
:func:`load_bninception_weights`.

Choices, with their sources:

* **Dropout** before fc: 0.8 RGB, 0.7 flow ``[C:TSN-caffe]``; 0.8 for RGB difference (tsn-pytorch's
  default ``--dropout``, no Caffe RGB-diff prototxt was read).
* **Initialisation** (Caffe fillers ``[C:TSN-caffe]``): conv weights "xavier" (uniform ±√(3/fan_in)),
  conv biases 0.2, BN γ = 1, β = 0; fc N(0, 0.001), bias 0. In practice TSN always starts from
  ImageNet weights (:func:`load_bninception_weights`).
* **Partial BN** ``[C:TSN-pt models.py train()]``, ``[C:TSN-caffe]`` (``frozen: true`` on every BN but
  ``conv1/7x7_s2_bn``): :meth:`TSN.partial_bn` keeps every BN except the first in eval mode with
  frozen γ/β across ``train()`` calls. Off by default: it only makes sense after loading
  pre-trained weights.
* **Per-layer learning rates** (:meth:`TSN.get_optim_policies`): tsn-pytorch's five groups, which the
  Caffe prototxts agree with: first conv weight lr ×5 for flow (×1 otherwise), its bias ×10 for
  flow (×2 otherwise) without weight decay; other weights ×1; other biases ×2 without decay; BN
  γ/β ×1 without decay. The final fc is an ordinary layer (×1 weight, ×2 bias) in both codes —
  ``fc-action`` has ``lr_mult: 1 / 2`` in the Caffe prototxt — so it gets no larger multiplier
  here. RGB difference gets the RGB multipliers, as tsn-pytorch checks ``modality == 'Flow'`` only.
* **Weighted consensus**: learned weights over the K segments, initialised uniform (1/K each), so
  training starts from the average; the paper gives no init and the released code has none.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import torch
from torch import nn

from vidnets.models.base import VideoClassifier, cross_modality_weight
from vidnets.models.registry import register_model
from vidnets.utils.io import load_checkpoint

__all__ = [
    "BNInception",
    "TSN",
    "SegmentConsensus",
    "tsn_bninception",
    "rgb_difference",
    "load_bninception_weights",
    "MODALITIES",
    "CONSENSUS_TYPES",
]

MODALITIES = ("rgb", "flow", "rgbdiff")
CONSENSUS_TYPES = ("avg", "max", "weighted")
_DROPOUT = {"rgb": 0.8, "flow": 0.7, "rgbdiff": 0.8}
_CHANNELS_PER_FRAME = {"rgb": 3, "flow": 2, "rgbdiff": 3}
_DEFAULT_NEW_LENGTH = {"rgb": 1, "flow": 5, "rgbdiff": 5}

# Inception blocks [C:TSN-caffe]: 1x1 | 3x3 reduce → 3x3 | double reduce → 3x3 → 3x3 | pool → proj.
# 0 means "branch absent"; stride-2 blocks have no 1x1 and no projection (their pool is max 3×3/2).
_BLOCKS = (
    # name,        1x1, 3x3r, 3x3, d3r, d3,  pool,  proj, stride
    ("inception_3a", 64, 64, 64, 64, 96, "avg", 32, 1),
    ("inception_3b", 64, 64, 96, 64, 96, "avg", 64, 1),
    ("inception_3c", 0, 128, 160, 64, 96, "max", 0, 2),
    ("inception_4a", 224, 64, 96, 96, 128, "avg", 128, 1),
    ("inception_4b", 192, 96, 128, 96, 128, "avg", 128, 1),
    ("inception_4c", 160, 128, 160, 128, 160, "avg", 128, 1),
    ("inception_4d", 96, 128, 192, 160, 192, "avg", 128, 1),
    ("inception_4e", 0, 128, 192, 192, 256, "max", 0, 2),
    ("inception_5a", 352, 192, 320, 160, 224, "avg", 128, 1),
    ("inception_5b", 352, 192, 320, 192, 224, "max", 128, 1),
)


def _add_conv_bn(
    parent: nn.Module, name: str, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0
) -> list[str]:
    """Add ``name`` (conv with bias) and ``name_bn`` to ``parent``; return both names."""
    parent.add_module(name, nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding))
    parent.add_module(f"{name}_bn", nn.BatchNorm2d(cout))
    return [name, f"{name}_bn"]


def _run_conv_bn(parent: nn.Module, names: list[str], x: torch.Tensor) -> torch.Tensor:
    """Run conv/BN pairs in order, each followed by ReLU."""
    modules = parent._modules
    for conv, bn in zip(names[::2], names[1::2]):
        x = torch.relu(modules[bn](modules[conv](x)))
    return x


class InceptionBlock(nn.Module):
    """One BN-Inception block; its output concatenates the branches in Caffe's order."""

    def __init__(
        self, cin: int, c1x1: int, c3r: int, c3: int, cd3r: int, cd3: int, pool: str, proj: int, stride: int
    ) -> None:
        super().__init__()
        self.branches: list[list[str]] = []
        if c1x1:
            self.branches.append(_add_conv_bn(self, "1x1", cin, c1x1, 1))
        self.branches.append(
            _add_conv_bn(self, "3x3_reduce", cin, c3r, 1) + _add_conv_bn(self, "3x3", c3r, c3, 3, stride, 1)
        )
        self.branches.append(
            _add_conv_bn(self, "double_3x3_reduce", cin, cd3r, 1)
            + _add_conv_bn(self, "double_3x3_1", cd3r, cd3, 3, 1, 1)
            + _add_conv_bn(self, "double_3x3_2", cd3, cd3, 3, stride, 1)
        )
        if stride == 2:
            self.pool: nn.Module = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        elif pool == "max":
            self.pool = nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True)
        else:  # Caffe AVE pooling divides by the padded window, as count_include_pad=True does
            self.pool = nn.AvgPool2d(3, stride=1, padding=1, ceil_mode=True, count_include_pad=True)
        self.pool_branch = _add_conv_bn(self, "pool_proj", cin, proj, 1) if proj else []
        self.out_channels = c1x1 + c3 + cd3 + (proj or cin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [_run_conv_bn(self, names, x) for names in self.branches]
        pooled = self.pool(x)
        outs.append(_run_conv_bn(self, self.pool_branch, pooled) if self.pool_branch else pooled)
        return torch.cat(outs, dim=1)


class BNInception(nn.Module):
    """BN-Inception (Ioffe & Szegedy 2015) as used by TSN: images ``(B, C, 224, 224)`` → ``(B, 1024, 7, 7)``.

    ``width`` is conv1's channel count (64 in the paper); every other conv scales with it
    (``channels · width // 64``, at least 1), so the output has ``out_channels`` = 1024 channels at
    64 and 128 at 8. Small widths are for CPU runs; the default is the published net.
    """

    def __init__(self, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ValueError(f"BN-Inception width={width!r}: expected a positive int (conv1 channels; 64 in the paper)")

        def scaled(channels: int) -> int:
            return max(1, channels * width // 64) if channels else 0

        self.stem1 = _add_conv_bn(self, "conv1_7x7_s2", in_channels, scaled(64), 7, 2, 3)
        self.pool1_3x3_s2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.stem2 = _add_conv_bn(self, "conv2_3x3_reduce", scaled(64), scaled(64), 1) + _add_conv_bn(
            self, "conv2_3x3", scaled(64), scaled(192), 3, 1, 1
        )
        self.pool2_3x3_s2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.blocks: list[str] = []
        channels = scaled(192)
        for name, c1x1, c3r, c3, cd3r, cd3, pool, proj, stride in _BLOCKS:
            block = InceptionBlock(
                channels, scaled(c1x1), scaled(c3r), scaled(c3), scaled(cd3r), scaled(cd3), pool, scaled(proj), stride
            )
            self.add_module(name, block)
            self.blocks.append(name)
            channels = block.out_channels
        self.out_channels = channels
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # Caffe "xavier" = uniform(±sqrt(3 / fan_in)), bias 0.2
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                bound = math.sqrt(3.0 / fan_in)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.constant_(m.bias, 0.2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1_3x3_s2(_run_conv_bn(self, self.stem1, x))
        x = self.pool2_3x3_s2(_run_conv_bn(self, self.stem2, x))
        for name in self.blocks:
            x = self._modules[name](x)
        return x


class SegmentConsensus(nn.Module):
    """Segmental consensus G over the K snippet scores, ``(N, K, C)`` → ``(N, C)``, before the softmax.

    ``"avg"`` (the paper's default and best, Table 3), ``"max"``, or ``"weighted"``: a learned
    weight per segment (``weights``, shape ``(K,)``, initialised to 1/K).
    """

    def __init__(self, kind: str = "avg", num_segments: int = 3) -> None:
        super().__init__()
        if kind not in CONSENSUS_TYPES:
            raise ValueError(f"TSN consensus={kind!r}: expected one of {', '.join(CONSENSUS_TYPES)}")
        self.kind = kind
        self.num_segments = num_segments
        if kind == "weighted":
            self.weights = nn.Parameter(torch.full((num_segments,), 1.0 / num_segments))

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        if self.kind == "avg":
            return scores.mean(dim=1)
        if self.kind == "max":
            return scores.amax(dim=1)
        if scores.shape[1] != self.num_segments:
            raise ValueError(
                f"weighted consensus learned {self.num_segments} segment weights; got {scores.shape[1]} segments"
            )
        return torch.einsum("nkc,k->nc", scores, self.weights.to(scores.dtype))

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, num_segments={self.num_segments}"


class TSN(VideoClassifier):
    """Temporal Segment Network: a shared BN-Inception over K snippets, fc per snippet, consensus.

    Parameters
    ----------
    num_classes : int
        Classes of the fc layer.
    modality : {"rgb", "flow", "rgbdiff"}
        Snippet type: one RGB frame (3 ch), ``new_length`` x/y flow pairs (2·L ch), or ``new_length``
        RGB differences (3·L ch; see :func:`rgb_difference`).
    num_segments : int
        K, the snippets per video in training (3). Inputs ``(N, K', C, H, W)`` may use another K'
        (25 at test time) except with the weighted consensus; 4-D inputs ``(N·K, C, H, W)`` use K.
    new_length : int, optional
        Frames per snippet (default 1 for RGB, 5 for flow and RGB difference ``[C:TSN-pt]``).
    consensus : {"avg", "max", "weighted"}
    dropout : float, optional
        Dropout before fc (default per modality: 0.8 RGB, 0.7 flow, 0.8 RGB difference).
    partial_bn : bool
        Turn on partial BN now (see :meth:`partial_bn`).
    input_size : int
        Side of the square snippets the net is described for (``default_input``); the global
        average pool takes any size.
    width : int
        BN-Inception's conv1 channels (64 in the paper); every conv scales with it (:class:`BNInception`).
    """

    first_conv = "backbone.conv1_7x7_s2"
    classifier = "fc"

    def __init__(
        self,
        num_classes: int = 101,
        modality: str = "rgb",
        num_segments: int = 3,
        new_length: int | None = None,
        consensus: str = "avg",
        dropout: float | None = None,
        partial_bn: bool = False,
        input_size: int = 224,
        width: int = 64,
    ) -> None:
        super().__init__()
        if modality not in MODALITIES:
            raise ValueError(f"TSN modality={modality!r}: expected one of {', '.join(MODALITIES)}")
        if num_segments < 1:
            raise ValueError(f"TSN num_segments={num_segments}: expected >= 1")
        self._partial_bn = False
        self.modality = modality
        self.num_segments = num_segments
        self.new_length = new_length if new_length is not None else _DEFAULT_NEW_LENGTH[modality]
        if self.new_length < 1 or (modality == "rgb" and self.new_length != 1):
            raise ValueError(
                f"TSN new_length={self.new_length} for modality {modality!r}: expected 1 for rgb, >= 1 otherwise"
            )
        channels = _CHANNELS_PER_FRAME[modality] * self.new_length
        self.default_input = (num_segments, channels, input_size, input_size)
        self.backbone = BNInception(channels, width)
        self.dropout = nn.Dropout(_DROPOUT[modality] if dropout is None else dropout)
        self.fc = nn.Linear(self.backbone.out_channels, num_classes)
        nn.init.normal_(self.fc.weight, 0.0, 0.001)
        nn.init.zeros_(self.fc.bias)
        self.consensus = SegmentConsensus(consensus, num_segments)
        self.partial_bn(partial_bn)

    # -- forward ----------------------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Snippets ``(N, K, C, H, W)`` or ``(N·K, C, H, W)`` → BN-Inception maps ``(N, K, 1024, h, w)``."""
        if x.dim() == 4:
            if x.shape[0] % self.num_segments:
                raise ValueError(
                    f"TSN got {x.shape[0]} snippets (N·K, C, H, W), not a multiple of num_segments={self.num_segments}"
                )
            x = x.view(-1, self.num_segments, *x.shape[1:])
        if x.dim() != 5 or x.shape[2] != self.in_channels:
            raise ValueError(
                f"TSN ({self.modality}) expects snippets (N, K, {self.in_channels}, H, W) or "
                f"(N·K, {self.in_channels}, H, W); got shape {tuple(x.shape)}"
            )
        n, k = x.shape[:2]
        maps = self.backbone(x.flatten(0, 1))
        return maps.view(n, k, *maps.shape[1:])

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Maps ``(N, K, 1024, h, w)`` → pooled → dropout → fc per snippet → consensus ``(N, classes)``.

        With ``pre_logits`` the pooled (post-dropout) features averaged over K, ``(N, 1024)``.
        """
        pooled = self.dropout(features.mean(dim=(-2, -1)))  # global average pool: (N, K, 1024)
        if pre_logits:
            return pooled.mean(dim=1)
        n, k = pooled.shape[:2]
        scores = self.fc(pooled.flatten(0, 1)).view(n, k, -1)
        return self.consensus(scores)

    def reset_classifier(self, num_classes: int) -> None:
        """New fc with ``num_classes`` outputs, initialised as ``fc-action``: N(0, 0.001), bias 0 ``[C:TSN-caffe]``."""
        super().reset_classifier(num_classes)
        if isinstance(self.fc, nn.Linear):
            nn.init.normal_(self.fc.weight, 0.0, 0.001)

    # -- cross-modality ---------------------------------------------------------------------
    def adapt_input_channels(self, in_channels: int) -> None:
        """Cross-modality init of conv1 (see the base class); ``default_input`` is ``(K, C, H, W)``."""
        k, _, h, w = self.default_input
        super().adapt_input_channels(in_channels)
        self.default_input = (k, in_channels, h, w)

    # -- partial BN -------------------------------------------------------------------------
    def partial_bn(self, enable: bool = True) -> TSN:
        """Freeze every BN layer but the first: eval mode (running statistics fixed) and no grad on γ/β.

        Stays in force across ``train()`` calls until ``partial_bn(False)``.
        """
        self._partial_bn = enable
        self._apply_partial_bn()
        return self

    def train(self, mode: bool = True) -> TSN:
        super().train(mode)
        self._apply_partial_bn()
        return self

    def _apply_partial_bn(self) -> None:
        bns = [m for m in self.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
        for index, bn in enumerate(bns):
            frozen = self._partial_bn and index > 0
            bn.train(self.training and not frozen)
            for p in bn.parameters():
                p.requires_grad_(not frozen)

    # -- optimiser groups -------------------------------------------------------------------
    def get_optim_policies(self) -> list[dict]:
        """tsn-pytorch's parameter groups: ``{"params", "lr_mult", "decay_mult", "name"}`` each.

        Frozen parameters (the BNs under partial BN) are left out. Raises if a trainable
        parameter belongs to no group, so a new layer type cannot silently escape.
        """
        flow = self.modality == "flow"
        groups = {
            "first_conv_weight": (5 if flow else 1, 1),
            "first_conv_bias": (10 if flow else 2, 0),
            "normal_weight": (1, 1),
            "normal_bias": (2, 0),
            "bn": (1, 0),
            "consensus": (1, 0),
        }
        members: dict[str, list[nn.Parameter]] = {g: [] for g in groups}
        first = self.get_submodule(self.first_conv)
        for module in self.modules():
            own = [p for p in module.parameters(recurse=False) if p.requires_grad]
            if not own:
                continue
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                prefix = "first_conv" if module is first else "normal"
                members[f"{prefix}_weight"].append(module.weight)
                if module.bias is not None:
                    members[f"{prefix}_bias"].append(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                members["bn"].extend(own)
            elif isinstance(module, SegmentConsensus):
                members["consensus"].extend(own)
            else:
                raise ValueError(f"get_optim_policies: no learning-rate policy for {type(module).__name__}")
        return [
            {"params": members[g], "lr_mult": lr, "decay_mult": wd, "name": g}
            for g, (lr, wd) in groups.items()
            if members[g]
        ]

    def optimizer_param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """:meth:`get_optim_policies` with the multipliers applied, ready for ``torch.optim.SGD``."""
        return [
            {
                "params": g["params"],
                "lr": lr * g["lr_mult"],
                "weight_decay": weight_decay * g["decay_mult"],
                "name": g["name"],
            }
            for g in self.get_optim_policies()
        ]


@register_model(family="tsn", paper="Wang et al., ECCV 2016 (TSN)", default_input=(3, 3, 224, 224))
def tsn_bninception(
    num_classes: int = 101,
    modality: str = "rgb",
    num_segments: int = 3,
    new_length: int | None = None,
    consensus: str = "avg",
    dropout: float | None = None,
    partial_bn: bool = False,
    input_size: int = 224,
    width: int = 64,
) -> TSN:
    """TSN with BN-Inception. Input ``(N, K, C, 224, 224)``; 10,373,765 params (RGB, 101 classes).

    Per 224² snippet: 2.03 GMACs (RGB), 2.31 GMACs (flow, 10 channels). ``input_size`` (224 in
    the paper) is the snippet side recorded in ``default_input``; ``width`` (conv1 channels, 64 in
    the paper; every conv scales with it) shrinks the net for CPU runs.
    """
    return TSN(
        num_classes=num_classes,
        modality=modality,
        num_segments=num_segments,
        new_length=new_length,
        consensus=consensus,
        dropout=dropout,
        partial_bn=partial_bn,
        input_size=input_size,
        width=width,
    )


def rgb_difference(frames: torch.Tensor) -> torch.Tensor:
    """RGB-difference snippets: ``(..., L+1, 3, H, W)`` consecutive frames → ``(..., 3·L, H, W)``.

    Difference i is ``frame[i+1] - frame[i]``, stacked in time order, as tsn-pytorch's
    ``_get_diff`` ``[C:TSN-pt]`` (without ``keep_rgb``).
    """
    if frames.dim() < 4 or frames.shape[-3] != 3 or frames.shape[-4] < 2:
        raise ValueError(f"rgb_difference expects (..., L+1 >= 2, 3, H, W) frames; got shape {tuple(frames.shape)}")
    diffs = frames[..., 1:, :, :, :] - frames[..., :-1, :, :, :]
    return diffs.flatten(-4, -3)


# -- ImageNet weights ------------------------------------------------------------------------


def _backbone_key(key: str) -> str | None:
    """Map a BN-Inception state-dict key (flat PyTorch-port names, tsn-pytorch names) to ours."""
    for prefix in ("module.", "base_model.", "backbone."):
        key = key.removeprefix(prefix)
    if key.startswith(("last_linear.", "fc.", "new_fc.")):
        return None  # the ImageNet classifier / another task's head
    if key.startswith("inception_") and not key[len("inception_3a")] == ".":
        key = key[: len("inception_3a")] + "." + key[len("inception_3a_") :]
    return key


def load_bninception_weights(model: TSN, path: str | os.PathLike) -> dict[str, list[str]]:
    """Load BN-Inception backbone weights from a LOCAL file, with TSN's cross-modality init.

    Reads with weights-only unpickling; accepts the flat names of the common PyTorch
    BN-Inception ports (``conv1_7x7_s2.weight``, ``inception_3a_1x1_bn.running_mean``, …), the
    ``base_model.`` prefix of tsn-pytorch checkpoints and this module's own names. The classifier
    (``last_linear``/``fc``/``new_fc``) is not loaded. When the file's conv1 has 3 input channels
    and the model takes flow or RGB differences, conv1 becomes the RGB kernel averaged over its
    channels and replicated (``[C:TSN-pt _construct_flow_model]``, TSN §3.2).

    Returns ``{"loaded": [...], "missing": [...], "unexpected": [...]}`` (backbone key names).
    """
    state = load_checkpoint(path)
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(f"BN-Inception weights {path}: expected a state dict, found {type(state).__name__}")
    own = model.backbone.state_dict()
    loaded, unexpected, to_load = [], [], {}
    for key, value in state.items():
        mapped = _backbone_key(key)
        if mapped is None:
            continue
        if mapped not in own:
            unexpected.append(key)
            continue
        if mapped == "conv1_7x7_s2.weight" and value.shape[1] != own[mapped].shape[1]:
            value = cross_modality_weight(value, own[mapped].shape[1])
        if value.shape != own[mapped].shape:
            raise ValueError(
                f"BN-Inception weights {path}: {key} has shape {tuple(value.shape)}, "
                f"the model expects {tuple(own[mapped].shape)}"
            )
        to_load[mapped] = value
        loaded.append(mapped)
    if not loaded:
        raise ValueError(
            f"BN-Inception weights {path}: no key matches BN-Inception (file keys start {', '.join(list(state)[:5])})"
        )
    model.backbone.load_state_dict(to_load, strict=False)
    return {"loaded": loaded, "missing": [k for k in own if k not in to_load], "unexpected": unexpected}
