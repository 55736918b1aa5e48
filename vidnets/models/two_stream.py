"""Two-Stream ConvNets — Simonyan & Zisserman, NIPS 2014 (arXiv:1406.2199).

Both streams are CNN-M-2048 (Chatfield et al. 2014), laid out as the released
VGG_CNN_M_2048 deploy prototxt ``[R:VGGM]`` (papers.md §2.1)::

    image 3×224×224 (spatial)  or  flow stack 2L×224×224 (temporal, L = 10 → 20 channels)
      conv1 96 7×7/2 pad 0 ─ ReLU ─ norm1 (LRN) ─ pool1 3×3/2     ──►  96×54×54   (conv1: 109×109)
      conv2 256 5×5/2 pad 1 ─ ReLU ─ norm2 (LRN, spatial only) ─ pool2 ──► 256×13×13 (conv2: 26×26)
      conv3, conv4, conv5 512 3×3 pad 1 ─ ReLU ─ pool5 3×3/2      ──► 512×6×6 = 18,432
      full6 4096 ─ ReLU ─ dropout ─ full7 2048 ─ ReLU ─ dropout ─ fc8 (one per dataset when multi-task)

``forward_features`` returns the pool5 map ``(N, 512, 6, 6)``; ``forward_head(f, pre_logits=True)``
returns the 2048-d full7 vector. ``width`` (conv1's 96 channels; conv2-5 scale with it) and
``fc_width`` (full6's 4096; full7 is half of it) shrink the net for CPU runs; the defaults are
the published widths.

Choices, with their sources:

* **Ceil pooling**: Caffe rounds pooling sizes up (26 → 13 at pool2); PyTorch's default floor
  gives 54 → 12 → 5 and a 12,800-input full6 instead of the published 18,432 ``[R:VGGM]``.
  ``ceil_pooling=True`` is the default; ``False`` exists only to show the difference.
* **LRN**: ``LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2)``. Caffe's ``alpha`` 5e-4 is divided
  by the window size, as PyTorch's is ``[R:VGGM]``. The temporal net drops norm2 ``[P:TS §5]``.
* **Dropout**: the paper trains temporal nets from scratch with an "aggressive" 0.9 and tried 0.5
  and 0.9 for the spatial net ``[P:TS §5]``; the builders default to 0.5 (spatial) and 0.9
  (temporal).
* **Temporal input**: 2L channels ordered ``dx_1, dy_1, dx_2, dy_2, …`` ``[P:TS §3.1]``. A 5-D
  input ``(N, 2, L, H, W)`` is folded frame-major into that order; a 4-D input is used as is.
* **Multi-task** ``[P:TS §4]``: ``heads={"ucf101": 101, "hmdb51": 51}`` puts one linear classifier
  per dataset on the shared full7; the model then returns ``{task: logits}`` (or one task's
  logits with ``model(x, task="hmdb51")``), and :func:`multitask_loss` applies each head's loss to
  its own dataset's samples only and sums them.
* **Initialisation**: no authors' code exists. The fillers of Caffe's AlexNet reference model
  (whose LRN settings the paper says it follows) are used: weights N(0, 0.01) (full6/full7
  N(0, 0.005)), biases 0.1 on conv2, conv4, conv5, full6, full7 and 0 elsewhere (``init="caffe"``,
  the default). They rely on the full widths: at ``width=12`` the signal fades through the five
  convs and the net does not train (measured: loss flat at ln(classes) for 5 epochs), so narrow
  nets take ``init="msra"`` (He-normal weights, zero biases), as C3D's do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vidnets.models.base import VideoClassifier
from vidnets.models.layers import conv_size, init_gaussian_, pooled_size
from vidnets.models.registry import register_model

__all__ = ["CNNM2048", "two_stream_spatial", "two_stream_temporal", "multitask_loss", "multitask_correct", "lrn"]

# (name, out channels, kernel, stride, padding, LRN after it?, pool after it?)
_CONVS = (
    ("conv1", 96, 7, 2, 0, True, True),
    ("conv2", 256, 5, 2, 1, True, True),
    ("conv3", 512, 3, 1, 1, False, False),
    ("conv4", 512, 3, 1, 1, False, False),
    ("conv5", 512, 3, 1, 1, False, True),
)
# Caffe AlexNet reference fillers: (weight std, bias) per layer.
_INIT = {
    "conv1": (0.01, 0.0),
    "conv2": (0.01, 0.1),
    "conv3": (0.01, 0.0),
    "conv4": (0.01, 0.1),
    "conv5": (0.01, 0.1),
    "full6": (0.005, 0.1),
    "full7": (0.005, 0.1),
}


def lrn() -> nn.LocalResponseNorm:
    """CNN-M's local response normalisation (Caffe local_size 5, alpha 5e-4, beta 0.75, k 2)."""
    return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)


