"""Focus (Arias-Duart, Parés, Garcia-Gasulla & Giménez-Ábalos, 2022): explain a 2×2 mosaic whose target-class tiles
are known (the image itself twice, two images the model puts in other classes) and measure the share of the positive
relevance that lands on the target tiles. No boxes needed; the explainer runs again on the mosaics."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..models.spec import ModelSpec
from ..types import ParamSpec
from .registry import Rerun, metric

QUADRANTS = ((0, 0), (0, 1), (1, 0), (1, 1))  # (row, column): Quantus's order top-left, top-right, bottom-left, -right


def quadrant_masks(h: int, w: int) -> torch.Tensor:
    """[4, H, W] booleans of the quadrants, split at H // 2 and W // 2 (Quantus 0.6, after its PR #357 fixed the
    height/width mix-up of earlier versions)."""
    masks = torch.zeros(4, h, w, dtype=torch.bool)
    for q, (r, c) in enumerate(QUADRANTS):
        masks[q, r * (h // 2):(h // 2 if r == 0 else h), c * (w // 2):(w // 2 if c == 0 else w)] = True
    return masks


def mosaic(tiles: list[torch.Tensor], h: int, w: int) -> torch.Tensor:
    """Four model inputs [1, 3, H, W] (quadrant order of :data:`QUADRANTS`) shrunk into their quadrants of one
    [1, 3, H, W] input (bilinear with antialiasing; the normalisation is affine, so shrinking normalised values is
    shrinking the pixels)."""
    out = tiles[0].new_empty(1, tiles[0].shape[1], h, w)
    for t, (r, c) in zip(tiles, QUADRANTS, strict=True):
        rows = slice(0, h // 2) if r == 0 else slice(h // 2, h)
        cols = slice(0, w // 2) if c == 0 else slice(w // 2, w)
        size = (rows.stop - rows.start, cols.stop - cols.start)
        out[..., rows, cols] = F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)
    return out


def arrangement(seed: int, j: int) -> set[int]:
    """The two quadrants (indices into :data:`QUADRANTS`) that hold the image in mosaic ``j``: seeded, per mosaic."""
    return set(np.random.default_rng([seed, j]).permutation(4)[:2].tolist())


def focus_score(e: torch.Tensor, target: torch.Tensor) -> float:
    """Positive relevance of ``e`` [H, W] on the ``target`` pixels / all positive relevance (Quantus's 1e-9 below)."""
    pos = e.double().clamp(min=0)
    return float((pos * target).sum() / (pos.sum() + 1e-9))


@metric("focus", title="Focus (mosaics)", short="Focus", order=84, kind="rerun", better="higher", default=False,
        passes="mosaics explanations (each the explainer's own passes)",
        needs="other images the model puts in other classes (the bundled samples, or the set)",
        summary="Share of the positive relevance on the target-class tiles of 2×2 mosaics (image twice, two images of "
                "other classes); 0.5 = no better than chance.",
        reference="Arias-Duart, Parés, Garcia-Gasulla & Giménez-Ábalos 2022, 'Focus! Rating XAI Methods and Finding "
                  "Biases', FUZZ-IEEE. arXiv:2203.02928",
        params=(ParamSpec("mosaics", "int", 2, "Mosaics", "How many mosaics, each with its own seeded arrangement "
                          "and other images.", 1, 16, 1),))
def focus(model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, rerun: Rerun, *, mosaics: int = 2,
          seed: int = 0) -> float:
    """Focus (Arias-Duart et al. 2022, arXiv:2203.02928): mean over mosaics of the positive relevance on the two
    tiles holding the image, over all positive relevance, the explainer re-run on each mosaic for the evaluated class.
    Higher = the map points at the class's evidence, not at whatever is in the input."""
    h, w = x.shape[-2:]
    others = rerun.others(2 * mosaics, seed)
    if len(others) == 0:
        rerun.notes.append("no other image is classified as another class: nothing to build a mosaic with.")
        return math.nan
    masks = quadrant_masks(h, w).to(x.device)
    inputs, targets = [], []
    for j in range(mosaics):
        mine = arrangement(seed, j)
        picks = iter(range(2 * j, 2 * j + 2))
        tiles = [x if q in mine else others[next(picks) % len(others)][None] for q in range(4)]
        inputs.append(mosaic(tiles, h, w))
        targets.append(masks[sorted(mine)].any(0))
    maps = rerun.explain(torch.cat(inputs))
    return float(np.mean([focus_score(m, t) for m, t in zip(maps, targets, strict=True)]))
