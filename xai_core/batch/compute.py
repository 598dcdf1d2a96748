"""The work of one chunk of items, shared by the local runner and every Ray actor (so both give the same table).

Per chunk: decode the images, one batched :meth:`Workbench.explain_tensor` per explainer and seed (each item with
its own class), then per image one :func:`xai_core.metrics.evaluate` call that scores all maps with the same class
and seed in one batched pass. The result is a :class:`ChunkResult`: table rows, maps (float16 at the model's input
size), thumbnails. ``to_record``/``from_record`` carry it through Ray as plain bytes and JSON (no pickles).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from ..errors import XaiError
from ..metrics.evaluate import box_region, evaluate
from ..workbench import Workbench
from .config import BatchConfig
from .inputs import Item, load

BOX = ("box_x0", "box_y0", "box_x1", "box_y1")


@dataclass
class ChunkResult:
    """Rows (one per item × explainer × seed, in that order), ``maps[i]`` for ``rows[i]`` (None for a failed item)
    and one thumbnail per item (``thumbs[key]``, RGB uint8)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    maps: list[np.ndarray | None] = field(default_factory=list)
    thumbs: dict[str, np.ndarray] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return {"rows": json.dumps(self.rows), "maps": _npz({str(i): m for i, m in enumerate(self.maps) if m is not None}),
                "thumbs": _npz({str(i): t for i, t in enumerate(self.thumbs.values())}),
                "thumb_keys": json.dumps(list(self.thumbs))}

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> ChunkResult:
        rows = json.loads(rec["rows"])
        with np.load(io.BytesIO(rec["maps"])) as z:
            maps = [z[str(i)] if str(i) in z.files else None for i in range(len(rows))]
        with np.load(io.BytesIO(rec["thumbs"])) as z:
            thumbs = {k: z[str(i)] for i, k in enumerate(json.loads(rec["thumb_keys"]))}
        return cls(rows, maps, thumbs)


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def thumbnail(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = min(1.0, side / max(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return image if s == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _entropy(p: np.ndarray) -> float:
    q = p[p > 0]
    return float(-(q * np.log(q)).sum())


def explain_chunk(wb: Workbench, items: list[Item], config: BatchConfig) -> ChunkResult:
    """Explain and score ``items`` (see the module docstring); an item that fails gets rows with ``error`` set."""
    model = wb.model
    out = ChunkResult()
    loaded, failed = [], {}
    for it in items:
        try:
            image, box = load(it)
            loaded.append((it, image, box))
            out.thumbs[it.key] = thumbnail(image, config.thumb_side)
        except XaiError as e:
            failed[it.key] = str(e)
    results: dict[str, dict[int, tuple[dict[str, Any], np.ndarray]]] = {it.key: {} for it, _, _ in loaded}
    if loaded:
        with wb.session():
            x = torch.cat([model.preprocess(img) for _, img, _ in loaded])
            fixed = config.fixed_target()
            label_mode = config.target == "label"
            targets = [fixed if fixed is not None else (it.label if label_mode else None) for it, _, _ in loaded]
            for r_i, req in enumerate(config.requests):
                try:
                    run = wb.explain_tensor(x, targets, req)
                except XaiError as e:
                    for it, _, _ in loaded:
                        failed.setdefault(it.key, str(e))
                    continue
                probs = run.probabilities.numpy()
                for i, (it, _, _) in enumerate(loaded):
                    row = _row(it, model, req, run.targets[i], probs[i])
                    row["seconds"] = run.seconds / len(loaded)
                    results[it.key][r_i] = (row, run.maps[i].numpy())
            for it, image, box in loaded:
                if it.key not in failed and config.metrics:
                    _score(wb, it, image, box, results[it.key], config)
    for it in items:
        for r_i, req in enumerate(config.requests):
            got = results.get(it.key, {}).get(r_i)
            if got is None or it.key in failed:
                out.rows.append({**_row(it, model, req, None, None), "error": failed.get(it.key, "not run")})
                out.maps.append(None)
            else:
                out.rows.append(got[0])
                out.maps.append(got[1].astype(np.float16))
    return out


def _score(wb: Workbench, it: Item, image: np.ndarray, box: Any, got: dict[int, tuple[dict, np.ndarray]],
           config: BatchConfig) -> None:
    """All metrics of an item's maps: one evaluate call per (class, seed)."""
    h, w = image.shape[:2]
    region = box_region((h, w), box) if box is not None else None
    params = {m: dict(p) for m, p in config.metric_params}
    groups: dict[tuple[int, int], list[int]] = {}
    for r_i, (row, _) in got.items():
        groups.setdefault((row["target"], row["seed"]), []).append(r_i)
    for (target, seed), idx in groups.items():
        maps = {str(r_i): cv2.resize(got[r_i][1], (w, h), interpolation=cv2.INTER_LINEAR) for r_i in idx}
        try:
            report = evaluate(wb, image, maps, target, metrics=list(config.metrics), params=params, region=region, seed=seed)
        except XaiError as e:
            for r_i in idx:
                got[r_i][0]["error"] = f"metrics: {e}"
            continue
        for r_i in idx:
            got[r_i][0].update({m: report.values[str(r_i)].get(m, math.nan) for m in config.metrics})
            got[r_i][0]["metric_seconds"] = report.seconds / len(idx)


def _row(it: Item, model: Any, req: Any, target: int | None, probs: np.ndarray | None) -> dict[str, Any]:
    """The row's facts (box in the input's own pixels, as given); metrics and timings are filled in later."""
    box = it.box
    pred = int(probs.argmax()) if probs is not None else None
    row: dict[str, Any] = {
        "item": it.key, "path": it.path, "label": it.label,
        "label_name": model.label(it.label) if it.label is not None else None,
        "explainer": req.method, "params": json.dumps(req.kwargs, sort_keys=True), "seed": req.seed,
        "target": target, "target_name": model.label(target) if target is not None else None,
        "target_probability": float(probs[target]) if probs is not None else math.nan,
        "prediction": pred, "prediction_name": model.label(pred) if pred is not None else None,
        "probability": float(probs[pred]) if probs is not None else math.nan,
        "correct": (pred == it.label) if pred is not None and it.label is not None else None,
        "entropy": _entropy(probs) if probs is not None else math.nan,
        **{k: (float(v) if box is not None else math.nan) for k, v in zip(BOX, box or (0, 0, 0, 0), strict=True)},
        "seconds": math.nan, "metric_seconds": math.nan, "error": None,
    }
    return row
