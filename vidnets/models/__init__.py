"""The six networks of the survey behind one interface (see :mod:`vidnets.models.base`).

Build a model with its typed builder (``res3d18(num_classes=101)``) or by name
(``create("res3d18", num_classes=101)``); ``list_models()`` names them all and
``complexity(model)`` counts parameters and multiply-adds.
"""

from vidnets.models.base import VideoClassifier, cross_modality_weight
from vidnets.models.complexity import Complexity, complexity, count_parameters
from vidnets.models.registry import ModelInfo, create, list_models, model_info, register_model

# Family modules register their builders on import. (Each family adds its import here.)

__all__ = [
    "VideoClassifier", "cross_modality_weight", "Complexity", "complexity", "count_parameters",
    "ModelInfo", "create", "list_models", "model_info", "register_model",
]
