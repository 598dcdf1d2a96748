"""The one-call API (tests, benches, scripts): each call builds a default :class:`Workbench` on the model.

Pages hold a Workbench per session instead (its run options and the model's lock), and call the same methods.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .models.spec import ModelSpec
from .request import ExplainRequest, Explanation, Prediction
from .types import Progress
from .workbench import Workbench, as_workbench

__all__ = ["Explanation", "Prediction", "explain", "predict", "probabilities"]


def probabilities(model: ModelSpec | Workbench, image: np.ndarray) -> np.ndarray:
    """Softmax class probabilities for one RGB uint8 image (under the model's lock)."""
    return as_workbench(model).probabilities(image)


def predict(model: ModelSpec | Workbench, image: np.ndarray, k: int = 5) -> list[Prediction]:
    """The top-``k`` classes with probabilities."""
    return as_workbench(model).predict(image, k)


def explain(model: ModelSpec | Workbench, image: np.ndarray, method: str, target: int | None = None, seed: int = 0, *,
            progress: Progress | None = None, **params: Any) -> Explanation:
    """Explain ``model``'s score for ``target`` (None: top-1) on an RGB uint8 image of any size."""
    return as_workbench(model).explain(image, ExplainRequest.make(method, target, params, seed), progress=progress)
