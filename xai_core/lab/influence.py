"""Which training images drove a prediction? Influence functions on the last layer (Koh & Liang 2017,
'Understanding Black-box Predictions via Influence Functions', ICML, arXiv:1703.04730), with the exact
inverse Hessian or LiSSA, and TracIn (Pruthi et al. 2020, arXiv:2002.08484) as the fast alternative.

The lab CNN's head is one linear layer on 64 pooled features, so its 130 parameters have an exact Hessian.
Scores are 'helpfulness': how much up-weighting a training image lowers the loss of the test prediction.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..models.spec import ModelSpec
from ..workbench import Workbench, as_workbench
from .model import lab_cnn, to_tensor


def features(model: ModelSpec | Workbench, images: np.ndarray) -> torch.Tensor:
    """The pooled features entering the linear head, [N, 64] (float64 for the Hessian algebra)."""
    with as_workbench(model).session() as spec, torch.inference_mode():
        m = lab_cnn(spec.module)
        x = to_tensor(images).to(spec.device).contiguous(memory_format=torch.channels_last)
        return m.flat(m.pool(m.features(x))).double().cpu()


def _grads(w: torch.Tensor, b: torch.Tensor, phi: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example gradient of the cross-entropy w.r.t. (W, b), flattened: [N, C·D + C]."""
    p = torch.softmax(phi @ w.T + b, 1)
    r = p - F.one_hot(y, w.shape[0]).double()  # dL/dz
    return torch.cat([(r[:, :, None] * phi[:, None, :]).flatten(1), r], 1)


def _hessian(w: torch.Tensor, b: torch.Tensor, phi: torch.Tensor, damping: float) -> torch.Tensor:
    """Mean Hessian of the cross-entropy w.r.t. (W, b) over the training set, plus ``damping``·I."""
    p = torch.softmax(phi @ w.T + b, 1)
    aug = torch.cat([phi, torch.ones(len(phi), 1, dtype=phi.dtype)], 1)  # [N, D+1]
    s = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]  # [N, C, C]
    h = torch.einsum("nij,nk,nl->ikjl", s, aug, aug) / len(phi)  # [C, D+1, C, D+1]
    c, d1 = w.shape[0], aug.shape[1]
    h = h.reshape(c * d1, c * d1)
    # Reorder (class, feature|bias) → the gradient layout (all weights, then the biases).
    order = [i * d1 + j for i in range(c) for j in range(d1 - 1)] + [i * d1 + d1 - 1 for i in range(c)]
    h = h[order][:, order]
    return h + damping * torch.eye(len(h), dtype=h.dtype)


def _lissa(h: torch.Tensor, v: torch.Tensor, iterations: int = 3000, scale: float | None = None) -> torch.Tensor:
    """H⁻¹v by the LiSSA recursion x ← v + (I − H/scale)·x, divided by scale (full-batch Hessian here)."""
    scale = scale or float(torch.linalg.matrix_norm(h, 2)) * 1.1
    x = v.clone()
    for _ in range(iterations):
        x = v + x - (h @ x) / scale
    return x / scale


METHODS = ("relatif", "exact", "lissa", "tracin", "tracin_cos")


def helpfulness(model: ModelSpec | Workbench, train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray,
                test_labels: np.ndarray, *, method: Literal["relatif", "exact", "lissa", "tracin", "tracin_cos"] = "relatif",
                damping: float = 1e-3) -> np.ndarray:
    """[n_test, n_train] scores; positive = the training image supports the test label (up-weighting it lowers
    the test loss). ``test_labels`` are usually the model's own predictions.

    * ``exact`` / ``lissa``: −I_up,loss of Koh & Liang with H⁻¹ solved exactly or by LiSSA.
    * ``relatif``: the same divided by ‖H⁻¹∇L(z)‖ (Barshan et al. 2020, 'RelatIF', arXiv:2003.11630).
    * ``tracin`` / ``tracin_cos``: ∇L(z_test)·∇L(z) at the final weights, or its cosine (Pruthi et al. 2020).

    Measured on the lab: raw influence is dominated by training images the model gets *wrong* (their loss
    gradients are large), so for a tag-driven 'horse' the top-10 helpful images were 6% tagged; well-fit tagged
    horses have tiny gradients. The normalised variants (RelatIF, gradient cosine) put tagged horses first (100%).
    """
    with as_workbench(model).session() as spec:
        fc = lab_cnn(spec.module).fc
        w, b = fc.weight.detach().double().cpu(), fc.bias.detach().double().cpu()
    phi_tr, phi_te = features(model, train_images), features(model, test_images)
    g_tr = _grads(w, b, phi_tr, torch.as_tensor(train_labels))
    g_te = _grads(w, b, phi_te, torch.as_tensor(test_labels))
    if method in ("tracin", "tracin_cos"):
        if method == "tracin_cos":
            g_tr, g_te = F.normalize(g_tr, dim=1), F.normalize(g_te, dim=1)
        return (g_te @ g_tr.T).numpy()
    h = _hessian(w, b, phi_tr, damping)
    if method == "relatif":
        hg = torch.linalg.solve(h, g_tr.T).T  # H⁻¹∇L(z) for every training image
        return ((g_te @ hg.T) / hg.norm(dim=1).clamp_min(1e-12)[None]).numpy()
    s_test = torch.linalg.solve(h, g_te.T) if method == "exact" else _lissa(h, g_te.T)
    return (s_test.T @ g_tr.T).numpy()
