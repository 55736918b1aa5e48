"""C3D — Tran et al., "Learning Spatiotemporal Features with 3D Convolutional Networks", ICCV 2015.

The released Sports-1M net ``[C:C3D] c3d_sport1m_feature_extractor_frm.prototxt``::

    clip 3×16×112×112
      conv1a 64  ─ pool1 1×2×2 ──►  64×16×56×56      every conv: 3×3×3, stride 1, pad 1, ReLU
      conv2a 128 ─ pool2 2×2×2 ──► 128× 8×28×28      (no BN, no LRN)
      conv3a,3b 256 ─ pool3    ──► 256× 4×14×14
      conv4a,4b 512 ─ pool4    ──► 512× 2× 7× 7
      conv5a,5b 512 ─ pool5    ──► 512× 1× 4× 4 = 8192   (Caffe ceil rounding: 7 → 4)
      fc6 4096 ─ ReLU ─ dropout 0.5 ─ fc7 4096 ─ ReLU ─ dropout 0.5 ─ fc8 (487 Sports-1M classes)

``forward_features`` returns the pool5 map ``(N, 512, 1, 4, 4)`` (before the fc stack);
``forward_head(f, pre_logits=True)`` returns the post-ReLU (and, in training, post-dropout)
fc7 vector.

Choices, with their sources:

* **pool5 rounding** (``pool5=``): ``"ceil"`` is Caffe's ``Pooling3DLayer`` rounding
  ``[C:C3D pool3d_layer.cpp]`` and gives fc6 its published 8192 inputs; ``"pad"`` is mmaction2's
  ``padding=(0, 1, 1)`` ``[R:mmaction2]`` (same shape, windows shifted by one pixel, so Caffe
  weights give slightly different outputs); ``"floor"`` is PyTorch's default and gives 4608 inputs
  (VMZ's "64.9M params" variant ``[R:VMZ]``). Pools 1–4 always use ceil rounding as Caffe does;
  for 16×112×112 clips their sizes are even, so this changes nothing there.
* **Initialisation** as the authors' prototxts ``[C:C3D]`` (both the Sports-1M training net and
  the v1.1 search net): conv weights N(0, 0.01), conv1a bias 0, other conv biases 1; fc6/fc7
  weights N(0, 0.005), bias 1; fc8 N(0, 0.01), bias 0.
* **Search-net pooling stride**: the paper's text can be read as stride 1; all released prototxts
  use stride 2 (pool1 1×2×2), which is what reduces the output by 8. Stride 2 is used (papers.md §1.1).
* **Feature names**: ``feature_aliases`` maps Caffe blob names to modules. Caffe's ReLU runs in
  place, so the blob ``fc6`` that the C3D feature extractor dumps is **post-ReLU**;
  ``extract_features(model, x, ["fc6"])`` therefore returns the output of ``relu6`` (before
  dropout). The same holds for ``fc7`` and every ``convXy``. Ask with ``resolve_aliases=False`` for
  the pre-ReLU linear output.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.fx
from torch import nn

from vidnets.models.base import VideoClassifier
from vidnets.models.layers import init_gaussian_, pooled_size
from vidnets.models.registry import register_model
from vidnets.utils.io import load_checkpoint

__all__ = ["C3D", "c3d", "c3d_search_net", "load_c3d_sports1m", "LoadReport", "POOL5_MODES"]

POOL5_MODES = ("ceil", "pad", "floor")

# Conv widths per stage of the Sports-1M net and of the kernel-depth search net (paper §3.2).
C3D_STAGES: tuple[tuple[int, ...], ...] = ((64,), (128,), (256, 256), (512, 512), (512, 512))
SEARCH_NET_STAGES: tuple[tuple[int, ...], ...] = ((64,), (128,), (256,), (256,), (256,))


class C3D(VideoClassifier):
    """A C3D-style network: stages of 3D convs, each stage closed by a max-pool, then three fc layers.

    Parameters
    ----------
    num_classes : int
        Outputs of fc8 (487 for Sports-1M).
    stages : sequence of sequences of int
        Conv widths per stage; stage ``s`` holds convs ``conv{s}a``, ``conv{s}b``, … and ends with ``pool{s}``.
    fc_width : int
        Width of fc6 and fc7 (4096 in C3D, 2048 in the search net).
    temporal_depths : int or sequence of int
        Temporal kernel depth d of every conv (kernel d×3×3, temporal pad d//2), or one value per
        conv in order, e.g. ``[3, 3, 5, 5, 7]`` for the search net's "increasing" variant.
    pool5 : {"ceil", "pad", "floor"}
        Rounding of the last pool (see the module docstring).
    dropout : float
        Dropout after fc6 and after fc7 (0.5 in ``[C:C3D]``).
    in_channels, clip_len, crop_size : int
        Input clip shape ``(in_channels, clip_len, crop_size, crop_size)``; fixes fc6's input size.
    init : {"caffe", "msra"}
        ``caffe``: the authors' Gaussian fillers (std 0.01 convs, 0.005 fc6/fc7, biases 1). They
        rely on the full widths: in a narrow net (``c3d(width=8)``) the signal vanishes through the
        eight convs and the net does not train (measured: loss flat at ln(classes)). ``msra``:
        He-normal weights and zero biases, for narrow nets.
    batch_norm : bool
        A BatchNorm after every conv, before its ReLU (``bn1a``, …). Not in the paper (C3D has no
        normalisation ``[C:C3D]``); mmaction2's C3D offers the same switch (``norm_cfg``). For
        training from scratch on small data: a width-8 C3D on 96 synthetic videos was at 34–53 %
        after 12–16 epochs without it (chance 25 %).
    """

    first_conv = "conv1a"
    classifier = "fc8"

    def __init__(
        self,
        num_classes: int = 487,
        stages: Sequence[Sequence[int]] = C3D_STAGES,
        fc_width: int = 4096,
        temporal_depths: int | Sequence[int] = 3,
        pool5: str = "ceil",
        dropout: float = 0.5,
        in_channels: int = 3,
        clip_len: int = 16,
        crop_size: int = 112,
        init: str = "caffe",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if init not in ("caffe", "msra"):
            raise ValueError(f"C3D init={init!r}: expected caffe or msra")
        if pool5 not in POOL5_MODES:
            raise ValueError(f"C3D pool5={pool5!r}: expected one of {', '.join(POOL5_MODES)}")
        n_convs = sum(len(s) for s in stages)
        depths = [temporal_depths] * n_convs if isinstance(temporal_depths, int) else list(temporal_depths)
        if len(depths) != n_convs or any(d < 1 or d % 2 == 0 for d in depths):
            raise ValueError(
                f"C3D temporal_depths={temporal_depths!r}: expected one odd depth >= 1, "
                f"or a list of {n_convs} odd depths (one per conv)"
            )
        self.default_input = (in_channels, clip_len, crop_size, crop_size)
        self.pool5_mode = pool5
        self.feature_aliases: dict[str, str] = {"fc6": "relu6", "fc7": "relu7"}
        self._trunk: list[str] = []  # module names in forward order

        channels, (t, s) = in_channels, (clip_len, crop_size)
        depth_iter = iter(depths)
        for stage, widths in enumerate(stages, start=1):
            for letter, width in zip("abcdefgh", widths):
                d = next(depth_iter)
                conv = nn.Conv3d(channels, width, kernel_size=(d, 3, 3), padding=(d // 2, 1, 1))
                self._add(f"conv{stage}{letter}", conv)
                if batch_norm:
                    self._add(f"bn{stage}{letter}", nn.BatchNorm3d(width))
                self._add(f"relu{stage}{letter}", nn.ReLU())
                self.feature_aliases[f"conv{stage}{letter}"] = f"relu{stage}{letter}"
                channels = width
            pool, t, s = self._pool(stage, last=stage == len(stages), pool5=pool5, t=t, s=s)
            self._add(f"pool{stage}", pool)

        self.flat_features = channels * t * s * s
        self.fc6 = nn.Linear(self.flat_features, fc_width)
        self.relu6 = nn.ReLU()
        self.drop6 = nn.Dropout(dropout)
        self.fc7 = nn.Linear(fc_width, fc_width)
        self.relu7 = nn.ReLU()
        self.drop7 = nn.Dropout(dropout)
        self.fc8 = nn.Linear(fc_width, num_classes)
        self._init_weights() if init == "caffe" else self._init_msra()

    def _add(self, name: str, module: nn.Module) -> None:
        self.add_module(name, module)
        self._trunk.append(name)

    @staticmethod
    def _pool(stage: int, last: bool, pool5: str, t: int, s: int) -> tuple[nn.MaxPool3d, int, int]:
        """Pool of ``stage`` and the temporal/spatial sizes after it."""
        kt = 1 if stage == 1 else 2  # pool1 keeps time [C:C3D]
        pad, ceil = (0, True)
        if last and pool5 == "pad":
            pad, ceil = 1, False
        elif last and pool5 == "floor":
            ceil = False
        pool = nn.MaxPool3d((kt, 2, 2), stride=(kt, 2, 2), padding=(0, pad, pad), ceil_mode=ceil)
        try:
            t_out = pooled_size(t, kt, kt, 0, ceil)
            s_out = pooled_size(s, 2, 2, pad, ceil)
        except ValueError as e:
            raise ValueError(f"C3D pool{stage}: input too small ({t} frames, {s}×{s} pixels): {e}") from None
        return pool, t_out, s_out

    def _init_weights(self) -> None:
        for name in self._trunk:
            module = getattr(self, name)
            if isinstance(module, nn.Conv3d):
                init_gaussian_(module, 0.01, bias=0.0 if name == self.first_conv else 1.0)
        init_gaussian_(self.fc6, 0.005, bias=1.0)
        init_gaussian_(self.fc7, 0.005, bias=1.0)
        init_gaussian_(self.fc8, 0.01, bias=0.0)

    def _init_msra(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv3d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.fc8.weight, std=0.01)  # logits near zero: loss starts at ln(classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clips ``(N, C, T, H, W)`` → the pool5 map, ``(N, 512, 1, 4, 4)`` for C3D on 16×112×112."""
        x = _check_clips(x)
        for name in self._trunk:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """pool5 map → fc6 → fc7 (→ fc8 unless ``pre_logits``)."""
        x = _check_fc6_inputs(features, self.fc6.in_features, self.default_input)
        x = self.drop6(self.relu6(self.fc6(x)))
        x = self.drop7(self.relu7(self.fc7(x)))
        return x if pre_logits else self.fc8(x)


# The input checks are leaf functions for torch.fx, so that the forward stays traceable (the
# inference fast path finds Conv+BN pairs to fold by tracing it).
@torch.fx.wrap
def _check_clips(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 5:
        raise ValueError(f"C3D expects clips (N, C, T, H, W); got shape {tuple(x.shape)}")
    return x


@torch.fx.wrap
def _check_fc6_inputs(features: torch.Tensor, expected: int, default_input: tuple[int, ...]) -> torch.Tensor:
    """The pool5 map flattened, if it has the size fc6 was built for."""
    x = features.flatten(1)
    if x.shape[1] != expected:
        raise ValueError(
            f"C3D fc6 expects {expected} inputs (pool5 map of a "
            f"{'×'.join(map(str, default_input))} clip); got {x.shape[1]} "
            f"from a pool5 map of shape {tuple(features.shape[1:])}"
        )
    return x


@register_model(family="c3d", paper="Tran et al., ICCV 2015 (C3D)", default_input=(3, 16, 112, 112))
def c3d(
    num_classes: int = 487,
    pool5: str = "ceil",
    dropout: float = 0.5,
    in_channels: int = 3,
    clip_len: int = 16,
    crop_size: int = 112,
    width: int = 64,
    fc_width: int = 4096,
    init: str = "caffe",
    batch_norm: bool = False,
    temporal_depths: int | Sequence[int] = 3,
) -> C3D:
    """The Sports-1M C3D net (8 convs, fc6/fc7 4096) on 16×112×112 clips ``[C:C3D]``.

    79,991,015 parameters with 487 classes and 38.55 GMACs per clip (papers.md §1.2); fc6 then
    sees the paper's 8192 inputs (512 × 1 × 4 × 4). ``clip_len`` and ``crop_size`` set the input
    the net is built for (fc6 grows or shrinks with it); ``width`` scales every conv stage (64 =
    the paper's 64-128-256-512-512) and ``fc_width`` fc6/fc7, for small CPU runs (with
    ``init="msra"``: see :class:`C3D`; ``batch_norm`` adds a BatchNorm after every conv, which
    the paper does not have). ``temporal_depths`` is the kernels' temporal depth d (3 in the
    paper's net; 1 gives its 2D twin, "equivalent to 2D convolutions on separate frames", §3.2):
    one value, or one per conv. A size whose pools leave nothing raises ``ValueError``.
    """
    if width < 1 or fc_width < 1:
        raise ValueError(f"C3D width={width}, fc_width={fc_width}: expected positive widths")
    stages = tuple(tuple(max(1, c * width // 64) for c in stage) for stage in C3D_STAGES)
    return C3D(
        num_classes=num_classes,
        stages=stages,
        fc_width=fc_width,
        pool5=pool5,
        dropout=dropout,
        in_channels=in_channels,
        clip_len=clip_len,
        crop_size=crop_size,
        init=init,
        batch_norm=batch_norm,
        temporal_depths=temporal_depths,
    )


@register_model(family="c3d", paper="Tran et al., ICCV 2015 (C3D), §3.2", default_input=(3, 16, 112, 112))
def c3d_search_net(
    num_classes: int = 101,
    temporal_depths: int | Sequence[int] = 3,
    dropout: float = 0.5,
    crop_size: int = 112,
) -> C3D:
    """The kernel-temporal-depth search net: 5 convs (64, 128, 256, 256, 256), each pooled; fc 2048-2048.

    ``temporal_depths`` is the paper's d: one value for the homogeneous nets (1, 3, 5, 7) or five
    values for the varying ones (``[3, 3, 5, 5, 7]`` increasing, ``[7, 5, 5, 3, 3]`` decreasing).
    ``crop_size`` gives the appendix's resolution study (net-64/128/256 crop 56/112/224).
    Depth 3 with 101 classes has 17,444,965 parameters. Layout and init:
    ``[C:C3D] C3D-v1.1/examples/c3d_ucf101_training/train_simple.prototxt``.

    The paper's remark that nets whose depths differ by 2 differ by only ~17K parameters (51K
    between depth 1 and 7, as paraphrased in ``[S:C3D-es]``) does not match a direct count of
    this layout: depth 1 has 14,344,933 and depth 7 23,645,029 parameters (the fc layers, which
    the depth does not touch, are identical). The layout follows the released prototxt.
    """
    return C3D(
        num_classes=num_classes,
        stages=SEARCH_NET_STAGES,
        fc_width=2048,
        temporal_depths=temporal_depths,
        pool5="ceil",
        dropout=dropout,
        crop_size=crop_size,
    )


# -- loading converted Sports-1M weights ----------------------------------------------------------

# The PyTorch ports of the Caffe Sports-1M model name the first two convs without a letter.
_PORT_RENAMES = {"conv1": "conv1a", "conv2": "conv2a"}


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_c3d_sports1m` did with each key."""

    matched: list[str] = field(default_factory=list)  # loaded (model key names)
    missing: list[str] = field(default_factory=list)  # model keys the file did not provide
    unexpected: list[str] = field(default_factory=list)  # file keys the model has no place for
    mismatched: list[str] = field(default_factory=list)  # present in both, different shapes: skipped

    def __str__(self) -> str:
        return (
            f"loaded {len(self.matched)} tensors; missing {self.missing or 'none'}; "
            f"unexpected {self.unexpected or 'none'}; shape mismatch (skipped) {self.mismatched or 'none'}"
        )


def _port_key(key: str) -> str:
    key = key.removeprefix("module.")
    layer, dot, rest = key.partition(".")
    return _PORT_RENAMES.get(layer, layer) + dot + rest


def load_c3d_sports1m(model: C3D, path: str | os.PathLike) -> LoadReport:
    """Load converted Sports-1M C3D weights from a LOCAL file into ``model``; nothing is downloaded.

    Accepts the key layout of the common PyTorch ports (``conv1.weight``, ``conv2``, ``conv3a``,
    ``conv3b``, …, ``conv5b``, ``fc6``, ``fc7``, ``fc8``), this module's own names, a ``module.``
    prefix, and a checkpoint dict wrapping the weights under ``"state_dict"`` or ``"model"``. The
    file is read with weights-only unpickling. Tensors whose shape differs (e.g. a 487-way fc8 into
    a 101-way model, or an 8192-input fc6 into a ``pool5="floor"`` model) are skipped and listed
    in the report, so the usual fine-tuning start is ``load_c3d_sports1m(c3d(num_classes=101), p)``.
    """
    state = load_checkpoint(path)
    if isinstance(state, Mapping):
        for wrapper in ("state_dict", "model"):
            if wrapper in state and isinstance(state[wrapper], Mapping):
                state = state[wrapper]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"C3D weights {path}: expected a state dict of tensors, found {type(state).__name__}")

    own = model.state_dict()
    renamed = {_port_key(k): v for k, v in state.items()}
    matched, mismatched = [], []
    to_load: dict[str, torch.Tensor] = {}
    for key, value in renamed.items():
        if key not in own:
            continue
        if own[key].shape != value.shape:
            mismatched.append(f"{key}: file {tuple(value.shape)} vs model {tuple(own[key].shape)}")
            continue
        to_load[key] = value
        matched.append(key)
    if not matched:
        raise ValueError(
            f"C3D weights {path}: no key matches a C3D layer (file keys start "
            f"{', '.join(list(state)[:5])}; expected conv1.weight … fc8.bias)"
        )
    model.load_state_dict(to_load, strict=False)
    return LoadReport(
        matched=matched,
        missing=[k for k in own if k not in renamed],
        unexpected=[k for k in renamed if k not in own],
        mismatched=mismatched,
    )
