"""Model-randomisation sanity check (Adebayo et al. 2018, 'Sanity Checks for Saliency Maps', NeurIPS,
arXiv:1810.03292): does an explanation change when the weights it claims to explain are destroyed?"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..errors import Cancelled, ExplainerError
from ..metrics.reference_maps import EDGES, edge_map
from ..models.spec import ModelSpec
from ..registry import get_explainer
from ..request import ExplainRequest
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .randomise import randomised, stages, weighted_layers
from .similarity import SIMILARITIES, is_constant

DEPENDS = 0.5  # Spearman |·| below this after randomisation: the map follows the weights
INSENSITIVE = 0.8  # Spearman |·| at or above this with the logits randomised: the map ignores the class layer


@dataclass
class SanityReport:
    """Maps per explainer at every stage (index 0: the trained model) and their similarity to the original."""

    mode: str
    target: int
    class_name: str
    stages: list[str]
    maps: dict[str, list[np.ndarray]]
    similarity: dict[str, dict[str, list[float]]]
    constant: dict[str, list[bool]]
    probability: list[float]
    layers: list[list[str]] = field(default_factory=list)

    def verdict(self, name: str) -> str:
        """Plain words from Spearman |·|: a map that survives the logits' randomisation does not explain the
        class decision; one that falls below 0.5 somewhere depends on the weights."""
        rho = self.similarity[name]["Spearman |·|"]
        if rho[0] >= INSENSITIVE:
            return f"barely changes when the logits are randomised (ρ = {rho[0]:.2f}): it cannot explain the decision"
        if min(rho) < DEPENDS:
            return f"depends on the weights (ρ falls to {min(rho):.2f})"
        return f"changes little (lowest ρ = {min(rho):.2f})"


def model_randomisation(model: ModelSpec | Workbench, image: np.ndarray, methods: list[tuple[str, dict[str, Any]]], *,
                        mode: Literal["cascading", "independent"] = "cascading", n_stages: int = 5,
                        target: int | None = None, seed: int = 0, edges: bool = True,
                        progress: Progress | None = None) -> SanityReport:
    """Explain ``image`` with each method on the trained model, then on copies randomised from the logits down
    (``cascading``: every stage adds the next group of layers) or one group at a time (``independent``).

    The trained model is only touched inside the Workbench's session (explaining it, copying it); each randomised
    copy gets its own Workbench with the same run options."""
    if mode not in ("cascading", "independent"):
        raise ExplainerError(f"Unknown randomisation {mode!r}: choose cascading or independent.")
    wb = as_workbench(model)
    model = wb.model
    requests = [ExplainRequest.make(m, None, p, seed) for m, p in methods]
    x = model.preprocess(image)
    groups = stages(weighted_layers(wb, x), n_stages)
    if not groups or not groups[0]:
        raise ExplainerError("This model has no layers with weights to randomise.")
    p0 = wb.probabilities(image)
    tgt = int(p0.argmax()) if target is None else int(target)
    titles = {m: get_explainer(m).title for m, _ in methods}
    maps: dict[str, list[np.ndarray]] = {titles[m]: [] for m, _ in methods}
    probs = []
    edge = edge_map(image)
    labels = ["trained"]
    total = (len(groups) + 1) * max(1, len(methods))
    done = 0
    for k in range(len(groups) + 1):
        if k == 0:
            bench = wb
        else:
            chosen = [n for g in groups[:k] for n in g] if mode == "cascading" else groups[k - 1]
            bench = wb.with_model(randomised(wb, chosen, x, seed=seed + k))
            labels.append(_label(groups[k - 1], k, mode))
        probs.append(float(bench.probabilities(image)[tgt]))
        for (m, _), req in zip(methods, requests, strict=True):
            if progress is not None:
                progress(done / total, f"{labels[-1]}: {titles[m]}")
            try:
                maps[titles[m]].append(bench.explain(image, req.with_target(tgt)).map)
            except Cancelled:
                raise
            except ExplainerError:  # e.g. a randomised model gives NaN scores: an all-zero map, reported constant
                maps[titles[m]].append(np.zeros(image.shape[:2], np.float32))
            done += 1
    if edges:
        maps[EDGES] = [edge] * (len(groups) + 1)
    sims = {name: {s: [float(np.nan_to_num(fn(ms[0], mk), nan=0.0)) for mk in ms[1:]] for s, fn in SIMILARITIES.items()}
            for name, ms in maps.items()}
    constant = {name: [is_constant(mk) for mk in ms] for name, ms in maps.items()}
    if progress is not None:
        progress(1.0, "done")
    return SanityReport(mode, tgt, model.label(tgt), labels, maps, sims, constant, probs, groups)


def _label(group: list[str], k: int, mode: str) -> str:
    if k == 1:
        return f"logits ({group[0]})"
    if mode == "cascading":  # everything above, down to the lowest layer of this group
        return f"down to {group[-1]}"
    return "only " + (group[0] if len(group) == 1 else f"{group[-1]} … {group[0]}")
