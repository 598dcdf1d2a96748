"""Partial results drawn while a page computes (Evaluate's curves and ranking, Sanity's grid): when to redraw.

A page that streams draws each partial result into one placeholder (``st.empty()``), replaced in place — never a
rerun of the page. Drawing runs on the script's thread, between two units of work, so every redraw delays the
computation by its own cost: :class:`Throttle` keeps the drawing to a small share of the time spent, so the total
stays within a few percent of a run that draws only the end. A run shorter than ``GUESS / SHARE`` (0.5 s) draws
nothing partial: its end comes about as soon.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SHARE = 0.03  # drawing may take at most this share of the time since the run started
GUESS = 0.015  # seconds one redraw is expected to cost before any was timed (measured: 5-15 ms on a 2-core CPU)
GAP = 0.4  # seconds between two redraws at least (the browser needs them to show anything)


class Throttle:
    """Draws a partial result when it is due: ``gap`` seconds after the last draw, and only if the drawing so far plus
    this one (at the mean cost of the earlier ones, ``guess`` before any) stays within ``share`` of the time since the
    start."""

    def __init__(self, share: float = SHARE, gap: float = GAP, guess: float = GUESS) -> None:
        self.share, self.gap, self.guess = share, gap, guess
        self.start = time.perf_counter()
        self.last = -float("inf")
        self.spent = 0.0
        self.draws = 0

    def due(self) -> bool:
        now = time.perf_counter()
        cost = self.spent / self.draws if self.draws else self.guess
        return now - self.last >= self.gap and self.spent + cost <= self.share * (now - self.start)

    def draw(self, fn: Callable[[int], None], *, force: bool = False) -> bool:
        """``fn(n)`` (``n``: the redraw's number, for unique element keys) when due or ``force``d; whether it drew."""
        if not (force or self.due()):
            return False
        t = time.perf_counter()
        fn(self.draws)
        self.last = time.perf_counter()
        self.spent += self.last - t
        self.draws += 1
        return True
