"""THE loop over many images, one chunk at a time: the CLI's local runner and every Ray actor (files), and the pages
through the in-memory source (:mod:`.memory`: Evaluate's set tab, the lab's own data) all run :func:`explain_loaded`,
so a fix or a speed-up lands in all of them and they give the same numbers.

Per chunk: (decode the files,) one batched :meth:`Workbench.explain_tensor` per explainer and seed (each item with
its own class; halved and retried on out-of-memory), then per image one :func:`xai_core.metrics.evaluate` call that
scores all maps with the same class and seed in one batched pass. The result is a :class:`ChunkResult`: table rows,
maps (float32 at the model's input size; float16 on disk and through Ray), thumbnails. ``to_record``/``from_record``
carry it through Ray as plain bytes and JSON (no pickles).
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

from ..engine import chunks
from ..errors import Cancelled, XaiError
from ..metrics.evaluate import evaluate
from ..metrics.reference_maps import reference_maps
from ..metrics.registry import get_metric
from ..request import ExplainRequest
from ..types import Progress
from ..workbench import Workbench
from .config import BatchConfig
from .inputs import Item, read
from .work import Decoded, Work

BOX = ("box_x0", "box_y0", "box_x1", "box_y1")


@dataclass
class ChunkResult:
    """Rows (one per item × explainer × seed, in that order, then the item's reference maps if any), ``maps[i]`` for
    ``rows[i]`` (None for a failed item or a reference map), ``uncertainty[i]`` for the rows whose explainer reports
    a per-pixel uncertainty (a refining explainer, :mod:`xai_core.anytime`) and one thumbnail per file item
    (``thumbs[key]``)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    maps: list[np.ndarray | None] = field(default_factory=list)
    thumbs: dict[str, np.ndarray] = field(default_factory=dict)
    uncertainty: dict[int, np.ndarray] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        arrays = {str(i): m.astype(np.float16) for i, m in enumerate(self.maps) if m is not None}
        arrays.update({f"u{i}": u.astype(np.float16) for i, u in self.uncertainty.items()})
        return {"rows": json.dumps(self.rows), "maps": _npz(arrays),
                "thumbs": _npz({str(i): t for i, t in enumerate(self.thumbs.values())}),
                "thumb_keys": json.dumps(list(self.thumbs))}

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> ChunkResult:
        rows = json.loads(rec["rows"])
        with np.load(io.BytesIO(rec["maps"])) as z:
            maps = [z[str(i)] if str(i) in z.files else None for i in range(len(rows))]
            unc = {i: z[f"u{i}"] for i in range(len(rows)) if f"u{i}" in z.files}
        with np.load(io.BytesIO(rec["thumbs"])) as z:
            thumbs = {k: z[str(i)] for i, k in enumerate(json.loads(rec["thumb_keys"]))}
        return cls(rows, maps, thumbs, unc)


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    """``arrays`` (keyed by item numbers, ``str(i)``) in one ``.npz``."""
    buf = io.BytesIO()
    # numpy's stub types **kwds as if a key could be its allow_pickle flag; the keys here are digits, never that.
    np.savez(buf, **arrays)  # type: ignore[arg-type]
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
    """Decode ``items`` (files) and run :func:`explain_loaded` on them; an item that cannot be read gets rows with
    ``error`` set, in its place."""
    loaded, failed, thumbs = [], {}, {}
    for it in items:
        try:
            loaded.append(read(it))
            thumbs[it.key] = thumbnail(loaded[-1].image, config.thumb_side)
        except XaiError as e:
            failed[it.key] = str(e)
    done = explain_loaded(wb, loaded, config.work)
    rows_of: dict[str, list[int]] = {}
    for i, row in enumerate(done.rows):
        rows_of.setdefault(row["item"], []).append(i)
    out = ChunkResult(thumbs=thumbs)
    for it in items:
        if it.key in failed:
            out.rows += [{**_row(it, wb.model, req, None, None), "error": failed[it.key]} for req in config.requests]
            out.maps += [None] * len(config.requests)
        else:
            for i in rows_of[it.key]:
                if i in done.uncertainty:
                    out.uncertainty[len(out.maps)] = done.uncertainty[i]
                out.rows.append(done.rows[i])
                out.maps.append(done.maps[i])
    return out


def explain_loaded(wb: Workbench, items: list[Decoded], work: Work, *, progress: Progress | None = None) -> ChunkResult:
    """THE loop over many images (see the module docstring): rows for every item × request (and reference map), in
    that order, with ``maps[i]`` (float32, model input size) for ``rows[i]`` (None where it failed or for a
    reference map). An explainer that fails marks every row of the chunk's items; a metric that fails marks its rows.
    ``progress(fraction of the chunk, text)`` is called between explainers and images: raising
    :class:`~xai_core.errors.Cancelled` there stops the run."""
    model = wb.model
    failed: dict[str, str] = {}
    got: dict[str, dict[int, tuple[dict[str, Any], np.ndarray]]] = {it.key: {} for it in items}
    unc: dict[tuple[str, int], np.ndarray] = {}
    refs: dict[str, list[dict[str, Any]]] = {}
    steps = len(work.requests) + len(items)
    if items:
        with wb.session():
            x = torch.cat([model.preprocess(it.image) for it in items])
            targets = [work.target_of(it.label) for it in items]
            for r_i, req in enumerate(work.requests):
                _tick(progress, r_i / steps, f"explaining with {req.spec.title}")
                try:
                    maps, found, probs, seconds, spread = _explain(wb, x, targets, req)
                except Cancelled:
                    raise
                except XaiError as e:
                    for it in items:
                        failed.setdefault(it.key, str(e))
                    continue
                for i, it in enumerate(items):
                    got[it.key][r_i] = ({**_row(it, model, req, found[i], probs[i]), "seconds": seconds / len(items)},
                                        maps[i])
                    if spread is not None:
                        unc[it.key, r_i] = spread[i]
            for j, it in enumerate(items):
                _tick(progress, (len(work.requests) + j) / steps, f"scoring {it.key}")
                if it.key not in failed and work.metrics:
                    refs[it.key] = _score(wb, it, got[it.key], work)
    out = ChunkResult()
    for it in items:
        for r_i, req in enumerate(work.requests):
            row_map = got[it.key].get(r_i)
            if row_map is None or it.key in failed:
                out.rows.append({**_row(it, model, req, None, None), "error": failed.get(it.key, "not run")})
                out.maps.append(None)
            else:
                if (it.key, r_i) in unc:
                    out.uncertainty[len(out.maps)] = unc[it.key, r_i]
                out.rows.append(row_map[0])
                out.maps.append(row_map[1])
        out.rows += refs.get(it.key, [])
        out.maps += [None] * len(refs.get(it.key, []))
    _tick(progress, 1.0, f"{len(items)} images")
    return out


def _tick(progress: Progress | None, fraction: float, text: str) -> None:
    if progress is not None:
        progress(fraction, text)


def _explain(wb: Workbench, x: torch.Tensor, targets: list[int | None], req: ExplainRequest) -> tuple:
    """One request over the chunk: maps, classes, probabilities, seconds and the maps' uncertainty (None unless the
    explainer reports one); on out-of-memory the engine halves the batch and retries (a large model on a small GPU
    still finishes)."""
    parts = [run for _, _, run in chunks(len(x), lambda a, b: wb.explain_tensor(x[a:b], targets[a:b], req),
                                         batch_size=len(x))]
    spread = [p.uncertainty for p in parts]
    return (torch.cat([p.maps for p in parts]).numpy(), [t for p in parts for t in p.targets],
            torch.cat([p.probabilities for p in parts]).numpy(), sum(p.seconds for p in parts),
            torch.cat([u for u in spread if u is not None]).numpy() if all(u is not None for u in spread) else None)


def _score(wb: Workbench, it: Decoded, got: dict[int, tuple[dict, np.ndarray]], work: Work) -> list[dict[str, Any]]:
    """All metrics of an item's maps: one :func:`evaluate` per (class, seed), the reference maps beside the first;
    returns the reference maps' rows."""
    h, w = it.image.shape[:2]
    try:
        region = it.object_region()
    except XaiError as e:
        region = None
        for row, _ in got.values():
            row["error"] = f"box: {e}"
    curves = any(get_metric(m).kind != "localisation" for m in work.metrics)
    params = work.params()
    groups: dict[tuple[int, int], list[int]] = {}
    for r_i, (row, _) in got.items():
        groups.setdefault((row["target"], row["seed"]), []).append(r_i)
    out: list[dict[str, Any]] = []
    for g, ((target, seed), idx) in enumerate(groups.items()):
        maps = {str(r_i): cv2.resize(got[r_i][1], (w, h), interpolation=cv2.INTER_LINEAR) for r_i in idx}
        extra = reference_maps(it.image, seed) if work.references and g == 0 else {}
        values: dict[str, dict[str, float]] = {}
        seconds = math.nan
        if curves or region is not None:  # localisation alone without a region: nothing to score, no forward
            try:
                report = evaluate(wb, it.image, {**maps, **extra}, target, metrics=list(work.metrics), params=params,
                                  region=region, seed=seed, requests={str(r_i): work.requests[r_i] for r_i in idx})
                values, seconds = report.values, report.seconds / (len(maps) + len(extra))
            except Cancelled:
                raise
            except XaiError as e:
                for r_i in idx:
                    got[r_i][0]["error"] = f"metrics: {e}"
        for r_i in idx:
            got[r_i][0].update({m: values.get(str(r_i), {}).get(m, math.nan) for m in work.metrics},
                               metric_seconds=seconds)
        base = got[idx[0]][0]
        out += [{**base, "explainer": name, "params": "{}", "seconds": math.nan, "metric_seconds": seconds,
                 **{m: values.get(name, {}).get(m, math.nan) for m in work.metrics}} for name in extra]
    return out


def _row(it: Item | Decoded, model: Any, req: Any, target: int | None, probs: np.ndarray | None) -> dict[str, Any]:
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
