"""Non-negative factorisations ``A ≈ U W`` in torch: coefficients ``U`` [M, k] ≥ 0 and concepts ``W`` [k, C].

* ``A`` ≥ 0 (a layer after a ReLU): NMF by multiplicative updates (Lee & Seung 2001, Frobenius loss), ``W`` ≥ 0;
  negatives are clipped to 0.
* ``A`` signed (a ViT's token layer, a LayerNorm or BatchNorm output): **semi-NMF** (Ding, Li & Jordan 2010,
  'Convex and Semi-Nonnegative Matrix Factorizations', TPAMI): ``W`` free (its least-squares solution for the
  current ``U``), ``U`` ≥ 0 by one sweep of coordinate descent per column (HALS, Cichocki & Phan 2009; their
  multiplicative update stalls near zeros: measured 3.7 % error left on an exact rank-3 product, HALS 2e-5). A
  concept is then a signed direction; its coefficients still say how much of it a sample holds.

Each concept row is scaled to unit norm (the scale moves into ``U``). Computed in float64 on the CPU from a seeded
start: the same inputs and seed give the same factors on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import ConceptError

EPS = 1e-12
RIDGE = 1e-9  # relative ridge on UᵀU in semi-NMF's least-squares step (a concept unused by every sample)


@dataclass(frozen=True)
class NMF:
    """``coefficients`` [M, k] ≥ 0, ``concepts`` [k, C] (rows of unit norm; ≥ 0 unless ``signed``) and the relative
    reconstruction error ‖A − UW‖ / ‖A‖ (of the clipped ``A`` when not ``signed``)."""

    coefficients: torch.Tensor
    concepts: torch.Tensor
    relative_error: float
    signed: bool = False


def negative_share(a: torch.Tensor) -> float:
    """Share of the activations' absolute mass that is negative: 0 after a ReLU, about 0.5 after a LayerNorm."""
    a = a.detach().double()
    return float(a.clamp(max=0).abs().sum() / a.abs().sum().clamp_min(EPS))


def _check(a: torch.Tensor, signed: bool) -> torch.Tensor:
    if a.dim() != 2 or not torch.isfinite(a).all():
        raise ConceptError("The activations to factorise must be a finite [samples, channels] matrix.")
    a = a.detach().to("cpu", torch.float64)
    return a if signed else a.clamp_min(0.0)


def _hals_u_step(u: torch.Tensor, proj: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """One sweep of exact coordinate minimisation of ‖A − UW‖² over each column of U ≥ 0 for fixed W (any sign):
    ``proj`` = A Wᵀ [M, k], ``gram`` = W Wᵀ [k, k]. In place; returns ``u``."""
    for k in range(u.shape[1]):
        u[:, k] = (u[:, k] + (proj[:, k] - u @ gram[:, k]) / gram[k, k].clamp_min(EPS)).clamp_min(0.0)
    return u


def _least_squares_w(a: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    utu = u.T @ u
    ridge = RIDGE * float(utu.diagonal().mean().clamp_min(EPS))
    return torch.linalg.solve(utu + ridge * torch.eye(len(utu), dtype=u.dtype), u.T @ a)


def factorise(a: torch.Tensor, rank: int, *, iterations: int = 500, seed: int = 0, signed: bool = False) -> NMF:
    """Factorise ``a`` [M, C] into ``rank`` concepts: NMF of ``a`` clipped at 0, or semi-NMF when ``signed``."""
    a = _check(a, signed)
    m, c = a.shape
    if not 1 <= rank <= min(m, c):
        raise ConceptError(f"{rank} concepts cannot be found in {m} samples of {c} channels; "
                           f"choose between 1 and {min(m, c)}.")
    gen = torch.Generator().manual_seed(seed)
    scale = (a.abs().mean() / rank).sqrt().clamp_min(EPS)
    u = torch.rand(m, rank, generator=gen, dtype=torch.float64) * scale + EPS
    w = torch.rand(rank, c, generator=gen, dtype=torch.float64) * scale + EPS
    for _ in range(iterations):
        if signed:
            w = _least_squares_w(a, u)
            u = _hals_u_step(u, a @ w.T, w @ w.T)
        else:
            w *= (u.T @ a) / (u.T @ u @ w + EPS)
            u *= (a @ w.T) / (u @ (w @ w.T) + EPS)
    norm = w.norm(dim=1, keepdim=True).clamp_min(EPS)
    w, u = w / norm, u * norm.T
    err = float((a - u @ w).norm() / a.norm().clamp_min(EPS))
    return NMF(u.float(), w.float(), err, signed)


def transform(a: torch.Tensor, concepts: torch.Tensor, *, iterations: int = 300, signed: bool | None = None
              ) -> torch.Tensor:
    """Non-negative coefficients ``U`` [M, k] with ``a ≈ U concepts`` for fixed ``concepts`` [k, C], by the
    multiplicative update for ``U`` alone from a constant start (deterministic without a seed). ``signed`` (default:
    whether ``concepts`` has a negative entry) keeps ``a``'s negatives and updates ``U`` by HALS sweeps."""
    w = concepts.detach().to("cpu", torch.float64)
    signed = bool((w < 0).any()) if signed is None else signed
    a = _check(a, signed)
    u = torch.full((a.shape[0], w.shape[0]), 1.0 / max(w.shape[0], 1), dtype=torch.float64)
    gram, proj = w @ w.T, a @ w.T
    for _ in range(iterations):
        u = _hals_u_step(u, proj, gram) if signed else u * proj / (u @ gram + EPS)
    return u.float()
