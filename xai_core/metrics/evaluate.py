"""Run the chosen metrics for several maps of one image, map by map: each map's perturbation curves in one batched
pass, its probes in another, the re-runs of its explainer, then the model-free metrics (localisation, map). A report
of the maps scored so far is yielded after each map (:func:`evaluate_stream`: the Evaluate page draws each map's
curves as they come); :func:`evaluate` is its last report."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import cv2
import numpy as np
import torch

from ..errors import Cancelled, ExplainerError
from ..images import load_sample, sample_names
from ..models.spec import ModelSpec
from ..request import ExplainRequest
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .regions import box_region, box_share, mask_region
from .registry import (
    CurveMetricSpec,
    LocalisationMetricSpec,
    MapMetricSpec,
    MetricSpec,
    ProbeMetricSpec,
    RerunMetricSpec,
    get_metric,
    list_metrics,
)
from .results import Curve, Report, localise, rows_csv
from .scoring import classified_pool, make_rerun, run_plans, run_probes
from .values import Plan

__all__ = ["Curve", "Report", "box_region", "box_share", "evaluate", "evaluate_stream", "localise", "mask_region",
           "rows_csv"]

Pool = Callable[[], tuple[torch.Tensor, torch.Tensor]]


def evaluate(model: ModelSpec | Workbench, image: np.ndarray, maps: dict[str, np.ndarray], target: int | None = None, *,
             metrics: list[str] | None = None, params: dict[str, dict] | None = None, region: np.ndarray | None = None,
             seed: int = 0, progress: Progress | None = None, requests: dict[str, ExplainRequest] | None = None,
             pool: Sequence[np.ndarray] | None = None) -> Report:
    """Score every map in ``maps`` (name → float map at the image's resolution) on ``metrics`` (default: the metrics
    whose spec says ``default``).

    Per map, its curve metrics run as one batched call of the engine, its probe metrics as another (inference mode, OOM
    back-off, progress, stoppable; the unperturbed input runs once, with the first map's probes); rerun metrics explain
    new inputs with ``requests[name]``, the request that made map ``name`` (a map without one, e.g. a reference map,
    gets NaN and a note), drawing other images from ``pool`` (RGB uint8; default: the bundled samples); localisation
    metrics need ``region`` (a boolean mask, e.g. from :func:`box_region`) and are skipped without one; map metrics need
    nothing. The model work runs inside the Workbench's session (its lock and run options). The last report of
    :func:`evaluate_stream`.
    """
    return deque(evaluate_stream(model, image, maps, target, metrics=metrics, params=params, region=region, seed=seed,
                                 progress=progress, requests=requests, pool=pool), maxlen=1)[0]  # it always yields


def evaluate_stream(model: ModelSpec | Workbench, image: np.ndarray,
                    maps: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]], target: int | None = None, *,
                    metrics: list[str] | None = None, params: dict[str, dict] | None = None,
                    region: np.ndarray | None = None, seed: int = 0, progress: Progress | None = None,
                    requests: dict[str, ExplainRequest] | None = None, pool: Sequence[np.ndarray] | None = None,
                    count: int | None = None) -> Iterator[Report]:
    """:func:`evaluate`, yielding the report of the maps scored so far after each map's model-pass metrics and again
    after its rerun metrics (if any; the partial report's missing values are NaN). The last report is
    :func:`evaluate`'s; a report's maps keep their numbers in every later report (each map has its own batched calls).

    ``maps`` may also be an iterable of ``(name, map)`` pairs made while the stream runs (the Evaluate page explains
    each method just before its map is scored); ``count`` is how many it gives (for progress; default ``len(maps)``).
    The Workbench's session is held per map and released before each yield, so a consumer that stops reading leaves
    no lock held; close the generator (``contextlib.closing``) to end it early."""
    ids = metrics or [m.id for m in list_metrics() if m.default]
    specs = [get_metric(i) for i in ids]
    params = params or {}
    for s in specs:  # a mistyped parameter is an error before any model call, not after the curves
        s.resolve(params.get(s.id))
    h, w = image.shape[:2]
    if isinstance(maps, Mapping):
        for name, m in maps.items():  # every map's size checked before the first model call
            _check_map(name, m, (h, w))
        count, maps = len(maps) if count is None else count, list(maps.items())
    wb = as_workbench(model)
    of = {k: [s for s in specs if s.kind == k] for k in ("curve", "probe", "rerun", "map")}
    steps = [k for k in ("curve", "probe", "rerun") if of[k]]
    ran = [s.id for s in specs if s.kind != "localisation"]
    loc = [s.id for s in specs if isinstance(s, LocalisationMetricSpec)]
    full: dict[str, np.ndarray] = {}
    small: dict[str, torch.Tensor] = {}
    values: dict[str, dict[str, float]] = {}
    curves: dict[tuple[str, str], Curve] = {}
    plans: dict[tuple[str, str], Plan] = {}
    notes: list[str] = []
    missing: dict[str, list[str]] = {}
    probed = 0
    seconds = 0.0
    prepared: tuple[torch.Tensor, int] | None = None
    base: tuple[float, float] | None = None  # the unperturbed input's (logit, probability), for the probes
    others: Pool | None = None

    def report() -> Report:
        spec = wb.model
        n_passes = sum(len(p.counts) for p in plans.values()) + probed
        out = Report(tgt, spec.label(tgt), list(full), list(ran), {n: dict(v) for n, v in values.items()}, dict(curves),
                     seconds, n_passes, dict(plans), spec, [*notes, *_missing_notes(missing)])
        return out.with_region(full, region, loc, params) if region is not None and loc else out

    for i, (name, m) in enumerate(maps):
        _check_map(name, m, (h, w))
        part = _share(progress, i, count)
        t0 = time.perf_counter()
        with wb.session() as spec:
            if prepared is None:
                x0, tgt0, _ = wb.prepare(image, target)
                prepared = (x0, tgt0)
            x, tgt = prepared
            ih, iw = spec.input_size
            full[name] = m
            small[name] = torch.from_numpy(cv2.resize(np.nan_to_num(m).astype(np.float32), (iw, ih),
                                                      interpolation=cv2.INTER_AREA)).to(x.device)
            values[name] = {}
            mine = {(name, c.id): c.plan(spec, x, small[name], seed=seed, params=params.get(c.id))
                    for c in of["curve"] if isinstance(c, CurveMetricSpec)}
            for (_, mid), p, ys in zip(mine, mine.values(), run_plans(spec, list(mine.values()), tgt,
                                                                       _part(part, steps, "curve")), strict=True):
                curves[(name, mid)] = Curve(p.xs, ys, p.summarise(p.xs, ys), p.x_label)
                values[name][mid] = curves[(name, mid)].value
            plans.update(mine)
            probes = {p.id: p.probe(spec, x, small[name], seed=seed, params=params.get(p.id))
                      for p in of["probe"] if isinstance(p, ProbeMetricSpec)}
            outs, n = run_probes(spec, x, [(name, p) for p in probes.values()], tgt, _part(part, steps, "probe"),
                                 base)  # the unperturbed input: run with the first map's probes, once
            probed += n
            base = (outs[0].base_logit, outs[0].base_probability) if outs else base
            for (mid, pr), o in zip(probes.items(), outs, strict=True):
                values[name][mid] = float(pr.summarise(o))
                if pr.xs is not None:
                    curves[(name, mid)] = Curve(pr.xs, o.probability, values[name][mid], pr.x_label)
                notes.extend(_notes(name, mid, pr.notes))
        for s in of["map"]:
            if isinstance(s, MapMetricSpec):
                values[name][s.id] = s.score(small[name].cpu().numpy(), params.get(s.id))
        seconds += time.perf_counter() - t0
        yield report()  # the curves before the (slow) re-runs of the explainer, if any
        if not of["rerun"]:
            continue
        t0 = time.perf_counter()
        if others is None:
            others = (classified_pool(wb, lambda: [load_sample(n) for n in sample_names()], keep="bundled samples")
                      if pool is None else classified_pool(wb, lambda: list(pool)))
        with wb.session():
            _reruns(wb, x, tgt, name, small[name], of["rerun"], params, seed, requests or {}, others, values, notes,
                    missing, _part(part, steps, "rerun"))
        seconds += time.perf_counter() - t0
        yield report()
    if prepared is None:  # no maps: an empty report (the class still settled)
        _, tgt, _ = wb.prepare(image, target)
        yield report()


def _check_map(name: str, m: np.ndarray, shape: tuple[int, int]) -> None:
    if m.shape != shape:
        raise ExplainerError(f"The map {name!r} is {m.shape[1]}×{m.shape[0]} but the image is {shape[1]}×{shape[0]}.")


def _reruns(wb: Workbench, x: torch.Tensor, tgt: int, name: str, small: torch.Tensor, specs: list[MetricSpec],
            params: dict[str, dict], seed: int, requests: dict[str, ExplainRequest], others: Pool,
            values: dict[str, dict[str, float]], notes: list[str], missing: dict[str, list[str]],
            progress: Progress | None) -> None:
    """The rerun metrics of map ``name`` if it has the request that made it (else NaN, and its name in ``missing``)."""
    todo = [s for s in specs if isinstance(s, RerunMetricSpec)]
    for i, s in enumerate(todo):
        if progress is not None:
            progress(i / len(todo), f"{s.short or s.title}: re-running the explainer of {name}")
        if name not in requests:
            values[name][s.id] = math.nan
            missing.setdefault(s.short or s.title, []).append(name)
            continue
        rerun = make_rerun(wb, x, tgt, requests[name], others)
        try:
            values[name][s.id] = s.score(wb.model, x, small, rerun, seed=seed, params=params.get(s.id))
        except Cancelled:
            raise
        except ExplainerError as e:
            values[name][s.id] = math.nan
            notes.append(f"{name}: {s.short or s.title} could not re-run the explainer ({e})")
        notes.extend(_notes(name, s.id, rerun.notes))


def _missing_notes(missing: dict[str, list[str]]) -> list[str]:
    return [f"{title} re-runs the explainer that made a map: not possible for {', '.join(names)} (no value)."
            for title, names in missing.items()]


def _notes(name: str, metric_id: str, notes: list[str]) -> list[str]:
    spec = get_metric(metric_id)
    return [f"{name}: {spec.short or spec.title}: {n}" for n in notes]


def _share(progress: Progress | None, i: int, count: int | None) -> Progress | None:
    """``progress`` for map ``i`` of ``count`` (unknown count: the map's own fraction)."""
    if progress is None:
        return None
    if not count:
        return progress
    return lambda f, text: progress(min(1.0, (i + f) / count), text)


def _part(progress: Progress | None, steps: list[str], step: str) -> Progress | None:
    """``progress`` for one of the evaluation's steps, mapped to its share of the whole."""
    if progress is None or step not in steps:
        return progress
    i, n = steps.index(step), len(steps)
    return lambda f, text: progress((i + f) / n, text)
