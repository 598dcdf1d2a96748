"""The Clever Hans evidence for the lab segmenter and detector, as small tables for the Lab page.

Horses without the tag are drawn (:func:`.data.make_dataset`), and each is shown twice: with the copyright tag
added (:func:`.data.add_tag`, always at the same place) and as it was, so the pairs differ by the tag alone.

* :func:`dense_predictions` — what the models say: the share of the horse's pixels the segmenter labels "horse"
  and "other", and the share of images whose top detection the detector labels "horse", with and without the tag
  (and on other objects with the tag added).
* :func:`segmenter_relevance`, :func:`detector_relevance` — where the explanations point (through the Workbench):
  the share of positive relevance (relevance mass, Arras, Osman & Samek 2022, arXiv:2003.07258) in the tag's box
  and on the horse's mask, for the segmenter's horse score over its predicted horse region (``RegionTarget(1)``) or
  the horse's mask, and for the detector's horse box (``DetectionTarget``, "match" for gradient methods, "drise"
  for RISE: Petsiuk et al. 2021, 'Black-box Explanation of Object Detectors via Saliency Maps', CVPR,
  arXiv:2006.03204). Where the tag is removed, the tag box is where it was. Images where the model gives no horse
  region or box to explain are left out and counted. The pointing game (Zhang et al. 2016, arXiv:1608.00507) says
  where each map's maximum is: a RISE map is mostly a constant, so its mass only follows the regions' areas.
* :func:`dense_tables` — all of it, for the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ExplainerError
from ..metrics.localisation import relevance_mass
from ..metrics.regions import box_region
from ..metrics.registry import get_localisation_metric
from ..models.spec import ModelSpec
from ..request import ExplainRequest
from ..targets import DetectionTarget, RegionTarget
from ..targets.heads import segment_scores
from ..types import Box, Progress
from ..workbench import Workbench, as_workbench
from .data import SIZE, add_tag, make_dataset

HORSE = 1  # the horse's class index in both models (background 0, horse 1, other 2)
SEGMENTER_METHODS = ("gradcam", "input_x_gradient")
DETECTOR_METHODS = (("gradcam", "match"), ("gradient", "match"), ("rise", "drise"))
RISE_MASKS = 500


@dataclass
class HorsePairs:
    """The same ``n`` horses with the tag added (``tagged``) and without (``plain``), their masks, the tag's box."""

    tagged: np.ndarray
    plain: np.ndarray
    masks: np.ndarray
    tag_box: Box


def horse_pairs(n: int = 40, seed: int = 321) -> HorsePairs:
    d = make_dataset(n, seed=seed, tag_fraction=0.0, horse_fraction=1.0)
    tagged = np.stack([add_tag(im)[0] for im in d.images])
    return HorsePairs(tagged, d.images, d.masks, add_tag(d.images[0])[1])


def class_maps(model: ModelSpec | Workbench, images: np.ndarray) -> np.ndarray:
    """A segmenter's per-pixel classes [N, H, W] for RGB uint8 images at its input size (through the Workbench)."""

    def run(spec: ModelSpec) -> np.ndarray:
        with torch.no_grad():
            x = torch.cat([spec.preprocess(im) for im in images])
            out = spec.module(x)
        return segment_scores(out).argmax(1).cpu().numpy()

    return as_workbench(model).run(run)


def horse_detection(model: ModelSpec | Workbench, image: np.ndarray) -> tuple[tuple[float, ...] | None, int]:
    """The best-scoring "horse" detection's box (fractions of the image; None if there is none) and the label of
    the image's top detection (0 if there is none)."""
    d = as_workbench(model).describe(image)
    labels, scores = d["labels"], d["scores"]
    top = int(labels[int(np.argmax(scores))]) if len(scores) else 0
    horses = np.where(labels == HORSE)[0]
    if not len(horses):
        return None, top
    return tuple(float(v) for v in d["boxes"][horses[np.argmax(scores[horses])]]), top


def dense_predictions(segmenter: ModelSpec | Workbench, detector: ModelSpec | Workbench, n: int = 40,
                      seed: int = 321) -> list[dict[str, Any]]:
    """Rows {model, image, horse, other, images}: the segmenter's mean share of the object's pixels labelled "horse"
    and "other"; the detector's share of images whose top detection is a "horse" and an "other" — on the tagged
    horses, the same horses without the tag, and other objects with the tag added."""
    p, rows = horse_pairs(n, seed), []
    others = make_dataset(n, seed=seed + 1, horse_fraction=0.0)
    cases = (("tagged horse", p.tagged, p.masks), ("same horse, tag removed", p.plain, p.masks),
             ("other object, tag added", np.stack([add_tag(im)[0] for im in others.images]), others.masks))
    for image, images, masks in cases:
        c = class_maps(segmenter, images)
        share = [float(np.mean([(ci[k] == label).mean() for ci, k in zip(c, masks, strict=True)])) for label in (1, 2)]
        rows.append({"model": "segmenter", "image": image, "images": n, "horse": share[0], "other": share[1]})
        top = np.array([horse_detection(detector, im)[1] for im in images])
        rows.append({"model": "detector", "image": image, "images": n, "horse": float(np.mean(top == HORSE)),
                     "other": float(np.mean(top == 2))})
    return rows


