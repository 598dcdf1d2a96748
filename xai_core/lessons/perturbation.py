"""Lesson 4: perturbation maps — RISE's masks and its running average, LIME's superpixels and its seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ExplainerError
from ..explainers.common import reference_input
from ..explainers.rise import smooth_masks
from ..request import ExplainRequest, Explanation
from ..workbench import Workbench
from .common import correlation, to_uint8


@dataclass
class RiseSteps:
    """RISE computed in the open with the explainer's own draws (same seed, same masks): a few masked inputs with
    their class probability, and the running average Σ P_i M_i / (n p) after ``checkpoints`` masks."""

    masked: np.ndarray  # uint8 [k, H, W, 3]
    probabilities: np.ndarray  # [masks]
    checkpoints: list[int]
    running: np.ndarray  # [len(checkpoints), H, W]


def rise_steps(wb: Workbench, image: np.ndarray, target: int, *, masks: int = 200, cells: int = 7, p: float = 0.5,
               seed: int = 0, checkpoints: tuple[int, ...] = (10, 25, 50, 100, 200), show: int = 4) -> RiseSteps:
    """The masks are drawn exactly as :func:`xai_core.explainers.rise.rise` draws them, so the last running
    average equals the RISE map with the same parameters."""
    gen = torch.Generator().manual_seed(seed)
    with wb.session() as model:
        x = model.preprocess(image).to(model.device)
        h, w = x.shape[-2:]
        grids = (torch.rand((masks, cells, cells), generator=gen) < p).float().to(x.device)
        shifts = torch.stack([torch.randint(0, -(-h // cells), (masks,), generator=gen),
                              torch.randint(0, -(-w // cells), (masks,), generator=gen)], 1).to(x.device)
        black = reference_input(model, x, "black")
        probs, masked = [], None
        total = torch.zeros(h, w, device=x.device)
        marks = sorted({min(int(c), masks) for c in checkpoints if c > 0} | {masks})
        running = []
        for start in range(0, masks, 64):
            m = smooth_masks(grids[start:start + 64], shifts[start:start + 64], (h, w))
            xin = x * m + black * (1 - m)
            pr = torch.softmax(wb.logits(xin), 1)[:, target].float()
            if masked is None:
                masked = to_uint8(model, xin[:show])
            for i in range(len(m)):
                total += pr[i] * m[i, 0]
                if start + i + 1 in marks:
                    running.append((total / ((start + i + 1) * p)).cpu().numpy())
            probs.append(pr.cpu())
    if masked is None:  # the loop never ran
        raise ExplainerError("RISE needs at least one mask; raise the number of masks.")
    return RiseSteps(masked, torch.cat(probs).numpy(), marks, np.stack(running))


@dataclass
class LimeSeeds:
    """LIME maps of one image with several seeds, and how much each pair agrees (Pearson correlation)."""

    seeds: list[int]
    explanations: list[Explanation]
    agreement: np.ndarray  # [n, n]

    @property
    def mean_agreement(self) -> float:
        n = len(self.seeds)
        return float((self.agreement.sum() - n) / (n * n - n)) if n > 1 else 1.0


def lime_seeds(wb: Workbench, image: np.ndarray, target: int, *, seeds: tuple[int, ...] = (0, 1, 2),
               samples: int = 100, n_segments: int = 40) -> LimeSeeds:
    """LIME (the registered explainer) once per seed; the segments and the surrogate's weights are in each
    explanation's diagnostics."""
    found = [wb.explain(image, ExplainRequest.make("lime", target, {"samples": samples, "n_segments": n_segments}, s))
             for s in seeds]
    n = len(found)
    agree = np.array([[correlation(found[i].map, found[j].map) for j in range(n)] for i in range(n)])
    return LimeSeeds(list(seeds), found, agree)
