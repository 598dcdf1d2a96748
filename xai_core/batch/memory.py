"""The in-memory source of the batch runner: images already decoded (an uploaded zip, the samples, a lab set) run
through the same loop as the CLI (:func:`.compute.explain_loaded`), chunk by chunk, and nothing is written.

    result = run_memory(wb, [Decoded("a.png", image, box=(10, 10, 50, 50))], Work.make([request], target="top1",
                        metrics=["deletion", "pointing_game"]))
    result.rows   # the CLI's table rows (one per image × request, then reference maps); result.maps: float32 maps
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from ..types import Progress
from ..workbench import Workbench
from . import compute
from .compute import ChunkResult
from .work import Decoded, Work


def run_memory(wb: Workbench, items: Sequence[Decoded], work: Work, *, batch_size: int = 16,
               progress: Progress | None = None) -> ChunkResult:
    """Every chunk of ``batch_size`` images through the one loop, rows and maps gathered in order.
    ``progress(fraction, text)`` is called as the run goes (0 first, 1 last, never backwards); raising
    :class:`~xai_core.errors.Cancelled` there stops the run (a page's Stop)."""
    n, t0 = len(items), time.perf_counter()
    out = ChunkResult()

    def report(done: float, text: str) -> None:
        if progress is not None:
            fraction = done / n if n else 1.0
            left = (time.perf_counter() - t0) * (1 - fraction) / fraction if fraction else math.nan
            progress(fraction, f"{text} · {math.floor(done)}/{n} images" + (f" · about {left:.0f} s left"
                                                                           if 0 < fraction < 1 else ""))

    def chunk_progress(start: int, k: int) -> Progress:
        """A chunk's progress (``f`` of its ``k`` items, from item ``start``) as the whole run's."""
        return lambda f, t: report(start + f * k, t)

    report(0, "starting")
    for a in range(0, n, max(1, batch_size)):
        chunk = list(items[a:a + max(1, batch_size)])
        # looked up on the module at call time: the one loop, whoever calls it (a test counts the calls)
        done = compute.explain_loaded(wb, chunk, work, progress=chunk_progress(a, len(chunk)))
        out.rows += done.rows
        out.maps += done.maps
    report(n, "done")
    return out
