"""Infidelity (Yeh, Hsieh, Suggala, Inouye & Ravikumar, NeurIPS 2019): how far the map, dotted with random input
perturbations I, is from the change of the class logit those perturbations cause."""

from __future__ import annotations

import numpy as np
import torch

from ..models.spec import ModelSpec
from ..types import ParamSpec
from .registry import Outputs, Probe, metric

REF = ("Yeh, Hsieh, Suggala, Inouye & Ravikumar 2019, 'On the (In)fidelity and Sensitivity of Explanations', "
       "NeurIPS. arXiv:1901.09392")


def pixel_noise(model: ModelSpec, x: torch.Tensor, k: int, seed: int, kind: str, scale: float) -> torch.Tensor:
    """Perturbation ``k`` of ``x`` [1, 3, H, W] in the model's normalised units: Gaussian (std ``scale``) or uniform
    (in [−scale, scale]) noise on every channel value in [0, 1] pixel units, divided by the normalisation's std. Each
    ``k`` has its own seeded stream, so a perturbation never depends on batching."""
    rng = np.random.default_rng([seed, k])
    shape = tuple(x.shape[1:])
    raw = rng.standard_normal(shape) * scale if kind == "gaussian" else rng.uniform(-scale, scale, shape)
    std = torch.tensor(model.std, dtype=torch.float64).view(3, 1, 1)
    return (torch.from_numpy(raw) / std).float().to(x.device)


def normalised_infidelity(dots: np.ndarray, drops: np.ndarray) -> float:
    """min over β of mean (β·Iᵀφ − Δf)², the scale-free infidelity (Captum's ``normalize=True``): the map's scale no
    longer matters, only how well its direction predicts the score changes. A map that is all zero: mean Δf²."""
    s_aa, s_ad, s_dd = float(dots @ dots), float(dots @ drops), float(drops @ drops)
    beta = s_ad / s_aa if s_aa != 0 else 0.0
    return (beta * beta * s_aa - 2 * beta * s_ad + s_dd) / len(dots)


@metric("infidelity", title="Infidelity", short="Infidelity", order=38, kind="probe", better="lower", default=False,
        passes="perturbations forward passes (+1 shared)",
        summary="Mean squared error between the map dotted with random noise and the logit change that noise causes, "
                "with the map's best scale (scale-free).",
        reference=REF,
        params=(ParamSpec("perturbations", "int", 32, "Perturbations", "How many noise draws.", 2, 1000, 1),
                ParamSpec("noise", "float", 0.05, "Noise (std)", "Standard deviation of the Gaussian noise per pixel "
                          "and channel, in [0, 1] pixel units.", 0.001, 1.0, 0.001)))
def infidelity(model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, *, perturbations: int = 32,
               noise: float = 0.05, seed: int = 0) -> Probe:
    """Infidelity (Yeh et al. 2019, arXiv:1901.09392) with Gaussian perturbations I and the map φ on every channel:
    E[(Iᵀφ − (f(x) − f(x − I)))²] for the class logit f, minimised over a scale of φ (Captum's ``normalize``).
    Lower = more faithful."""
    dots = np.zeros(perturbations)
    phi = small_map.detach().float().to(x.device)

    def make(a: int, b: int) -> torch.Tensor:
        out = []
        for k in range(a, b):
            i = pixel_noise(model, x, k, seed, "gaussian", noise)
            dots[k] = float((i.double() * phi.double()).sum())
            out.append(x[0] - i)
        return torch.stack(out)

    def value(o: Outputs) -> float:
        return normalised_infidelity(dots, o.base_logit - o.logit)

    return Probe(perturbations, make, value)
