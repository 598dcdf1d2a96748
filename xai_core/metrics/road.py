"""ROAD (Rong et al., ICML 2022): remove the most (MoRF) or least (LeRF) relevant pixels at given percentages and fill
them by noisy linear imputation (:mod:`.imputation`), without retraining; read the class probability each time."""

from __future__ import annotations

import numpy as np
import torch

from ..models.spec import ModelSpec
from ..types import ParamSpec
from .imputation import impute
from .registry import Outputs, Probe, metric, order_of

REF = ("Rong, Leemann, Borisov, Kasneci & Kasneci 2022, 'A Consistent and Efficient Evaluation Strategy for "
       "Attribution Methods', ICML. arXiv:2202.00449")
PARAMS = (
    ParamSpec("steps", "int", 9, "Percentages", "How many removal percentages, evenly spaced: 9 gives 10%, 20%, …, "
              "90% of the pixels, as in the paper.", 1, 49, 1),
    ParamSpec("noise", "float", 0.01, "Imputation noise",
              "Standard deviation of the Gaussian noise added to imputed values, in the model's normalised input "
              "units (the paper's and its reference code's 0.01).", 0.0, 1.0, 0.005),
)


def percentages(steps: int) -> np.ndarray:
    """The removed fractions: ``k / (steps + 1)`` for k = 1..steps (9 steps: 0.1, 0.2, …, 0.9)."""
    return np.arange(1, steps + 1) / (steps + 1)


def road_probe(x: torch.Tensor, m: torch.Tensor, steps: int, noise: float, most_first: bool, seed: int) -> Probe:
    """Input k: ``x`` with the ``round(f_k · H·W)`` most (or least) relevant pixels, every channel, imputed; ties in the
    map broken by a seeded order. Each input's noise comes from its own seeded stream, so batching changes nothing."""
    fractions = percentages(steps)
    rank = order_of(m if most_first else -m, seed).cpu().numpy()
    counts = [int(round(f * rank.size)) for f in fractions]
    x0 = x[0].detach().double().cpu().numpy()

    def make(a: int, b: int) -> torch.Tensor:
        out = [impute(x0, rank < counts[k], noise, np.random.default_rng([seed, k])) for k in range(a, b)]
        return torch.from_numpy(np.stack(out)).float()

    def mean_probability(o: Outputs) -> float:
        return float(np.mean(o.probability))

    return Probe(len(fractions), make, mean_probability, fractions, "fraction of pixels imputed")


@metric("road_morf", title="ROAD, most relevant first", short="ROAD MoRF", order=32, kind="probe", better="lower",
        summary="Mean class probability as 10%…90% of the pixels, most relevant first, are removed and filled by "
                "noisy linear imputation (no retraining).", reference=REF, params=PARAMS, default=False,
        passes="steps forward passes, each after a sparse linear solve (CPU)")
def road_morf(model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, *, steps: int = 9, noise: float = 0.01,
              seed: int = 0) -> Probe:
    """ROAD MoRF (Rong et al. 2022, arXiv:2202.00449): the mean over the removal percentages of the class probability
    after imputing the most relevant pixels. Lower = more faithful (removing what the map calls relevant hurts)."""
    return road_probe(x, small_map, steps, noise, True, seed)


@metric("road_lerf", title="ROAD, least relevant first", short="ROAD LeRF", order=34, kind="probe", better="higher",
        summary="Mean class probability as 10%…90% of the pixels, least relevant first, are removed and filled by "
                "noisy linear imputation (no retraining).", reference=REF, params=PARAMS, default=False,
        passes="steps forward passes, each after a sparse linear solve (CPU)")
def road_lerf(model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, *, steps: int = 9, noise: float = 0.01,
              seed: int = 0) -> Probe:
    """ROAD LeRF (Rong et al. 2022, arXiv:2202.00449): the mean over the removal percentages of the class probability
    after imputing the least relevant pixels. Higher = more faithful (removing what the map calls irrelevant is
    harmless)."""
    return road_probe(x, small_map, steps, noise, False, seed)
