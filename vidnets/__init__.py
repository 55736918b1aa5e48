"""vidnets: video action recognition with the six networks of its founding survey.

C3D, Two-Stream ConvNets, TSN, P3D, T3D and Res3D, plus decoding, optical flow, the papers'
training and testing recipes, feature extraction, fusion and benchmarks.

The Python API (:mod:`vidnets.api`) is importable from here: :func:`train`, :func:`test`,
:func:`predict` and :func:`load_model`. It is imported on first use, so ``import vidnets``
stays light (no PyTorch until then).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "train", "test", "predict", "load_model", "Run", "Metrics"]

_API = ("train", "test", "predict", "load_model", "Run", "Metrics")

if TYPE_CHECKING:
    from vidnets.api import Metrics, Run, load_model, predict, test, train


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("vidnets.api"), name)
    raise AttributeError(f"module 'vidnets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