class CNNM2048(VideoClassifier):
    """CNN-M-2048 as a Two-Stream stream (spatial or temporal).

    Parameters
    ----------
    in_channels : int
        3 for the spatial stream, 2L for the temporal stream.
    num_classes : int
        Classes of the single classifier (ignored when ``heads`` is given).
    heads : mapping of task name → classes, optional
        Multi-task classifiers over the shared trunk, e.g. ``{"ucf101": 101, "hmdb51": 51}``.
    norm2 : bool
        Keep the second LRN (spatial net) or drop it (temporal net, ``[P:TS §5]``).
    dropout : float
        Dropout after full6 and after full7.
    ceil_pooling : bool
        Caffe's ceil rounding in the pools (the published net); ``False`` for PyTorch's floor.
    input_size : int
        Side of the square input; fixes full6's input size (224 → 18,432).
    width : int
        conv1 channels (96 in CNN-M); conv2..conv5 scale with it (256, 512, 512, 512 at 96).
    fc_width : int
        full6 width (4096 in CNN-M-2048); full7 has half as many units (2048).
    init : {"caffe", "msra"}
        ``caffe``: the AlexNet reference fillers (module docstring); ``msra``: He-normal weights
        and zero biases, for narrow nets.
    """

    first_conv = "conv1"
    classifier = "fc8"

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 101,
        heads: Mapping[str, int] | None = None,
        norm2: bool = True,
        dropout: float = 0.5,
        ceil_pooling: bool = True,
        input_size: int = 224,
        width: int = 96,
        fc_width: int = 4096,
        init: str = "caffe",
    ) -> None:
        super().__init__()
        if init not in ("caffe", "msra"):
            raise ValueError(f"CNN-M init={init!r}: expected caffe or msra")
        for key, value in (("width", width), ("fc_width", fc_width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"CNN-M {key}={value!r}: expected a positive int (the paper's net: width 96, fc_width 4096)"
                )
        self.default_input = (in_channels, input_size, input_size)
        self._trunk: list[str] = []
        channels, size = in_channels, input_size
        for name, paper_width, kernel, stride, pad, has_lrn, has_pool in _CONVS:
            index = name[-1]
            out_channels = max(1, paper_width * width // _CONVS[0][1])
            self._add(name, nn.Conv2d(channels, out_channels, kernel, stride=stride, padding=pad))
            self._add(f"relu{index}", nn.ReLU())
            size = conv_size(size, kernel, stride, pad)
            if has_lrn and (index == "1" or norm2):
                self._add(f"norm{index}", lrn())
            if has_pool:
                self._add(f"pool{index}", nn.MaxPool2d(3, stride=2, ceil_mode=ceil_pooling))
                size = pooled_size(size, 3, 2, 0, ceil_pooling)
            channels = out_channels

        self.flat_features = channels * size * size
        self.full6 = nn.Linear(self.flat_features, fc_width)
        self.relu6 = nn.ReLU()
        self.drop6 = nn.Dropout(dropout)
        self.full7 = nn.Linear(fc_width, max(1, fc_width // 2))
        self.relu7 = nn.ReLU()
        self.drop7 = nn.Dropout(dropout)
        features = self.full7.out_features
        if heads:
            self.heads = nn.ModuleDict({task: nn.Linear(features, n) for task, n in heads.items()})
            self.classifier = f"heads.{next(iter(heads))}"
        else:
            self.fc8 = nn.Linear(features, num_classes)
        self._init_weights(init)

    def _add(self, name: str, module: nn.Module) -> None:
        self.add_module(name, module)
        self._trunk.append(name)

    def _init_weights(self, init: str = "caffe") -> None:
        for name, (std, bias) in _INIT.items():
            layer = getattr(self, name)
            if init == "msra":
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
            else:
                init_gaussian_(layer, std, bias)
        for head in self._head_modules().values():
            init_gaussian_(head, 0.01, 0.0)

    # -- heads ------------------------------------------------------------------------------
    @property
    def tasks(self) -> list[str]:
        """Task names of a multi-task model; empty for a single-head model."""
        return list(self.heads) if hasattr(self, "heads") else []

    def _head_modules(self) -> dict[str, nn.Module]:
        return dict(self.heads) if self.tasks else {"": self.fc8}

    def reset_classifier(self, num_classes: int, task: str | None = None) -> None:
        """Replace the classifier, or with ``task`` the named head of a multi-task model."""
        if task is None:
            return super().reset_classifier(num_classes)
        if task not in self.tasks:
            raise KeyError(f"reset_classifier: no task head {task!r}; heads: {self.tasks or 'none (single head)'}")
        default = self.classifier
        self.classifier = f"heads.{task}"
        try:
            super().reset_classifier(num_classes)
        finally:
            self.classifier = default

    # -- forward ----------------------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images or flow stacks ``(N, C, H, W)`` (or ``(N, 2, L, H, W)`` flow) → pool5 map (``(N, 512, 6, 6)``
        for the published net)."""
        if x.dim() == 5:  # (N, C, L, H, W) → (N, L*C, H, W) ordered frame by frame: dx1, dy1, dx2, …
            x = x.transpose(1, 2).flatten(1, 2)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"CNN-M-2048 expects (N, {self.in_channels}, H, W) inputs "
                f"(or (N, C, L, H, W) with C·L = {self.in_channels}); got shape {tuple(x.shape)}"
            )
        for name in self._trunk:
            x = getattr(self, name)(x)
        return x

    def forward_head(
        self, features: torch.Tensor, pre_logits: bool = False, task: str | None = None
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """pool5 map → full6 → full7 (2048 in the published net) → classifier(s).

        A multi-task model returns ``{task: logits}`` unless ``task`` names one head.
        """
        x = features.flatten(1)
        if x.shape[1] != self.full6.in_features:
            raise ValueError(
                f"CNN-M-2048 full6 expects {self.full6.in_features} inputs (pool5 of a "
                f"{self.default_input[-1]}×{self.default_input[-1]} input); got {x.shape[1]}"
            )
        x = self.drop6(self.relu6(self.full6(x)))
        x = self.drop7(self.relu7(self.full7(x)))
        if pre_logits:
            return x
        if not self.tasks:
            if task is not None:
                raise ValueError(f"task={task!r} given, but this model has a single classifier")
            return self.fc8(x)
        if task is not None:
            if task not in self.heads:
                raise KeyError(f"no task head {task!r}; heads: {', '.join(self.tasks)}")
            return self.heads[task](x)
        return {name: head(x) for name, head in self.heads.items()}

    def forward(self, x: torch.Tensor, task: str | None = None) -> torch.Tensor | dict[str, torch.Tensor]:
        return self.forward_head(self.forward_features(x), task=task)


@register_model(family="two_stream", paper="Simonyan & Zisserman, NIPS 2014 (Two-Stream)", default_input=(3, 224, 224))
def two_stream_spatial(
    num_classes: int = 101,
    dropout: float = 0.5,
    heads: Mapping[str, int] | None = None,
    input_size: int = 224,
    width: int = 96,
    fc_width: int = 4096,
    init: str = "caffe",
) -> CNNM2048:
    """Spatial stream: CNN-M-2048 on one RGB frame. 90,627,813 parameters with 101 classes.

    ``input_size`` (224 in the paper) sets the crop side full6 is sized for; ``width`` (conv1
    channels, 96 in the paper; conv2-5 scale with it) and ``fc_width`` (full6, 4096; full7 is half)
    shrink the net; narrow nets need ``init="msra"`` (:class:`CNNM2048`).
    """
    return CNNM2048(
        in_channels=3,
        num_classes=num_classes,
        heads=heads,
        norm2=True,
        dropout=dropout,
        input_size=input_size,
        width=width,
        fc_width=fc_width,
        init=init,
    )


@register_model(family="two_stream", paper="Simonyan & Zisserman, NIPS 2014 (Two-Stream)", default_input=(20, 224, 224))
def two_stream_temporal(
    num_classes: int = 101,
    flow_length: int = 10,
    dropout: float = 0.9,
    heads: Mapping[str, int] | None = None,
    input_size: int = 224,
    width: int = 96,
    fc_width: int = 4096,
    init: str = "caffe",
) -> CNNM2048:
    """Temporal stream: CNN-M-2048 without norm2 on a stack of ``flow_length`` x/y flow pairs (2L channels).

    90,707,781 parameters with L = 10 and 101 classes; with ``heads={"ucf101": 101, "hmdb51": 51}``
    (the paper's multi-task net, §4) 90,812,280. ``input_size``, ``width``, ``fc_width`` and ``init``
    as for :func:`two_stream_spatial`.
    """
    if flow_length < 1:
        raise ValueError(f"two_stream_temporal flow_length={flow_length}: expected >= 1 flow frames")
    return CNNM2048(
        in_channels=2 * flow_length,
        num_classes=num_classes,
        heads=heads,
        norm2=False,
        dropout=dropout,
        input_size=input_size,
        width=width,
        fc_width=fc_width,
        init=init,
    )


def multitask_loss(
    logits_by_task: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    task_ids: torch.Tensor | Sequence[str],
) -> torch.Tensor:
    """Sum over tasks of each head's cross-entropy on the samples of its own dataset ``[P:TS §4]``.

    ``logits_by_task`` is a multi-task model's output (every head scores every sample);
    ``labels[i]`` is sample i's class within its own dataset; ``task_ids`` says which dataset each
    sample comes from, as task names or as integer indices into ``logits_by_task``'s order. Each
    head's loss is averaged over its own samples (samples of other datasets contribute nothing and
    get no gradient from it); a head with no sample in the batch adds zero.
    """
    tasks = list(logits_by_task)
    if isinstance(task_ids, torch.Tensor):
        ids = task_ids.to(device=labels.device, dtype=torch.long)
    else:
        unknown = sorted(set(task_ids) - set(tasks))
        if unknown:
            raise KeyError(f"multitask_loss: task_ids name unknown tasks {unknown}; heads: {tasks}")
        ids = torch.tensor([tasks.index(t) for t in task_ids], device=labels.device)
    if ids.shape != labels.shape:
        raise ValueError(f"multitask_loss: {labels.shape[0]} labels but task_ids of shape {tuple(ids.shape)}")
    total = labels.new_zeros((), dtype=torch.float32)
    for index, task in enumerate(tasks):
        logits = logits_by_task[task]
        mask = ids == index
        if mask.any():
            total = total + F.cross_entropy(logits[mask], labels[mask])
        else:
            total = total + logits.sum() * 0.0  # keeps the graph connected with zero gradient
    return total


def multitask_correct(
    logits_by_task: dict[str, torch.Tensor], labels: torch.Tensor, task_ids: torch.Tensor
) -> torch.Tensor:
    """Number of samples whose own head (``task_ids`` index into the heads' order) ranks the label first."""
    correct = labels.new_zeros(())
    for index, logits in enumerate(logits_by_task.values()):
        mask = task_ids == index
        if mask.any():
            correct = correct + (logits.detach()[mask].argmax(1) == labels[mask]).sum()
    return correct
