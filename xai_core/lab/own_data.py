"""Your own data, analysed: every image of a class-folder zip explained in batches, accuracy per class, the
localisation scores where a mask or box was given, and SpRAy (Lapuschkin et al. 2019) within each class."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..batch.inputs import match_classes as match_classes  # re-exported: the one folder → class rule
from ..batch.memory import run_memory
from ..batch.work import Decoded, Work
from ..errors import XaiError
from ..models.spec import ModelSpec
from ..request import ExplainRequest
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .folders import FolderSet
from .spray import SprayResult, spray

SIDE = 64  # maps are kept at 64×64 for display and SpRAy
MIN_SPRAY = 8  # fewer heatmaps than this in a class: no clustering
LOCALISATION = ("pointing_game", "relevance_mass")


@dataclass
class FolderReport:
    method: str
    signed: bool
    rows: list[dict[str, Any]]  # one per image
    maps: np.ndarray  # [N, SIDE, SIDE]
    spray: dict[str, SprayResult | str]  # per folder: the clustering, or why there is none
    per_class: list[dict[str, Any]]


def analyse(model: ModelSpec | Workbench, fs: FolderSet, method: str, *, batch: int = 16, seed: int = 0,
            progress: Progress | None = None, **params: Any) -> FolderReport:
    """Explain every image for its folder's class (when the folder names a model class) or else the model's top-1
    class; score localisation where a region is known; cluster each class's maps with SpRAy. The images run through
    the batch runner's in-memory source (the loop the CLI and Evaluate's set tab use)."""
    wb = as_workbench(model)
    model = wb.model
    request = ExplainRequest.make(method, None, params, seed)
    mapped = match_classes(fs.classes, model.labels)
    tolerance = round(15 * model.input_size[0] / 224)  # the paper's 15 px at 224 px, scaled to this model's input
    work = Work.make([request], target="label", metrics=LOCALISATION,
                     params={"pointing_game": {"tolerance": tolerance}})
    items = [Decoded(fs.names[i], fs.images[i], mapped[fs.labels[i]], region=fs.regions[i]) for i in range(len(fs))]
    result = run_memory(wb, items, work, batch_size=batch, progress=progress)
    found: list[np.ndarray] = []
    for row, m in zip(result.rows, result.maps, strict=True):
        if m is None:  # the explainer failed: the analysis as a whole did
            raise XaiError(f"{row['error']} (on {row['item']}…)")
        found.append(m)
    maps = np.stack([cv2.resize(m, (SIDE, SIDE), interpolation=cv2.INTER_AREA) for m in found]) if len(fs) \
        else np.zeros((0, SIDE, SIDE), np.float32)
    rows = [_row(fs, i, row) for i, row in enumerate(result.rows)]
    if progress is not None:
        progress(1.0, "clustering with SpRAy")
    return FolderReport(method, request.spec.signed, rows, maps, _spray_per_class(fs, maps, seed),
                        _per_class(fs, mapped, rows))


def _row(fs: FolderSet, i: int, r: dict[str, Any]) -> dict[str, Any]:
    """The page's row of image ``i`` from the runner's row (a metric that could not be scored is NaN)."""
    return {"image": fs.names[i], "folder": fs.classes[fs.labels[i]], "explained class": r["target_name"],
            "predicted": r["prediction_name"], "p(predicted)": r["probability"], "correct": r["correct"],
            "pointing game": r["pointing_game"], "relevance mass": r["relevance_mass"]}


def _spray_per_class(fs: FolderSet, maps: np.ndarray, seed: int) -> dict[str, SprayResult | str]:
    out: dict[str, SprayResult | str] = {}
    for c, name in enumerate(fs.classes):
        idx = np.where(fs.labels == c)[0]
        if len(idx) < MIN_SPRAY:
            out[name] = f"only {len(idx)} images: SpRAy needs at least {MIN_SPRAY} to find clusters"
            continue
        out[name] = spray(maps[idx], neighbours=min(10, len(idx) - 1), seed=seed)
    return out


def _per_class(fs: FolderSet, mapped: list[int | None], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c, name in enumerate(fs.classes):
        r = [rows[i] for i in np.where(fs.labels == c)[0]]
        correct = [x["correct"] for x in r if x["correct"] is not None]
        pgs = [x["pointing game"] for x in r if not math.isnan(x["pointing game"])]
        masses = [x["relevance mass"] for x in r if not math.isnan(x["relevance mass"])]
        out.append({"folder": name, "images": len(r), "model class": "—" if mapped[c] is None else r[0]["explained class"],
                    "accuracy": float(np.mean(correct)) if correct else math.nan,
                    "pointing game": float(np.mean(pgs)) if pgs else math.nan,
                    "relevance mass": float(np.mean(masses)) if masses else math.nan, "with a region": len(pgs)})
    return out
