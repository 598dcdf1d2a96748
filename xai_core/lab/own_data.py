"""Your own data, analysed: every image of a class-folder zip explained in batches, accuracy per class, the
localisation scores where a mask or box was given, and SpRAy (Lapuschkin et al. 2019) within each class."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from ..engine import chunks
from ..errors import XaiError
from ..metrics.evaluate import mask_region
from ..metrics.registry import get_metric
from ..models.spec import ModelSpec
from ..request import ExplainRequest
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .folders import FolderSet
from .spray import SprayResult, spray

SIDE = 64  # maps are kept at 64×64 for display and SpRAy
MIN_SPRAY = 8  # fewer heatmaps than this in a class: no clustering


def _norm(s: str) -> str:
    return re.sub(r"[\s_\-]+", " ", s.strip().lower())


def match_classes(folders: list[str], labels: list[str]) -> list[int | None]:
    """The model class each folder names: by label (case, spaces, '_' and '-' ignored) or by index ('3', '003')."""
    by_name = {_norm(lab): i for i, lab in reversed(list(enumerate(labels)))}
    out: list[int | None] = []
    for f in folders:
        if f.strip().isdigit() and int(f) < len(labels):
            out.append(int(f))
        else:
            out.append(by_name.get(_norm(f)))
    return out


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
    class; score localisation where a region is known; cluster each class's maps with SpRAy."""
    wb = as_workbench(model)
    model = wb.model
    request = ExplainRequest.make(method, None, params, seed)
    spec = request.spec
    mapped = match_classes(fs.classes, model.labels)
    n, t0 = len(fs), time.perf_counter()
    maps = np.zeros((n, SIDE, SIDE), np.float32)
    rows: list[dict[str, Any]] = []
    pg, mass = get_metric("pointing_game").fn, get_metric("relevance_mass").fn

    def compute(start: int, stop: int) -> tuple[np.ndarray, list[int], np.ndarray]:
        x = torch.cat([model.preprocess(fs.images[i]) for i in range(start, stop)])
        try:  # folder class where the folder names one, else the top-1 class from the explainer's own forward
            run = wb.explain_tensor(x, [mapped[fs.labels[i]] for i in range(start, stop)], request)
        except XaiError as e:
            raise XaiError(f"{e} (on {fs.names[start]}…)") from None
        return run.probabilities.numpy(), run.targets, run.maps.numpy()

    def report(fraction: float, text: str) -> None:
        if progress is not None:
            left = (time.perf_counter() - t0) * (1 - fraction) / fraction if fraction else math.nan
            progress(fraction, f"{text} images" + (f" · about {left:.0f} s left" if fraction else ""))

    report(0.0, f"0/{n}")
    # engine.chunks halves the batch on out-of-memory and retries, so a large model on a small GPU still finishes
    for start, stop, (p, target, m) in chunks(n, compute, batch_size=batch, progress=report):
        for j, i in enumerate(range(start, stop)):
            maps[i] = cv2.resize(m[j], (SIDE, SIDE), interpolation=cv2.INTER_AREA)
            rows.append(_row(model, fs, i, mapped, p[j], target[j], m[j], pg, mass))
    if progress is not None:
        progress(1.0, "clustering with SpRAy")
    return FolderReport(method, spec.signed, rows, maps, _spray_per_class(fs, maps, seed), _per_class(fs, mapped, rows))


def _row(model: ModelSpec, fs: FolderSet, i: int, mapped: list[int | None], p: np.ndarray, target: int,
         m: np.ndarray, pg: Callable, mass: Callable) -> dict[str, Any]:
    folder_class = mapped[fs.labels[i]]
    top = int(p.argmax())
    row = {"image": fs.names[i], "folder": fs.classes[fs.labels[i]], "explained class": model.label(target),
           "predicted": model.label(top), "p(predicted)": float(p[top]),
           "correct": None if folder_class is None else bool(top == folder_class),
           "pointing game": math.nan, "relevance mass": math.nan}
    if fs.regions[i] is not None:
        try:
            region = mask_region(fs.regions[i].astype(np.uint8) * 255, m.shape)
            tolerance = round(15 * m.shape[0] / 224)  # the paper's 15 px at 224 px, scaled to this model's input
            row["pointing game"], row["relevance mass"] = pg(m, region, tolerance=tolerance), mass(m, region)
        except XaiError:  # the object vanished at the model's input size
            pass
    return row


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
