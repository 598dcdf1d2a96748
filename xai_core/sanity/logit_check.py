"""Random-logit check (Sixt, Granz & Landgraf 2020, 'When Explanations Lie: Why Many Modified BP Attributions
Fail', ICML, arXiv:1912.09818; Quantus ``RandomLogit``): explain a randomly drawn other class of the same image
with the same model. A map that explains *this* class should change; one that stays the same shows the image,
not the class decision. One random class per seed; the verdict rests on the distribution over seeds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ExplainerError
from ..models.spec import ModelSpec
from ..registry import get_explainer
from ..request import ExplainRequest
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .check import check_seeds
from .similarity import MEASURE, spearman_abs
from .verdict import Spread, agreement, level

RANDOM_LOGIT_REFERENCE = ("Sixt, Granz & Landgraf 2020, 'When Explanations Lie: Why Many Modified BP Attributions Fail', ICML, "
             "arXiv:1912.09818")


@dataclass
class RandomLogitReport:
    """The map of the explained class and, per seed, the map of a random other class with its Spearman |·|."""

    target: int
    class_name: str
    seeds: list[int]
    classes: list[int]
    class_names: list[str]
    original: dict[str, np.ndarray]
    other: dict[str, list[np.ndarray]]
    spreads: dict[str, Spread]

    def kind(self, name: str) -> str:
        return level(self.spreads[name])

    def verdict(self, name: str) -> str:
        s, kind = self.spreads[name], self.kind(name)
        head = {"insensitive": "barely changes when another class is explained",
                "depends": "changes with the class",
                "between": "changes only partly with the class"}[kind]
        tail = ": it shows the image more than this class" if kind == "insensitive" else ""
        return f"{head} (ρ {s.text()}; {agreement(s, kind)}){tail}"


def random_class(seed: int, target: int, num_classes: int) -> int:
    """A class other than ``target``, uniform over the rest, drawn from ``seed``."""
    if num_classes < 2:
        raise ExplainerError("The random-logit check needs a model with at least two classes.")
    c = int(np.random.default_rng(int(seed)).integers(num_classes - 1))
    return c + (c >= target)


def random_logit(model: ModelSpec | Workbench, image: np.ndarray, methods: list[tuple[str, dict[str, Any]]], *,
                 target: int | None = None, seed: int = 0, seeds: int = 3,
                 progress: Progress | None = None) -> RandomLogitReport:
    """Explain ``target`` (None: top-1) and, for each seed ``seed … seed + seeds − 1``, one random other class, in
    one batch per method; compare each pair with Spearman |·| at the maps' own resolution (the model's input)."""
    seed_list = [int(seed) + i for i in range(check_seeds(seeds))]
    wb = as_workbench(model)
    p = wb.probabilities(image)
    tgt = int(p.argmax()) if target is None else int(target)
    classes = [random_class(s, tgt, wb.model.num_classes) for s in seed_list]
    names = [get_explainer(m).title for m, _ in methods]
    x = wb.model.preprocess(image)
    batch = x.repeat(1 + len(classes), 1, 1, 1)
    original: dict[str, np.ndarray] = {}
    other: dict[str, list[np.ndarray]] = {}
    for i, (name, (m, params)) in enumerate(zip(names, methods, strict=True)):
        if progress is not None:
            progress(i / max(len(methods), 1), f"{name}: class {wb.model.label(tgt)} and {len(classes)} random classes")
        run = wb.explain_tensor(batch, [tgt, *classes], ExplainRequest.make(m, None, params, seed))  # batched
        original[name], other[name] = run.maps[0].numpy(), [z.numpy() for z in run.maps[1:]]
    spreads = {n: Spread.of([spearman_abs(original[n], o) for o in other[n]]) for n in names}
    if progress is not None:
        progress(1.0, "done")
    return RandomLogitReport(tgt, wb.model.label(tgt), seed_list, classes, [wb.model.label(c) for c in classes],
                             original, other, spreads)


__all__ = ["MEASURE", "RANDOM_LOGIT_REFERENCE", "RandomLogitReport", "random_class", "random_logit"]
