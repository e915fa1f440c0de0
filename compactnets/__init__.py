"""compactnets: resource-efficient CNNs for image classification, built, measured and compared by name."""

from . import models  # noqa: F401  (registers every model)
from .allocator import tune_malloc
from .complexity import ProfileResult, profile
from .deploy import deploy  # the function; the module stays importable as compactnets.deploy
from .registry import ModelCard, UnknownModelError, create_model, list_models, model_card
from .scaling import scale_model

__version__ = "0.1.0"

__all__ = [
    "ModelCard",
    "ProfileResult",
    "UnknownModelError",
    "__version__",
    "create_model",
    "deploy",
    "list_models",
    "model_card",
    "profile",
    "scale_model",
    "tune_malloc",
]
