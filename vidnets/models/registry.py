"""Name → builder lookup for ``vidnets.models.create`` and the ``vidnets models`` table.

Builders are ordinary typed functions (``res3d18(num_classes=101)``); ``@register_model``
only records them under their function name with the facts the model table prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

__all__ = ["ModelInfo", "register_model", "create", "list_models", "model_info"]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: Callable[..., nn.Module]
    family: str
    paper: str
    default_input: tuple[int, ...]


_MODELS: dict[str, ModelInfo] = {}


def register_model(family: str, paper: str, default_input: tuple[int, ...]):
    """Decorator recording a builder function under its own name."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if fn.__name__ in _MODELS:
            raise ValueError(f"model {fn.__name__!r} registered twice")
        _MODELS[fn.__name__] = ModelInfo(fn.__name__, fn, family, paper, tuple(default_input))
        return fn

    return wrap


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, in registration order, optionally of one family."""
    wanted = family.lower() if family else None
    return [n for n, i in _MODELS.items() if wanted is None or i.family == wanted]


def model_info(name: str) -> ModelInfo:
    try:
        return _MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(_MODELS)}") from None


def create(name: str, weights: str | None = None, **kwargs) -> nn.Module:
    """Build model ``name`` with the builder's keyword arguments (e.g. ``num_classes=101``).

    ``weights`` loads a checkpoint: a path in any layout of :mod:`vidnets.models.convert` (a Caffe
    ``.caffemodel``, torchvision, tsn-pytorch / Cadene BN-Inception, the C3D port's ``c3d.pickle``,
    a ``vidnets convert`` output or a vidnets state dict), or a download name such as
    ``"kinetics400"`` for ``res3d18``. Keyword arguments the file determines (classes, input
    channels, …) are taken from it unless given; what was loaded is in ``model.weights_report``.
    """
    info = model_info(name)
    if weights is None:
        return info.builder(**kwargs)
    from vidnets.models.convert import create_with_weights

    return create_with_weights(name, weights, **kwargs)
