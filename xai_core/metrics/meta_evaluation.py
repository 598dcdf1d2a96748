"""Meta-evaluation of the metrics in the loop, after MetaQuantus (Hedström et al., "The Meta-Evaluation Problem in
Explainable AI: Identifying Reliable Estimators with MetaQuantus", TMLR 2023): for the current model, images and
explainers, is each metric resilient to noise (minor perturbations keep its scores and its ranking of the
explainers) and reactive to adversity (disruptive perturbations change its scores and make them worse)?

``meta_evaluate`` scores every explainer's map on every image with :func:`evaluate` (the public metric API, so every
registered metric is covered), then again under ``K`` draws of each of the four tests of :mod:`.meta_tests`, with the
explanations recomputed each time, and summarises each metric as in the paper (:mod:`.meta_stats`): IAC_NR, IAC_AR,
IEC_NR, IEC_AR per perturbation space and their mean, the MC score. A metric fails when it does not react at all, when
its ranking survives minor noise no better than chance, or when its MC is not above 0.5 (:func:`.meta_stats.verdict`).
The passing metrics' agreement is the mean Kendall τ between their rankings of the explainers over the images.

As in MetaQuantus, every image is explained and scored for one fixed target (default: the unperturbed model's top-1
class) in every draw, and the metric runs with the perturbed model or on the perturbed image. Unlike its code (which
explains the *unperturbed* input and scores the perturbed one in its input test), the maps of the input test are made
on the perturbed image, as the paper describes (Φ(x̂)); the maps of the model test with the perturbed model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..errors import ExplainerError
from ..models.spec import ModelSpec
from ..request import ExplainRequest
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .evaluate import evaluate
from .meta_stats import THRESHOLD, Consistency, consistency, kendall_agreement, nanmean, verdict
from .meta_tests import Levels, PerturbationTest, draw_seed, noisy_images, noisy_model, tests
from .reference_maps import CENTRE, EDGES, RANDOM, reference_maps
from .registry import get_metric

__all__ = ["Levels", "MetaReport", "Verdict", "meta_evaluate"]


@dataclass(frozen=True)
class Verdict:
    """One metric's meta-evaluation: the four criteria per space (``model``, ``input``), their means over the two
    spaces, MC, and whether it passed (``None``: it could not be judged) with the sentence that says why."""

    metric: str
    title: str
    model: Consistency
    input: Consistency
    passed: bool | None
    reason: str

    def mean(self, name: str) -> float:
        return nanmean([getattr(self.model, name), getattr(self.input, name)])

    @property
    def mc(self) -> float:
        return self.mean("mc")

    def row(self) -> dict[str, object]:
        return {"metric": self.title, **{k: self.mean(k) for k in ("iac_nr", "iac_ar", "iec_nr", "iec_ar")},
                "MC": self.mc, "passed": self.passed, "why": self.reason}


@dataclass(frozen=True, eq=False)
class MetaReport:
    """Verdicts per metric, the Kendall τ matrix of the passing metrics (``tau_metrics`` order), and the raw scores:
    ``scores`` [metric, explainer, image] unperturbed, ``perturbed[test]`` [K, metric, explainer, image] and
    ``counted[test]`` [K, image] (the images each draw counts, as MetaQuantus's ``indices``)."""

    metrics: tuple[str, ...]
    explainers: tuple[str, ...]
    targets: tuple[int, ...]
    verdicts: tuple[Verdict, ...]
    tau_metrics: tuple[str, ...]
    tau: np.ndarray
    scores: np.ndarray
    perturbed: dict[str, np.ndarray] = field(repr=False)
    counted: dict[str, np.ndarray] = field(repr=False)
    levels: Levels = Levels()
    seconds: float = 0.0

    def rows(self) -> list[dict[str, object]]:
        return [v.row() for v in self.verdicts]

    def verdict(self, metric: str) -> Verdict:
        for v in self.verdicts:
            if v.metric == metric:
                return v
        raise ExplainerError(f"The meta-evaluation did not include the metric {metric!r}.")


def _labels(explainers: Sequence[str | ExplainRequest], seed: int) -> list[tuple[str, ExplainRequest | None]]:
    """(label, request) per explainer; reference maps (metrics.RANDOM, CENTRE, EDGES) have no request."""
    out: list[tuple[str, ExplainRequest | None]] = []
    for e in explainers:
        if isinstance(e, str) and e in (RANDOM, CENTRE, EDGES):
            label, req = e, None
        else:
            req = e if isinstance(e, ExplainRequest) else ExplainRequest.make(e, None, None, seed)
            label = req.spec.title
        while label in [n for n, _ in out]:
            label += " ′"
        out.append((label, req))
    return out


@dataclass(frozen=True)
class _Setting:
    """What stays fixed over every draw: the maps to make, the metrics and their parameters, regions, targets, seed."""

    named: list[tuple[str, ExplainRequest | None]]
    metric_ids: list[str]
    params: dict[str, dict]
    regions: list[np.ndarray | None]
    y: list[int]
    seed: int

    def scores(self, wb: Workbench, images: list[np.ndarray], progress: Progress) -> tuple[np.ndarray, np.ndarray]:
        """Scores [metric, explainer, image] of maps made afresh by ``wb`` on ``images``; its predictions [image]."""
        with wb.session() as spec:
            x = torch.cat([spec.preprocess(im) for im in images])
        preds = wb.logits(x).argmax(1).cpu().numpy()
        refs = [reference_maps(im, self.seed) for im in images] if any(r is None for _, r in self.named) else []
        units = len(self.named) + len(images)
        maps: list[dict[str, np.ndarray]] = [{} for _ in images]
        for e, (label, req) in enumerate(self.named):
            progress(e / units, f"explaining with {label}")
            run = wb.explain_tensor(x, list(self.y), req).maps.numpy() if req is not None else None
            for i, im in enumerate(images):
                maps[i][label] = refs[i][label] if run is None else cv2.resize(
                    run[i], (im.shape[1], im.shape[0]), interpolation=cv2.INTER_LINEAR)
        out = np.full((len(self.metric_ids), len(self.named), len(images)), np.nan)
        requests = {label: req for label, req in self.named if req is not None}  # rerun metrics re-explain with them
        for i, im in enumerate(images):
            def part(f: float, text: str, done: int = len(self.named) + i) -> None:
                progress((done + f) / units, text)

            report = evaluate(wb, im, maps[i], self.y[i], metrics=self.metric_ids, params=self.params,
                              region=self.regions[i], seed=self.seed, progress=part, requests=requests, pool=images)
            for e, (label, _r) in enumerate(self.named):
                for m, mid in enumerate(self.metric_ids):
                    out[m, e, i] = report.values[label].get(mid, np.nan)
        return out, preds


def meta_evaluate(model: ModelSpec | Workbench, images: Sequence[np.ndarray], targets: Sequence[int | None] | None,
                  explainers: Sequence[str | ExplainRequest], metrics: Sequence[str], *, perturbations: int = 3,
                  seed: int = 0, params: dict[str, dict] | None = None,
                  regions: Sequence[np.ndarray | None] | None = None, levels: Levels = Levels(),
                  threshold: float = THRESHOLD, progress: Progress | None = None) -> MetaReport:
    """Meta-evaluate ``metrics`` for the model on ``images`` (RGB uint8) and ``explainers`` (ids, requests or
    reference-map names), each image explained for its target (None: the unperturbed model's top-1 class, as in
    MetaQuantus). ``regions`` (boolean masks at each image's size) feed the localisation metrics. Every forward runs
    through the Workbench (perturbed models are deep copies); ``progress`` may raise ``Cancelled`` between steps."""
    images = list(images)
    if len(images) < 2:
        raise ExplainerError("The meta-evaluation compares score distributions over images: give it 2 images or more.")
    if not metrics or len(explainers) < 2:
        raise ExplainerError("The meta-evaluation needs one metric or more and two explainers or more to rank.")
    if not 1 <= int(perturbations) <= 50:
        raise ExplainerError(f"Perturbations per test must be between 1 and 50; got {perturbations}.")
    regs: list[np.ndarray | None] = list(regions) if regions is not None else [None] * len(images)
    if len(regs) != len(images) or (targets is not None and len(targets) != len(images)):
        raise ExplainerError("Give one target and one region (or None) per image.")
    t0 = time.perf_counter()
    wb = as_workbench(model)
    suite = tests(levels)
    total = 1 + len(suite) * perturbations
    report = progress or (lambda f, t: None)

    def step(n: int, what: str) -> Progress:
        return lambda f, t: report((n + min(max(f, 0.0), 1.0)) / total, f"{what}: {t}")

    with wb.session() as spec:
        top1 = wb.logits(torch.cat([spec.preprocess(im) for im in images])).argmax(1).cpu().tolist()
    given = list(targets) if targets is not None else [None] * len(images)
    y = [int(top1[i]) if t is None else int(t) for i, t in enumerate(given)]
    run = _Setting(_labels(explainers, seed), [get_metric(m).id for m in metrics], params or {}, regs, y, seed)
    q, _ = run.scores(wb, images, step(0, "unperturbed"))
    perturbed: dict[str, np.ndarray] = {}
    counted: dict[str, np.ndarray] = {}
    for t, test in enumerate(suite):
        draws, keep = [], []
        for k in range(perturbations):
            s, part = draw_seed(seed, t, k), step(1 + t * perturbations + k, f"{test.name} {k + 1}/{perturbations}")
            if test.space == "model":
                q_hat, pred = run.scores(noisy_model(wb, test.level, s), images, part)
            else:
                q_hat, pred = run.scores(wb, noisy_images(images, test.level, s), part)
            draws.append(q_hat)
            keep.append(pred != np.array(y) if test.adversary else pred == np.array(y))
        perturbed[test.name], counted[test.name] = np.stack(draws), np.stack(keep)
    ids = run.metric_ids
    verdicts = tuple(_verdict(m, mid, q, perturbed, counted, suite, threshold) for m, mid in enumerate(ids))
    passing = [m for m, v in enumerate(verdicts) if v.passed]
    tau = kendall_agreement(q[passing], [get_metric(ids[m]).better for m in passing])
    report(1.0, "done")
    return MetaReport(tuple(ids), tuple(n for n, _ in run.named), tuple(y), verdicts, tuple(ids[m] for m in passing),
                      tau, q, perturbed, counted, levels, time.perf_counter() - t0)


def _verdict(m: int, mid: str, q: np.ndarray, perturbed: dict[str, np.ndarray], counted: dict[str, np.ndarray],
             suite: tuple[PerturbationTest, ...], threshold: float) -> Verdict:
    """One metric's verdict over the maps it scored (a rerun metric gives a reference map no value: it is left out)."""
    spec = get_metric(mid)
    rows = np.isfinite(q[m]).any(1)
    per_space = {}
    for space in ("model", "input"):
        res, adv = (next(t for t in suite if t.space == space and t.adversary == a) for a in (False, True))
        per_space[space] = consistency(q[m][rows], perturbed[res.name][:, m][:, rows], counted[res.name],
                                       perturbed[adv.name][:, m][:, rows], counted[adv.name], spec.better)
    passed, reason = verdict(spec.title, per_space["model"], per_space["input"], q[m][rows], threshold)
    return Verdict(mid, spec.title, per_space["model"], per_space["input"], passed, reason)
