"""The high-level API pages use: predict and explain one image of any size."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from .engine import logits
from .errors import ExplainerError
from .models.spec import ModelSpec
from .registry import Progress, get_explainer


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float


@dataclass
class Explanation:
    """One heatmap for one image: ``map`` is float32 with the image's height and width."""

    method: str
    title: str
    map: np.ndarray
    target: int
    class_name: str
    probability: float
    seconds: float
    signed: bool
    params: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


def probabilities(model: ModelSpec, image: np.ndarray) -> np.ndarray:
    """Softmax class probabilities for one RGB uint8 image."""
    return torch.softmax(logits(model.module, model.preprocess(image)), dim=1)[0].cpu().numpy()


def predict(model: ModelSpec, image: np.ndarray, k: int = 5) -> list[Prediction]:
    """The top-``k`` classes with probabilities."""
    p = probabilities(model, image)
    top = np.argsort(-p)[:k]
    return [Prediction(int(i), model.label(int(i)), float(p[i])) for i in top]


def explain(model: ModelSpec, image: np.ndarray, method: str, target: int | None = None, seed: int = 0, *,
            progress: Progress | None = None, **params: Any) -> Explanation:
    """Explain ``model``'s score for ``target`` (None: top-1) on an RGB uint8 image of any size."""
    spec = get_explainer(method)
    resolved = spec.resolve(params)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ExplainerError("explain() needs an RGB uint8 image of shape (H, W, 3); use images.load_image first.")
    with model.lock:
        x = model.preprocess(image)
        probs = torch.softmax(logits(model.module, x), dim=1)[0]
        tgt = int(probs.argmax()) if target is None else int(target)
        if not 0 <= tgt < model.num_classes:
            raise ExplainerError(f"Class {tgt} does not exist: this model has classes 0..{model.num_classes - 1}.")
        extras: dict[str, Any] = {}
        t0 = time.perf_counter()
        maps = spec.fn(model, x, torch.tensor([tgt], device=x.device), progress=progress, seed=seed,
                       extras=extras, **resolved)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    small = maps[0].detach().float().cpu().numpy()
    if not np.isfinite(small).all():
        raise ExplainerError(f"{spec.title} produced NaN or infinite values for this input; "
                             "try other parameters or another method.")
    h, w = image.shape[:2]
    full = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    signed = spec.signed or resolved.get("reduction") == "sum"
    return Explanation(method=method, title=spec.title, map=full, target=tgt, class_name=model.label(tgt),
                       probability=float(probs[tgt]), seconds=seconds, signed=signed, params=resolved,
                       extras={k: v[0] if isinstance(v, list) else v for k, v in extras.items()})
