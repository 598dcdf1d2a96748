"""xai_core: explanations of image classifiers, UI-free (never imports streamlit).

Public API::

    from xai_core import load_model, list_models, list_explainers, explain, predict
    model = load_model("efficientnet_lite0")
    e = explain(model, image, "gradcam")          # e.map: float32 (H, W)
"""

from . import engine, images, render
from .api import Explanation, Prediction, explain, predict, probabilities
from .errors import Cancelled, ExplainerError, ImageError, ModelLoadError, XaiError
from .images import load_image
from .models import (
    ARCHITECTURES,
    DEFAULT_MODEL,
    ModelSpec,
    from_module,
    list_models,
    load_checkpoint,
    load_model,
    model_status,
    model_title,
    parse_labels,
)
from .registry import ExplainerSpec, ParamSpec, get_explainer, list_explainers

__all__ = [
    "ARCHITECTURES", "DEFAULT_MODEL", "Cancelled", "ExplainerError", "ExplainerSpec", "Explanation", "ImageError",
    "ModelLoadError", "ModelSpec", "ParamSpec", "Prediction", "XaiError", "engine", "explain", "from_module",
    "get_explainer", "images", "list_explainers", "list_models", "load_checkpoint", "load_image", "load_model",
    "model_status", "model_title", "parse_labels", "predict", "probabilities", "render",
]
