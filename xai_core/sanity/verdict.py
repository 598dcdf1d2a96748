"""Verdicts from several seeds: a similarity is a distribution over random re-initialisations (or random classes),
summarised by its median and range, and judged by its upper quartile against the thresholds, with a count of the
seeds that agree. One unlucky seed can then no longer flip the words a lecturer reads out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEPENDS = 0.5  # Spearman |·| whose upper quartile falls below this: the map follows what was randomised
INSENSITIVE = 0.8  # upper quartile at or above this: the map ignores what was randomised


@dataclass(frozen=True)
class Spread:
    """One similarity over seeds: every value, and the summaries the page shows."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: list[float] | np.ndarray) -> Spread:
        return cls(tuple(float(v) for v in values))

    @property
    def median(self) -> float:
        return float(np.median(self.values))

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    @property
    def upper_quartile(self) -> float:
        """The 75th percentile (linear interpolation between seeds): the verdicts' statistic."""
        return float(np.percentile(self.values, 75))

    @property
    def n(self) -> int:
        return len(self.values)

    def at_least(self, threshold: float) -> int:
        return sum(v >= threshold for v in self.values)

    def below(self, threshold: float) -> int:
        return sum(v < threshold for v in self.values)

    def text(self) -> str:
        """E.g. ``0.41 [0.36–0.47]`` (median [range]); a single seed is just its value."""
        if self.n == 1:
            return f"{self.median:.2f}"
        return f"{self.median:.2f} [{self.low:.2f}–{self.high:.2f}]"


def level(spread: Spread) -> str:
    """``insensitive`` (upper quartile ≥ 0.8), ``depends`` (upper quartile < 0.5) or ``between``."""
    q = spread.upper_quartile
    if q >= INSENSITIVE:
        return "insensitive"
    if q < DEPENDS:
        return "depends"
    return "between"


def agreement(spread: Spread, kind: str) -> str:
    """How many seeds agree with the verdict ``kind``, e.g. ``3 of 3 seeds ≥ 0.8``."""
    if kind == "insensitive":
        return f"{spread.at_least(INSENSITIVE)} of {spread.n} seeds ≥ {INSENSITIVE}"
    if kind == "depends":
        return f"{spread.below(DEPENDS)} of {spread.n} seeds < {DEPENDS}"
    return f"{spread.n - spread.at_least(INSENSITIVE) - spread.below(DEPENDS)} of {spread.n} seeds in [{DEPENDS}, {INSENSITIVE})"
