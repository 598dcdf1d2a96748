"""Engine batching for refining explainers (:mod:`xai_core.anytime`): scores in segments that end on refinement
boundaries, and progress that counts the whole run (not registered)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from ..engine import scores
from ..types import Progress


def scored(module: torch.nn.Module, make: Callable[[int, int], torch.Tensor], targets: torch.Tensor, bounds: list[int],
           unit: int, *, probabilities: bool, progress: Progress | None, what: str) -> Iterator[tuple[int, int, torch.Tensor]]:
    """``engine.scores`` of inputs ``[0, bounds[-1])`` in segments ending at ``bounds``: yields ``(start, stop,
    scores)`` per segment. Each segment is scored in batches of ``unit`` (the engine's batch size, passed to it): with
    bounds at multiples of ``unit`` the batches are those of one ``scores`` call over everything (a first bound below
    ``unit`` puts the short batch first instead of last); progress counts "k of N <what>" over the whole run."""
    total, start = bounds[-1], 0
    for stop in bounds:
        def make_part(a: int, b: int, o: int = start) -> torch.Tensor:
            return make(o + a, o + b)

        out = scores(module, stop - start, make_part, targets[start:stop], batch_size=unit, probabilities=probabilities,
                     progress=_span(progress, start, stop, total, what), desc=what)
        yield start, stop, out
        start = stop


def _span(progress: Progress | None, start: int, stop: int, total: int, what: str) -> Progress | None:
    """``progress`` for one segment ``[start, stop)`` of ``total`` units: reports the whole run's fraction and
    "k of N <what>"; other texts at the segment's start (e.g. "compiling the model") pass through."""
    if progress is None:
        return None

    def report(fraction: float, text: str) -> None:
        k = start + round(fraction * (stop - start))
        progress(k / total, text if fraction == 0 and not text.startswith(what) else f"{k:,} of {total:,} {what}")

    return report

