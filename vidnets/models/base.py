"""The uniform interface every vidnets model offers.

Every network is a :class:`VideoClassifier`::

    x ──► forward_features(x) ──► features ──► forward_head(features) ──► logits
                                   (before global pooling where the model has one)

``forward_head(features, pre_logits=True)`` stops before the classifier and returns the pooled
vector, which is what feature extraction wants. ``reset_classifier(n)`` swaps the last layer,
``adapt_input_channels(c)`` changes the first convolution's input channels with TSN's
cross-modality initialisation (average the weights over the old input channels, replicate).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["VideoClassifier", "TaskView", "cross_modality_weight"]


def cross_modality_weight(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """TSN's cross-modality initialisation of a first-layer kernel.

    ``weight`` has shape ``(out, in, *kernel)``. The result has ``in_channels`` input channels,
    each equal to the mean of ``weight`` over its input-channel axis (TSN, §3.2).
    """
    mean = weight.mean(dim=1, keepdim=True)
    return mean.expand(-1, in_channels, *weight.shape[2:]).contiguous()


class VideoClassifier(nn.Module):
    """Base class: subclasses set the two attribute paths and implement the two forwards.

    Attributes
    ----------
    first_conv : str
        Dotted path of the first convolution (the layer whose input channels are adapted).
    classifier : str
        Dotted path of the final ``nn.Linear`` (the layer ``reset_classifier`` replaces).
    default_input : tuple[int, ...]
        Input shape of one sample without the batch dimension, e.g. ``(3, 16, 112, 112)``.
    """

    first_conv: str = ""
    classifier: str = ""
    default_input: tuple[int, ...] = ()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    # -- classifier -------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        head = self.get_classifier()
        return head.out_features if isinstance(head, nn.Linear) else 0

    def get_classifier(self) -> nn.Module:
        return self.get_submodule(self.classifier)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final layer by a freshly initialised one with ``num_classes`` outputs.

        ``num_classes=0`` removes it (``nn.Identity``): the model then returns pooled features.
        """
        old = self.get_classifier()
        in_features = old.in_features if isinstance(old, nn.Linear) else self._classifier_in_features
        self._classifier_in_features = in_features
        new: nn.Module = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()
        if isinstance(new, nn.Linear):
            nn.init.normal_(new.weight, 0.0, 0.01)
            nn.init.zeros_(new.bias)
        new.to(next(self.parameters()).device)
        self._set_submodule(self.classifier, new)

    # -- input channels ---------------------------------------------------------------------
    @property
    def in_channels(self) -> int:
        return self.get_submodule(self.first_conv).in_channels

    def adapt_input_channels(self, in_channels: int) -> None:
        """Change the first convolution to take ``in_channels`` inputs.

        The new kernel is the old one averaged over its input channels and replicated
        (TSN's cross-modality pre-training), so RGB weights give a sensible start for flow
        (2L channels) or RGB-difference inputs. The bias is kept.
        """
        conv = self.get_submodule(self.first_conv)
        if conv.in_channels == in_channels:
            return
        if conv.groups != 1:
            raise ValueError(f"{self.first_conv}: grouped first convolutions cannot be adapted")
        new = type(conv)(
            in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            bias=conv.bias is not None,
            padding_mode=conv.padding_mode,
        ).to(device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            new.weight.copy_(cross_modality_weight(conv.weight, in_channels))
            if conv.bias is not None:
                new.bias.copy_(conv.bias)
        self._set_submodule(self.first_conv, new)
        if self.default_input:
            self.default_input = (in_channels, *self.default_input[1:])

    # -- helpers ----------------------------------------------------------------------------
    def _set_submodule(self, path: str, module: nn.Module) -> None:
        parent_path, _, name = path.rpartition(".")
        parent = self.get_submodule(parent_path) if parent_path else self
        setattr(parent, name, module)


class TaskView(nn.Module):
    """One head of a multi-task model seen as a single-head classifier: ``model(x, task=task)``.

    What testing and prediction use (they expect one logits tensor). Attribute look-ups the
    engine makes (``default_input``, ``first_conv``…) fall through to the wrapped model.
    """

    def __init__(self, model: nn.Module, task: str) -> None:
        super().__init__()
        tasks = getattr(model, "tasks", [])
        if task not in tasks:
            raise KeyError(f"no task head {task!r}; heads: {', '.join(tasks) or 'none (single head)'}")
        self.model, self.task = model, task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, task=self.task)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["model"], name)
