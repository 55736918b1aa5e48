"""The six networks of the survey behind one interface (see :mod:`vidnets.models.base`).

Build a model with its typed builder (``res3d18(num_classes=101)``) or by name
(``create("res3d18", num_classes=101)``); ``list_models()`` names them all and
``complexity(model)`` counts parameters and multiply-adds.
"""

from vidnets.models.base import VideoClassifier, cross_modality_weight
from vidnets.models.complexity import Complexity, complexity, count_parameters
from vidnets.models.registry import ModelInfo, create, list_models, model_info, register_model

# Family modules register their builders on import, in the survey's order (so not sorted).
# ruff: noqa: I001
from vidnets.models import c3d, two_stream, tsn, p3d, t3d, res3d  # noqa: E402,F401
from vidnets.models.c3d import c3d_search_net  # noqa: E402
from vidnets.models.features import extract_features  # noqa: E402
from vidnets.models.tsn import tsn_bninception  # noqa: E402
from vidnets.models.two_stream import two_stream_spatial, two_stream_temporal  # noqa: E402

__all__ = [
    "VideoClassifier",
    "cross_modality_weight",
    "Complexity",
    "complexity",
    "count_parameters",
    "ModelInfo",
    "create",
    "list_models",
    "model_info",
    "register_model",
    "c3d_search_net",
    "extract_features",
    "tsn_bninception",
    "two_stream_spatial",
    "two_stream_temporal",
]
