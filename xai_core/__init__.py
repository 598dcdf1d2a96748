"""xai_core: explanations of image classifiers, UI-free (never imports streamlit).

Public API::

    from xai_core import load_model, Workbench, RunOptions, ExplainRequest
    wb = Workbench(load_model("efficientnet_lite0"), RunOptions(time_budget=30))   # one per session
    e = wb.explain(image, ExplainRequest.make("gradcam"))   # e.map: float32 (H, W); e.diagnostics
    wb.predict(image, k=5)
    xai_core.explain(model, image, "gradcam")                # the same with default options
"""

from . import (
    concepts,
    engine,
    explainers,
    images,
    lab,  # registers the lab CNN with the model registry (models/ knows no lab)
    metrics,
    options,
    render,
    store,  # what persists (named concepts): SQLAlchemy, SQLite by default, XAI_DB_URL for PostgreSQL
    targets,  # what to explain beyond a class: a prompt, a reference image, a region, a box
)
from .api import explain, predict, probabilities
from .capability import Capability, capabilities, target_kinds
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
    load_own_model,
    model_status,
    model_title,
    parse_labels,
)
from .options import RunOptions
from .registry import ExplainerSpec, get_explainer, list_explainers
from .request import ExplainRequest, Explanation, Prediction
from .types import Box, Cost, Diagnostic, DiagnosticValue, ParamSpec, Progress
from .workbench import Workbench, as_workbench

__all__ = [
    "ARCHITECTURES", "Box", "Capability", "DEFAULT_MODEL", "Cancelled", "Cost", "Diagnostic", "DiagnosticValue", "ExplainRequest",
    "ExplainerError", "ExplainerSpec", "Explanation", "ImageError", "ModelLoadError", "ModelSpec", "ParamSpec",
    "Prediction", "Progress", "RunOptions", "Workbench", "XaiError", "as_workbench", "capabilities", "concepts", "engine",
    "explain", "explainers", "from_module", "get_explainer", "images", "lab", "list_explainers", "list_models", "load_checkpoint",
    "load_image", "load_model", "load_own_model", "metrics", "model_status", "model_title", "options", "parse_labels", "predict",
    "probabilities", "render", "store", "target_kinds", "targets",
]
