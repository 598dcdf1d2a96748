"""What a sanity check will cost before it runs, from the registry's cost data (model passes per explained sample).

The page states it beside the Run button, so nothing heavy starts before a visitor has chosen: the randomisation
explains every method on the trained model and on each stage's copy per seed; the random-logit check explains the
class and one random class per seed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..registry import get_explainer
from .check import check_seeds

RECALIBRATION_PASSES = 17  # per randomised copy: one forward of 16 noisy images (BatchNorm statistics) + p(class)


@dataclass(frozen=True)
class CheckCost:
    """``maps`` explanations in all, ``passes`` forward + backward passes of the model (``math.inf`` when a method's
    count depends on the model), and which method takes the largest ``share`` of them."""

    maps: int
    passes: float
    heaviest: str
    share: float

    def text(self, seconds_per_pass: float | None = None) -> str:
        if not math.isfinite(self.passes):
            return (f"{self.maps} maps; {self.heaviest} needs a number of passes only the model decides, so the time "
                    "is not known in advance.")
        head = f"{self.maps} maps, about {self.passes:,.0f} model passes (forward or backward)"
        if self.share >= 0.5 and self.maps > 1:
            head += f", {self.share:.0%} of them for {self.heaviest}"
        if seconds_per_pass:
            head += f"; about {_duration(self.passes * seconds_per_pass)} at this session's last measured speed"
        return head + "."


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _cost(methods: list[tuple[str, dict[str, Any]]], copies: int, extra: float,
          input_size: tuple[int, int]) -> CheckCost:
    per = {get_explainer(m).title: get_explainer(m).passes(p, input_size) * copies for m, p in methods}
    total = sum(per.values()) + extra
    heaviest = max(per, key=lambda k: per[k]) if per else ""
    share = per[heaviest] / total if per and math.isfinite(total) and total > 0 else 0.0
    return CheckCost(len(methods) * copies, total, heaviest, share)


def randomisation_cost(methods: list[tuple[str, dict[str, Any]]], *, n_stages: int, seeds: int,
                       input_size: tuple[int, int] = (224, 224)) -> CheckCost:
    """The cost of :func:`~.check.model_randomisation` with these settings (at most ``n_stages`` stages: a model
    with fewer weighted layers has fewer)."""
    copies = n_stages * check_seeds(seeds)
    return _cost(methods, 1 + copies, copies * RECALIBRATION_PASSES, input_size)


def random_logit_cost(methods: list[tuple[str, dict[str, Any]]], *, seeds: int,
                      input_size: tuple[int, int] = (224, 224)) -> CheckCost:
    """The cost of :func:`~.logit_check.random_logit`: the class and one random class per seed, per method."""
    return _cost(methods, 1 + check_seeds(seeds), 1, input_size)


__all__ = ["CheckCost", "random_logit_cost", "randomisation_cost"]
