"""Evaluate's set tab through the batch runner: every image of a set (an uploaded zip, the bundled samples) explained
for its top-1 class and scored, one row per (image, map) with the metric columns; mean ± std per map is
:func:`xai_core.metrics.summarise` of these rows."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..errors import XaiError
from ..metrics.registry import get_metric
from ..metrics.sets import Item
from ..models.spec import ModelSpec
from ..request import ExplainRequest
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .memory import run_memory
from .work import Decoded, Work


def evaluate_set(model: ModelSpec | Workbench, items: Iterable[Item], explainers: list[tuple[str, dict[str, Any]]], *,
                 metrics: list[str], params: dict[str, dict] | None = None, references: bool = True, seed: int = 0,
                 batch_size: int = 8, progress: Progress | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per (image, map) with every metric, and one note per image that failed (its rows are left out).
    Each image is explained for its top-1 class; localisation metrics run on images with a box or mask; with
    ``references`` the random, centre and edge maps are scored beside the explainers' maps."""
    requests = [ExplainRequest.make(m, None, p, seed) for m, p in explainers]
    titles = {r.method: r.spec.title for r in requests}
    work = Work.make(requests, target="top1", metrics=metrics, params=params, references=references)
    items = list(items)
    decoded = [Decoded(it.name, it.image, box=it.box, region=it.region) for it in items]
    if len({d.key for d in decoded}) != len(decoded):
        raise XaiError("Two images of the set have the same name; give every image its own name.")
    result = run_memory(as_workbench(model), decoded, work, batch_size=batch_size, progress=progress)
    failed = {r["item"]: r["error"] for r in result.rows if r["error"] is not None}
    rows = [{"image": r["item"], "class": r["target_name"], "map": titles.get(r["explainer"], r["explainer"]),
             **{get_metric(m).column: r.get(m, math.nan) for m in metrics}}
            for r in result.rows if r["item"] not in failed]
    return rows, [f"{name}: {error}" for name, error in failed.items()]
