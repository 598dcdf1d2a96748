"""The model passes of an evaluation, batched through the engine: every curve plan of every map in one
:func:`engine.scores` call, every probe of every map (and the unperturbed input once) in one loop of :func:`chunks`,
and the re-runs of the explainer that rerun metrics ask for, through the Workbench."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np
import torch

from .. import fastpath
from ..engine import autocast, batch_size_for, chunks, class_probabilities, logits_of, scores, select
from ..models.spec import ModelSpec
from ..request import ExplainRequest
from ..types import Progress
from ..workbench import Workbench
from .values import Outputs, Plan, Probe, Rerun

__all__ = ["classified_pool", "make_rerun", "run_plans", "run_probes"]


def run_plans(model: ModelSpec, plans: list[Plan], target: int, progress: Progress | None) -> list[np.ndarray]:
    """Class probabilities of every step of every plan, in one engine call."""
    if not plans:
        return []
    ranks = torch.stack([p.rank for p in plans])
    starts = torch.cat([p.start for p in plans])
    fills = torch.cat([p.fill for p in plans])
    which = torch.cat([torch.full((len(p.counts),), i) for i, p in enumerate(plans)]).to(ranks.device)
    counts = torch.tensor([c for p in plans for c in p.counts], device=ranks.device)

    def make(a: int, b: int) -> torch.Tensor:
        pi = which[a:b]
        hidden = ranks[pi] < counts[a:b, None, None]
        return torch.where(hidden[:, None], fills[pi], starts[pi]).contiguous(memory_format=torch.channels_last)

    targets = torch.full((len(counts),), target, device=ranks.device)
    out = scores(model.module, len(counts), make, targets, probabilities=True, progress=progress,
                 desc="perturbed inputs").cpu().numpy()
    split = np.cumsum([len(p.counts) for p in plans])[:-1]
    return list(np.split(out, split))


def run_probes(model: ModelSpec, x: torch.Tensor, probes: list[tuple[Hashable, Probe]], target: int,
               progress: Progress | None, base: tuple[float, float] | None = None) -> tuple[list[Outputs], int]:
    """The :class:`Outputs` of every probe (``(owner, probe)``: probes of one owner, a map, with the same ``share``
    key are scored once), with the unperturbed input ``x`` first in the same batched loop unless its ``(logit,
    probability)`` are given as ``base`` (an evaluation scoring map after map runs it once); and how many inputs ran."""
    if not probes:
        return [], 0
    unique: dict[Hashable, int] = {}
    runs: list[Probe] = []
    slot: list[int] = []
    for owner, p in probes:
        key = (owner, p.share) if p.share is not None else ("alone", len(slot))  # no share: never merged
        if key not in unique:
            unique[key] = len(runs)
            runs.append(p)
        slot.append(unique[key])
    starts = np.cumsum([0 if base is not None else 1, *[p.count for p in runs]])
    total = int(starts[-1])

    def make(a: int, b: int) -> torch.Tensor:
        parts = [x] if a == 0 and base is None else []
        for p, s in zip(runs, starts[:-1], strict=True):
            lo, hi = max(a, s), min(b, s + p.count)
            if lo < hi:
                parts.append(p.make(int(lo - s), int(hi - s)).to(x.device, x.dtype))
        return torch.cat(parts)

    rows = _target_outputs(model, total, make, target, progress) if total else np.empty((0, 3))
    logit, probability = base if base is not None else (float(rows[0, 0]), float(rows[0, 1]))
    out = []
    for i in slot:
        r = rows[starts[i]:starts[i] + runs[i].count]
        out.append(Outputs(r[:, 0], r[:, 1], r[:, 2] > 0.5, logit, probability))
    return out, total


def _target_outputs(model: ModelSpec, total: int, make: Callable[[int, int], torch.Tensor], target: int,
                    progress: Progress | None) -> np.ndarray:
    """``[total, 3]``: the class logit, its softmax probability and whether it is the arg-max, for inputs built batch by
    batch (inference mode, bf16 autocast on CUDA when asked, frozen graph or compiled model as the session says, OOM
    back-off, progress and Stop: the engine's :func:`chunks`)."""
    module = model.module
    first = make(0, min(total, 2)).contiguous(memory_format=torch.channels_last)
    size = batch_size_for(first.device, first.shape[-1] * first.shape[-2])
    comp = fastpath.compiled(module)
    run = comp if comp is not None else fastpath.frozen(module, first)
    run = module if run is None else run
    out = np.empty((total, 3), np.float64)

    def compute(a: int, b: int) -> torch.Tensor:
        xb = make(a, b).contiguous(memory_format=torch.channels_last)
        n = len(xb)
        if comp is not None and n < size:  # one static shape: pad instead of recompiling
            xb = torch.cat([xb, xb[-1:].expand(size - n, *xb.shape[1:])]).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(xb.device):
            z = run(xb).float()[:n]
        t = torch.full((n,), target, device=z.device)
        return torch.stack([select(z, t), select(class_probabilities(z), t), (z.argmax(1) == t).float()], 1)

    for a, b, r in chunks(total, compute, batch_size=size, progress=progress, desc="probe inputs"):
        out[a:b] = r.double().cpu().numpy()
    return out


_KEPT: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()  # fixed pools by model fingerprint
_KEPT_LOCK = threading.Lock()


def classified_pool(wb: Workbench, images: Callable[[], list[np.ndarray]],
                    keep: str | None = None) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """A function returning the model inputs of ``images()`` (RGB uint8) and their top-1 classes, computed on first
    call (one batched pass through the Workbench) and kept: one pool per evaluation, however many maps use it. With
    ``keep`` (a name for a fixed pool, e.g. the bundled samples) it is also kept across evaluations, per model
    weights (fingerprint), a few models at most."""
    cache: list[tuple[torch.Tensor, torch.Tensor]] = []

    def get() -> tuple[torch.Tensor, torch.Tensor]:
        if cache:
            return cache[0]
        with wb.session() as model:
            key = f"{keep}:{model.fingerprint()}:{model.device}" if keep else ""
            with _KEPT_LOCK:
                kept = _KEPT.get(key) if key else None
            if kept is None:
                found = images()
                x = torch.cat([model.preprocess(im) for im in found]) if found else torch.zeros(
                    0, 3, *model.input_size, device=model.device)
                top1 = logits_of(model.module, x, desc="other images").argmax(1) if found else torch.zeros(
                    0, dtype=torch.long, device=model.device)
                kept = (x, top1)
                if key:
                    with _KEPT_LOCK:
                        _KEPT[key] = kept
                        while len(_KEPT) > 4:
                            _KEPT.popitem(last=False)
        cache.append(kept)
        return kept

    return get


def make_rerun(wb: Workbench, x: torch.Tensor, target: int, request: ExplainRequest,
               pool: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> Rerun:
    """A :class:`Rerun` that explains new inputs with ``request`` for ``target`` through the Workbench (batched by the
    explainer), and draws other images whose top-1 class is not ``target`` from ``pool()`` (model inputs and their
    top-1 classes, see :func:`classified_pool`)."""

    def explain(xs: torch.Tensor) -> torch.Tensor:
        return wb.explain_tensor(xs, [target] * len(xs), request).maps.to(x.device)

    def others(k: int, seed: int) -> torch.Tensor:
        images, top1 = pool()
        found = images[top1 != target]
        pick = np.random.default_rng(seed).permutation(len(found))[:k]
        return found[torch.from_numpy(pick).to(found.device)]

    return Rerun(explain, others, target)
