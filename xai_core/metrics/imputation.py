"""Noisy linear imputation (Rong, Leemann, Borisov, Kasneci & Kasneci 2022, 'A Consistent and Efficient Evaluation
Strategy for Attribution Methods', ICML, arXiv:2202.00449): every removed pixel becomes the weighted mean of its eight
neighbours (1/6 for the four sharing a side, 1/12 for the diagonal ones; neighbours outside the image are left out),
removed or not, so the removed pixels solve one sparse linear system; then Gaussian noise is added to them. It fills
holes with what their surroundings predict, so the model cannot read the shape of the removed set (ROAD's point)."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csc_matrix
from scipy.sparse.linalg import spsolve

__all__ = ["NEIGHBOURS", "impute"]

NEIGHBOURS = ((1, 1, 1 / 12), (0, 1, 1 / 6), (-1, 1, 1 / 12), (1, -1, 1 / 12), (0, -1, 1 / 6), (-1, -1, 1 / 12),
              (1, 0, 1 / 6), (-1, 0, 1 / 6))  # (row offset, column offset, weight)


def impute(x: np.ndarray, removed: np.ndarray, noise: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
    """``x`` [C, H, W] with the pixels where ``removed`` [H, W] is True linearly imputed from their neighbours (all
    channels at once, float64), plus ``noise`` × standard normal noise from ``rng`` on the imputed values."""
    c, h, w = x.shape
    idx = np.flatnonzero(removed)
    out = np.array(x, dtype=np.float64, copy=True).reshape(c, h * w)
    if len(idx) == 0:
        return out.reshape(c, h, w)
    if len(idx) == h * w:
        raise ValueError("Linear imputation needs at least one pixel kept.")
    var = np.full(h * w, -1)
    var[idx] = np.arange(len(idx))
    r, col = np.divmod(idx, w)
    weight_sum = np.zeros(len(idx))
    rhs = np.zeros((len(idx), c))
    rows, cols, vals = [], [], []
    for dr, dc, wt in NEIGHBOURS:
        rr, cc = r + dr, col + dc
        ok = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        eq = np.flatnonzero(ok)
        nb = rr[ok] * w + cc[ok]
        weight_sum[eq] += wt
        unknown = var[nb] >= 0
        rows.append(eq[unknown])
        cols.append(var[nb[unknown]])
        vals.append(np.full(int(unknown.sum()), wt))
        rhs[eq[~unknown]] -= wt * out[:, nb[~unknown]].T  # each equation once per offset: no repeated index
    n = len(idx)
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    vals.append(-weight_sum)
    a = csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    solved = spsolve(a, rhs).reshape(n, c)
    if noise > 0:
        solved = solved + noise * (rng or np.random.default_rng(0)).standard_normal(solved.shape)
    out[:, idx] = solved.T
    return out.reshape(c, h, w)
