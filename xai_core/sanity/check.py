"""Model-randomisation sanity check (Adebayo et al. 2018, 'Sanity Checks for Saliency Maps', NeurIPS,
arXiv:1810.03292): does an explanation change when the weights it claims to explain are destroyed?

Every stage is randomised with several seeds: each similarity is a distribution (median, range, upper quartile),
and the verdict rests on the distribution, not on one draw (see :mod:`.verdict`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np

from ..errors import Cancelled, ExplainerError
from ..metrics.reference_maps import EDGES, edge_map
from ..models.spec import ModelSpec
from ..registry import get_explainer
from ..request import ExplainRequest
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .randomise import randomised, stages, weighted_layers
from .similarity import MEASURE, SIMILARITIES, is_constant
from .verdict import DEPENDS, INSENSITIVE, Spread, agreement, level

MAX_SEEDS = 16

__all__ = ["DEPENDS", "INSENSITIVE", "MAX_SEEDS", "SanityReport", "check_seeds", "copy_seed", "model_randomisation",
           "randomisation_stream"]


@dataclass
class SanityReport:
    """Maps per explainer at every stage (index 0: the trained model; randomised maps from the first seed), at
    the model's input resolution as the explainer computed them (no resize to the image), and their similarity
    to the original over every seed: ``spreads[map][measure][stage - 1]``. ``similarity`` holds the medians (one
    per randomised stage) and ``probability`` the median p(class) per stage."""

    mode: str
    target: int
    class_name: str
    stages: list[str]
    maps: dict[str, list[np.ndarray]]
    similarity: dict[str, dict[str, list[float]]]
    constant: dict[str, list[bool]]
    probability: list[float]
    layers: list[list[str]] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    spreads: dict[str, dict[str, list[Spread]]] = field(default_factory=dict)

    def spread(self, name: str, measure: str = MEASURE) -> list[Spread]:
        return self.spreads[name][measure]

    def kind(self, name: str) -> str:
        """``insensitive`` (the logits' randomisation leaves the map: upper quartile ≥ 0.8), ``depends`` (the upper
        quartile falls below 0.5 at some stage) or ``between``."""
        s = self.spread(name)
        if level(s[0]) == "insensitive":
            return "insensitive"
        return "depends" if any(level(x) == "depends" for x in s) else "between"

    def verdict(self, name: str) -> str:
        """Plain words from Spearman |·| over the seeds (median [range]; the upper quartile decides)."""
        s, kind = self.spread(name), self.kind(name)
        if kind == "insensitive":
            return (f"barely changes when the logits are randomised (ρ {s[0].text()}; {agreement(s[0], kind)}): "
                    "it cannot explain the decision")
        if kind == "depends":
            k = next(i for i, x in enumerate(s) if level(x) == "depends")
            return f"depends on the weights (ρ {s[k].text()} at “{self.stages[k + 1]}”; {agreement(s[k], kind)})"
        k = int(np.argmin([x.upper_quartile for x in s]))
        return f"changes little (lowest ρ {s[k].text()} at “{self.stages[k + 1]}”; {agreement(s[k], kind)})"


def check_seeds(seeds: int) -> int:
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or not 1 <= int(seeds) <= MAX_SEEDS:
        raise ExplainerError(f"Use between 1 and {MAX_SEEDS} seeds; got {seeds!r}.")
    return int(seeds)


def copy_seed(seed: int, stage: int) -> int:
    """The seed of the randomised copy for base ``seed`` at ``stage``: distinct for every pair, any size."""
    return int(np.random.SeedSequence([int(seed), int(stage)]).generate_state(1)[0])


def model_randomisation(model: ModelSpec | Workbench, image: np.ndarray, methods: list[tuple[str, dict[str, Any]]], *,
                        mode: Literal["cascading", "independent"] = "cascading", n_stages: int = 5,
                        target: int | None = None, seed: int = 0, seeds: int = 3, edges: bool = True,
                        progress: Progress | None = None,
                        partial: Callable[[SanityReport], None] | None = None) -> SanityReport:
    """Explain ``image`` with each method on the trained model, then on copies randomised from the logits down
    (``cascading``: every stage adds the next group of layers) or one group at a time (``independent``), once per
    seed ``seed, seed + 1, … seed + seeds − 1``.

    Maps stay at the model's input resolution (the explainer's own) and are compared there, |·| first (see
    :mod:`.similarity`). The trained model is only touched inside the Workbench's session (explaining it,
    copying it); each randomised copy gets its own Workbench with the same run options. ``partial(report)`` is
    called with each report of :func:`randomisation_stream` as it comes (the last, complete one too, which is
    returned); without it only the complete report is made."""
    report = None
    for report in randomisation_stream(model, image, methods, mode=mode, n_stages=n_stages, target=target, seed=seed,
                                       seeds=seeds, edges=edges, progress=progress, every_map=partial is not None):
        if partial is not None:
            partial(report)
    assert report is not None  # the stream always yields
    return report


def randomisation_stream(model: ModelSpec | Workbench, image: np.ndarray, methods: list[tuple[str, dict[str, Any]]], *,
                         mode: Literal["cascading", "independent"] = "cascading", n_stages: int = 5,
                         target: int | None = None, seed: int = 0, seeds: int = 3, edges: bool = True,
                         progress: Progress | None = None, every_map: bool = True) -> Iterator[SanityReport]:
    """:func:`model_randomisation` map by map: the report so far after every map (the trained model's maps one by
    one, then each stage's column seed by seed: the first seed's maps fill the grid, the later seeds add to the
    similarity spreads); the last report is the complete one (the only one unless ``every_map``). A stage being
    computed has the seeds done so far (its p(class) their median). No lock is held between yields."""
    if mode not in ("cascading", "independent"):
        raise ExplainerError(f"Unknown randomisation {mode!r}: choose cascading or independent.")
    seed_list = [int(seed) + i for i in range(check_seeds(seeds))]
    wb = as_workbench(model)
    model = wb.model
    requests = [ExplainRequest.make(m, None, p, seed) for m, p in methods]
    x = model.preprocess(image)
    groups = stages(weighted_layers(wb, x), n_stages)
    if not groups or not groups[0]:
        raise ExplainerError("This model has no layers with weights to randomise.")
    p0 = wb.probabilities(image)
    tgt = int(p0.argmax()) if target is None else int(target)
    names = [get_explainer(m).title for m, _ in methods]
    maps: dict[str, list[np.ndarray]] = {n: [] for n in names}
    constant: dict[str, list[bool]] = {n: [] for n in names}
    values: dict[str, dict[str, list[float]]] = {n: {s: [] for s in SIMILARITIES} for n in names}  # stage being done
    spreads: dict[str, dict[str, list[Spread]]] = {n: {s: [] for s in SIMILARITIES} for n in names}
    medians: dict[str, dict[str, list[float]]] = {n: {s: [] for s in SIMILARITIES} for n in names}
    probs: list[float] = [float(p0[tgt])]
    stage_p: list[float] = []  # p(class) of the stage being computed, one per seed so far
    labels = ["trained"]
    total = (len(groups) * len(seed_list) + 1) * max(1, len(methods))
    done = 0
    edge = None
    if edges:
        h, w = x.shape[-2:]
        edge = cv2.resize(edge_map(image), (w, h), interpolation=cv2.INTER_AREA)
        self_similar = {sim: Spread.of([float(fn(edge, edge))] * len(seed_list)) for sim, fn in SIMILARITIES.items()}
        edge_constant = is_constant(edge)

    def explain(bench: Workbench, req: ExplainRequest, text: str) -> np.ndarray:
        nonlocal done
        if progress is not None:
            progress(done / total, text)
        try:
            out = bench.explain_tensor(x, [tgt], req).maps[0].numpy()
        except Cancelled:
            raise
        except ExplainerError:  # e.g. a randomised model gives NaN scores: an all-zero map, reported constant
            out = np.zeros(x.shape[-2:], np.float32)
        done += 1
        return out

    def report() -> SanityReport:
        all_maps = {n: list(v) for n, v in maps.items()}
        all_constant = {n: list(v) for n, v in constant.items()}
        all_spreads = {n: {sim: list(v) for sim, v in by.items()} for n, by in spreads.items()}
        all_medians = {n: {sim: list(v) for sim, v in by.items()} for n, by in medians.items()}
        if edge is not None:
            all_maps[EDGES] = [edge] * len(labels)
            all_constant[EDGES] = [edge_constant] * len(labels)
            all_spreads[EDGES] = {sim: [sp] * (len(labels) - 1) for sim, sp in self_similar.items()}
            all_medians[EDGES] = {sim: [sp.median] * (len(labels) - 1) for sim, sp in self_similar.items()}
        p = [*probs, float(np.median(stage_p))] if stage_p else list(probs)
        return SanityReport(mode, tgt, model.label(tgt), list(labels), all_maps, all_medians, all_constant, p, groups,
                            seed_list, all_spreads)

    for name, req in zip(names, requests, strict=True):
        maps[name].append(explain(wb, req, f"trained: {name}"))
        constant[name].append(is_constant(maps[name][0]))
        if every_map:
            yield report()
    for k in range(1, len(groups) + 1):
        chosen = [n for g in groups[:k] for n in g] if mode == "cascading" else groups[k - 1]
        labels.append(_label(groups[k - 1], k, mode))
        for s in seed_list:
            bench = wb.with_model(randomised(wb, chosen, x, seed=copy_seed(s, k)))
            stage_p.append(float(bench.probabilities(image)[tgt]))
            for name, req in zip(names, requests, strict=True):
                m = explain(bench, req, f"{labels[-1]}, seed {s}: {name}")
                first = s == seed_list[0]
                if first:
                    maps[name].append(m)
                    constant[name].append(is_constant(m))
                for sim, fn in SIMILARITIES.items():
                    cell = values[name][sim] = [] if first else values[name][sim]
                    cell.append(float(np.nan_to_num(fn(maps[name][0], m), nan=0.0)))
                    if every_map or s == seed_list[-1]:  # the cell's summary: after every seed, or once it is complete
                        sp, at = Spread.of(cell), k - 1  # this stage's entry, added or replaced
                        spreads[name][sim][at:], medians[name][sim][at:] = [sp], [sp.median]
                if every_map:
                    yield report()
        probs.append(float(np.median(stage_p)))
        stage_p.clear()
    if progress is not None:
        progress(1.0, "done")
    if not every_map or not names:  # the complete report (with every_map, the last map's report was it)
        yield report()


def _label(group: list[str], k: int, mode: str) -> str:
    if k == 1:
        return f"logits ({group[0]})"
    if mode == "cascading":  # everything above, down to the lowest layer of this group
        return f"down to {group[-1]}"
    return "only " + (group[0] if len(group) == 1 else f"{group[-1]} … {group[0]}")
