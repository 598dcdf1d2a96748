"""Blur IG: Integrated Gradients along a path of ever stronger Gaussian blur, batched through the engine."""

from __future__ import annotations

import numpy as np
import torch

from ..models.spec import ModelSpec
from ..registry import Cost, ParamSpec, Progress, attribution
from ..result import Attribution
from .pixel_paths import COMPLETENESS, completeness, first_pass, integrate

TRUNCATE = 4.0  # kernel radius in sigmas, as scipy.ndimage.gaussian_filter (and so PAIR saliency)


def kernel_diagonals(n: int, sigma: float) -> np.ndarray:
    """The 2n − 1 diagonals of the n × n matrix of a 1-D Gaussian blur with zero padding, float64.

    As ``scipy.ndimage.gaussian_filter1d(mode='constant')``: radius ``int(4σ + 0.5)``, weights normalised over the
    whole kernel (not over the part inside the image, so borders darken toward the black padding); σ = 0 is identity.
    """
    out = np.zeros(2 * n - 1)
    if sigma == 0:
        out[n - 1] = 1.0
        return out
    r = int(TRUNCATE * sigma + 0.5)
    t = np.arange(-r, r + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * t.astype(np.float64) ** 2)
    phi /= phi.sum()
    keep = np.abs(t) <= n - 1
    out[t[keep] + n - 1] = phi[keep]
    return out


class BlurPath:
    """Blur matrices along one image axis of length n for σ_k = k·max_sigma/steps: the blur A_k, the blur at
    σ_k + h and the derivative (A(σ_k + h) − A_k) / h, each built in float64 and then rounded once."""

    def __init__(self, n: int, sigmas: np.ndarray, grad_step: float, device: torch.device) -> None:
        a = np.stack([kernel_diagonals(n, s) for s in sigmas])
        a_h = np.stack([kernel_diagonals(n, s + grad_step) for s in sigmas])
        self.diag = {name: torch.from_numpy(v).float().to(device) for name, v in
                     (("a", a), ("a_h", a_h), ("d", (a_h - a) / grad_step))}
        i = torch.arange(n, device=device)
        self.index = i.view(-1, 1) - i.view(1, -1) + n - 1

    def __call__(self, name: str, k: torch.Tensor) -> torch.Tensor:
        """Matrices ``[len(k), 1, n, n]`` of kind ``name`` ('a', 'a_h' or 'd') for the steps ``k``."""
        return self.diag[name][k][:, self.index].unsqueeze(1)


def blurred(rows: BlurPath, cols: BlurPath, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Images ``x [n, 3, H, W]`` blurred at step k: A_k X A_kᵀ per channel."""
    return rows("a", k) @ x @ cols("a", k).mT


@attribution(
    "blur_ig", title="Blur IG", family="gradient", signed=True, reports_logits=True,
    summary="Integrated Gradients along a path from a heavily blurred copy of the image back to the image: "
            "no baseline to choose, and the attributions add up to f(image) − f(blurred image).",
    reference="Xu, Venugopalan, Sundararajan, Hoffman & Kapishnikov 2020, 'Attribution in Scale and Space', CVPR. "
              "arXiv:2004.03383",
    cost=Cost(1, 1, per="steps"),
    diagnostics=COMPLETENESS,
    params=(
        ParamSpec("max_sigma", "float", 50.0, "Maximum blur σ (px)", "Gaussian σ in pixels of the model input at "
                  "the blurred end of the path (PAIR: 50 at 224×224).", 1.0, 500.0, 1.0),
        ParamSpec("steps", "int", 100, "Steps", "Blur levels on the path; more is more exact and slower.", 2, 1024, 1),
        ParamSpec("grad_step", "float", 0.01, "σ step of the derivative", "Finite difference in σ for the rate at "
                  "which the image changes along the path.", 0.001, 1.0, 0.001),
    ),
)
def attribute(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, max_sigma: float = 50.0, steps: int = 100,
              grad_step: float = 0.01, progress: Progress | None = None) -> Attribution:
    """−Σ_k ∇f(x_σk) ⊙ ∂x_σ/∂σ(σ_k) Δσ over σ_k = k·max_sigma/steps, k = 0..steps−1 (Xu et al. 2020,
    arXiv:2004.03383; the left Riemann sum of PAIR saliency's BlurIG with linear σ spacing).

    x_σ is the image in pixels [0, 1] blurred by a Gaussian of std σ pixels with black (zero) padding; ∂x_σ/∂σ is
    the forward difference (x_{σ+h} − x_σ)/h with h = ``grad_step``, built from float64 blur matrices (a separable
    blur is A X Bᵀ) so that the difference is not lost to float32 cancellation. The first forward runs on x itself
    (it resolves ``TOP1``); diagnostics 'completeness_gap' and 'score_difference' = f(x) − f(x_max_sigma).
    """
    pix = model.denormalise(x).float()
    h, w = x.shape[-2:]
    sigmas = np.arange(steps + 1) * max_sigma / steps
    rows = BlurPath(h, sigmas, grad_step, x.device)
    cols = rows if h == w else BlurPath(w, sigmas, grad_step, x.device)
    last = torch.full((len(x),), steps, device=x.device)
    fwd, start_scores = first_pass(model, x, target, [blurred(rows, cols, pix, last)])
    dsigma = float(sigmas[1] - sigmas[0])

    def point(b: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half = rows("a", k) @ pix[b]
        velocity = (rows("d", k) @ pix[b]) @ cols("a_h", k).mT + half @ cols("d", k).mT
        return half @ cols("a", k).mT, velocity * -dsigma

    attr = integrate(model, pix, fwd.target, steps, point, progress=progress, desc="blur steps")
    return Attribution.of(attr, fwd, completeness(attr, fwd, start_scores))
