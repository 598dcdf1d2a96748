"""Non-negative matrix factorisation by multiplicative updates (Lee & Seung 2001, Frobenius loss), in torch.

``A ≈ U W`` with ``A`` [M, C] ≥ 0, coefficients ``U`` [M, k] ≥ 0 and concepts ``W`` [k, C] ≥ 0, each concept row
scaled to unit norm (the scale moves into ``U``). Computed in float64 on the CPU from a seeded start: the same
inputs and seed give the same factors on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import ConceptError

EPS = 1e-12


@dataclass(frozen=True)
class NMF:
    """``coefficients`` [M, k], ``concepts`` [k, C] (rows of unit norm) and the relative reconstruction error."""

    coefficients: torch.Tensor
    concepts: torch.Tensor
    relative_error: float


def _check(a: torch.Tensor) -> torch.Tensor:
    if a.dim() != 2 or not torch.isfinite(a).all():
        raise ConceptError("The activations to factorise must be a finite [samples, channels] matrix.")
    return a.detach().to("cpu", torch.float64).clamp_min(0.0)


def factorise(a: torch.Tensor, rank: int, *, iterations: int = 500, seed: int = 0) -> NMF:
    """Factorise non-negative ``a`` [M, C] (negatives are clipped to 0) into ``rank`` concepts."""
    a = _check(a)
    m, c = a.shape
    if not 1 <= rank <= min(m, c):
        raise ConceptError(f"{rank} concepts cannot be found in {m} samples of {c} channels; "
                           f"choose between 1 and {min(m, c)}.")
    gen = torch.Generator().manual_seed(seed)
    scale = (a.mean() / rank).sqrt().clamp_min(EPS)
    u = torch.rand(m, rank, generator=gen, dtype=torch.float64) * scale + EPS
    w = torch.rand(rank, c, generator=gen, dtype=torch.float64) * scale + EPS
    for _ in range(iterations):
        w *= (u.T @ a) / (u.T @ u @ w + EPS)
        u *= (a @ w.T) / (u @ (w @ w.T) + EPS)
    norm = w.norm(dim=1, keepdim=True).clamp_min(EPS)
    w, u = w / norm, u * norm.T
    err = float((a - u @ w).norm() / a.norm().clamp_min(EPS))
    return NMF(u.float(), w.float(), err)


def transform(a: torch.Tensor, concepts: torch.Tensor, *, iterations: int = 300) -> torch.Tensor:
    """Non-negative coefficients ``U`` [M, k] with ``a ≈ U concepts`` for fixed ``concepts`` [k, C] (the
    multiplicative update for ``U`` alone, from a constant start: deterministic without a seed)."""
    a = _check(a)
    w = concepts.detach().to("cpu", torch.float64)
    u = torch.full((a.shape[0], w.shape[0]), 1.0 / max(w.shape[0], 1), dtype=torch.float64)
    gram, proj = w @ w.T, a @ w.T
    for _ in range(iterations):
        u *= proj / (u @ gram + EPS)
    return u.float()