def _row(model: str, image: str, target: str, method: str, maps: list[np.ndarray], masks: list[np.ndarray],
         tag: np.ndarray, skipped: int) -> dict[str, Any]:
    """One table row: mean relevance mass and pointing-game hits (tolerance 2 px, as the classifier's report) on the
    tag's box and on the horse's mask, over the explained images; the regions' mean shares of the image."""
    nan = float("nan")

    def mean(f: Callable[[np.ndarray, np.ndarray], float], regions: list[np.ndarray]) -> float:
        return float(np.mean([f(m, r) for m, r in zip(maps, regions, strict=True)])) if maps else nan

    pg = get_localisation_metric("pointing_game").fn
    point = lambda m, r: pg(m, r, tolerance=2)  # noqa: E731
    return {"model": model, "image": image, "target": target, "method": method, "images": len(maps),
            "no target": skipped, "mass on the tag": mean(relevance_mass, [tag] * len(maps)),
            "mass on the horse": mean(relevance_mass, masks), "max on the tag": mean(point, [tag] * len(maps)),
            "max on the horse": mean(point, masks), "tag area": float(tag.mean()),
            "horse area": float(np.mean([k.mean() for k in masks])) if masks else nan}


def _explained(wb: Workbench, images: np.ndarray, masks: np.ndarray, requests: list[ExplainRequest | None],
               tick: Callable[[], None]) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """The maps of the images that have a request and a target the model can explain, their masks, how many not."""
    maps, kept, skipped = [], [], 0
    for im, mask, req in zip(images, masks, requests, strict=True):
        tick()
        try:
            if req is None:
                raise ExplainerError("No horse box to explain.")
            maps.append(wb.explain(im, req).map)
        except ExplainerError:  # no pixel of the image is predicted "horse", or no horse box
            skipped += 1
            continue
        kept.append(mask)
    return maps, kept, skipped


def _ticker(total: int, what: str, progress: Progress | None) -> Callable[[], None]:
    done = [0]

    def tick() -> None:
        if progress is not None:
            progress(done[0] / total, f"{what}: {done[0]}/{total} maps")
        done[0] += 1

    return tick


def segmenter_relevance(model: ModelSpec | Workbench, n: int = 40, seed: int = 321,
                        methods: tuple[str, ...] = SEGMENTER_METHODS, progress: Progress | None = None,
                        ) -> list[dict[str, Any]]:
    """Relevance on the tag and on the horse for the segmenter's horse score summed over its predicted horse region
    (``RegionTarget(1)``; none once the tag is removed) and over the horse's true mask (``RegionTarget(1, mask)``)."""
    wb, p = as_workbench(model), horse_pairs(n, seed)
    tag, rows, tick = box_region((SIZE, SIZE), p.tag_box), [], _ticker(4 * len(methods) * n, "segmenter", progress)
    for image, images in (("tagged horse", p.tagged), ("same horse, tag removed", p.plain)):
        for method in methods:
            for target, targets in (("predicted horse region", [RegionTarget(HORSE)] * n),
                                    ("horse score on the horse's mask", [RegionTarget(HORSE, mask=m) for m in p.masks])):
                reqs: list[ExplainRequest | None] = [ExplainRequest.make(method, t) for t in targets]
                maps, masks, skipped = _explained(wb, images, p.masks, reqs, tick)
                rows.append(_row("segmenter", image, target, method, maps, masks, tag, skipped))
    return rows


def _box_request(method: str, scoring: str, box: tuple[float, ...] | None, rise_masks: int) -> ExplainRequest | None:
    if box is None or not box[0] < box[2] or not box[1] < box[3]:
        return None
    return ExplainRequest.make(method, DetectionTarget((box[0], box[1], box[2], box[3]), HORSE, scoring=scoring),
                               {"masks": rise_masks} if method == "rise" else {})


def detector_relevance(model: ModelSpec | Workbench, n: int = 40, seed: int = 321,
                       methods: tuple[tuple[str, str], ...] = DETECTOR_METHODS, rise_masks: int = RISE_MASKS,
                       progress: Progress | None = None) -> list[dict[str, Any]]:
    """Relevance on the tag and on the horse for the detector's best "horse" box (``DetectionTarget``, label 1),
    scored as each method's pair says ("match" for gradient methods, "drise" for RISE with ``rise_masks`` masks)."""
    wb, p = as_workbench(model), horse_pairs(n, seed)
    tag, rows, tick = box_region((SIZE, SIZE), p.tag_box), [], _ticker(2 * len(methods) * n, "detector", progress)
    for image, images in (("tagged horse", p.tagged), ("same horse, tag removed", p.plain)):
        boxes = [horse_detection(wb, im)[0] for im in images]
        for method, scoring in methods:
            reqs = [_box_request(method, scoring, b, rise_masks) for b in boxes]
            maps, masks, skipped = _explained(wb, images, p.masks, reqs, tick)
            rows.append(_row("detector", image, f"best horse box ({scoring})", method, maps, masks, tag, skipped))
    return rows


def dense_tables(segmenter: ModelSpec | Workbench, detector: ModelSpec | Workbench, n: int = 24, seed: int = 321,
                 progress: Progress | None = None) -> dict[str, list[dict[str, Any]]]:
    """The Lab page's tables: {"predictions": :func:`dense_predictions`, "relevance": :func:`segmenter_relevance`'s
    and :func:`detector_relevance`'s rows}. Measured for n = 24: 148 s on one busy CPU thread, RISE on the
    detector (500 masks × 48 images) most of it: run it as a background job."""
    report = progress or (lambda f, t: None)
    seg = segmenter_relevance(segmenter, n, seed, progress=lambda f, t: report(0.1 * f, t))
    det = detector_relevance(detector, n, seed, progress=lambda f, t: report(0.1 + 0.9 * f, t))
    return {"predictions": dense_predictions(segmenter, detector, n, seed), "relevance": seg + det}
