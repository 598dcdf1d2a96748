"""Predict, then reveal: score a student's guess against the model — a box against the map's evidence (IoU), or a
guessed class against the prediction — and total a quiz per explainer."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..errors import ExplainerError
from ..types import Box


def evidence_region(m: np.ndarray, signed: bool, fraction: float = 0.15) -> np.ndarray:
    """The pixels holding the map's strongest evidence: its top ``fraction`` (positive values only for signed
    maps; ties at the threshold included)."""
    v = np.maximum(m, 0) if signed else m - m.min()
    if not 0 < fraction <= 1:
        raise ExplainerError(f"The evidence fraction must be in (0, 1]; got {fraction}.")
    if float(v.max()) <= 0:
        return np.zeros(m.shape, bool)
    level = np.quantile(v, 1 - fraction)
    return (v >= level) & (v > 0)


def box_mask(shape: tuple[int, int], box: Box) -> np.ndarray:
    h, w = shape
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, x1 = sorted((min(max(x0, 0), w), min(max(x1, 0), w)))
    y0, y1 = sorted((min(max(y0, 0), h), min(max(y1, 0), h)))
    out = np.zeros(shape, bool)
    out[y0:y1, x0:x1] = True
    return out


def box_iou(box: Box, m: np.ndarray, signed: bool, fraction: float = 0.15) -> float:
    """Intersection over union of the student's box and the map's evidence region (0 when both are empty)."""
    a, b = box_mask(m.shape, box), evidence_region(m, signed, fraction)
    union = int((a | b).sum())
    return float((a & b).sum() / union) if union else 0.0


@dataclass(frozen=True)
class Answer:
    """One quiz answer: ``kind`` is 'box' (score = IoU) or 'class' (score = 1 if the guess was the prediction)."""

    explainer: str
    kind: str
    score: float


def class_answer(explainer: str, guess: int, predicted: int) -> Answer:
    return Answer(explainer, "class", 1.0 if int(guess) == int(predicted) else 0.0)


def box_answer(explainer: str, box: Box, m: np.ndarray, signed: bool) -> Answer:
    return Answer(explainer, "box", box_iou(box, m, signed))


def scores(answers: list[Answer]) -> dict[str, dict[str, float]]:
    """Per explainer: questions answered, mean box IoU and class accuracy (NaN where it had no such question)."""
    by: dict[str, list[Answer]] = defaultdict(list)
    for a in answers:
        by[a.explainer].append(a)
    out = {}
    for name, items in by.items():
        boxes = [a.score for a in items if a.kind == "box"]
        classes = [a.score for a in items if a.kind == "class"]
        out[name] = {"questions": float(len(items)), "mean IoU": float(np.mean(boxes)) if boxes else float("nan"),
                     "class accuracy": float(np.mean(classes)) if classes else float("nan")}
    return out
