"""XRAI: Integrated Gradients from black and from white, summed over image regions merged greedily by density."""

from __future__ import annotations

import numpy as np
import torch

from ..models.spec import ModelSpec
from ..registry import Cost, Diagnostic, ParamSpec, Progress, explainer
from ..result import ExplainerResult
from .integrated_gradients import nodes
from .pixel_paths import COMPLETENESS, completeness, first_pass, integrate
from .xrai_regions import merge, segment_masks

RULES = ("gausslegendre", "linspace")
ALGORITHMS = ("full", "fast")
IG_SHARE = 0.9  # of the progress bar: the IG passes; the regions take the rest


def quadrature(steps: int, rule: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Points on [0, 1] and weights: Gauss-Legendre, or PAIR saliency's 'linspace' (``steps`` evenly spaced points,
    both ends included, each weighted 1/steps)."""
    if rule == "linspace":
        return torch.linspace(0, 1, steps, dtype=torch.float64).float(), torch.full((steps,), 1.0 / steps)
    return nodes(steps, rule)


@explainer(
    "xrai", title="XRAI", family="gradient", signed=True, reports_logits=True,
    summary="Integrated Gradients (from black and from white) summed over image regions: segments at several "
            "scales are added greedily by attribution per pixel, so the map ranks whole regions, not pixels.",
    reference="Kapishnikov, Bolukbasi, Viégas & Terry 2019, 'XRAI: Better Attributions Through Regions', ICCV. "
              "arXiv:1906.02825",
    cost=Cost(1, 1, per="steps", count=lambda _p, _size: 2, count_label="baselines"),
    diagnostics=COMPLETENESS + (
        Diagnostic("segments", "XRAI regions and the top 5", show="segments", weights="region_gains"),
        Diagnostic("region_gains", "Attribution per pixel of each region", show="data"),
    ),
    params=(
        ParamSpec("steps", "int", 50, "IG steps per baseline", "Points on each of the two IG paths (black, white); "
                  "more is more exact and slower.", 2, 512, 1),
        ParamSpec("rule", "choice", "gausslegendre", "Integration rule", "Gauss-Legendre converges fastest; "
                  "'linspace' is PAIR saliency's (evenly spaced points, both ends included).", choices=RULES),
        ParamSpec("algorithm", "choice", "full", "Merge", "full: at each step add the segment whose new pixels have "
                  "the highest mean attribution; fast: rank segments once by their own mean (PAIR's two variants).",
                  choices=ALGORITHMS),
        ParamSpec("dilation", "int", 5, "Segment dilation (px)", "Radius of the disk each segment is dilated by "
                  "(PAIR: 5, at the model's input resolution).", 0, 20, 1),
        ParamSpec("min_pixels", "int", 50, "Minimum new pixels", "A segment that would add fewer new pixels than "
                  "this is dropped (PAIR: 50).", 1, 10000, 1),
    ),
)
def xrai(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, steps: int = 50, rule: str = "gausslegendre",
         algorithm: str = "full", dilation: int = 5, min_pixels: int = 50,
         progress: Progress | None = None) -> ExplainerResult:
    """XRAI (Kapishnikov et al. 2019, arXiv:1906.02825) as PAIR saliency 0.2.1's, on the mean of two IG attributions.

    IG runs in pixel space from black (0) and from white (1) — PAIR's default baselines are the image's own minimum
    and maximum, which are black and white for an image that spans the range — and the two are averaged; the
    channel maximum gives one attribution per pixel. Felzenszwalb segments at scales 50..1200 (see
    :mod:`xrai_regions`) are added greedily; each pixel's value is the mean attribution of the pixels added with
    it, so the map is constant on each region. Cost: 2 × steps gradient passes plus the segmentation (6
    Felzenszwalb runs at 224×224) and the merge, on the CPU. The first forward runs on x (it resolves ``TOP1``).
    Diagnostics: 'segments' (regions ranked from 0), 'region_gains', and the IG 'completeness_gap' against
    f(x) − mean(f(black), f(white)).
    """
    pix = model.denormalise(x).float()
    ends = [torch.zeros_like(pix), torch.ones_like(pix)]
    fwd, start_scores = first_pass(model, x, target, ends)
    alphas, weights = (t.to(x.device) for t in quadrature(steps, rule))

    def point(b: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        base = (k // steps).to(pix.dtype).view(-1, 1, 1, 1)  # 0: black, 1: white
        s = k % steps
        diff = pix[b] - base
        return base + alphas[s].view(-1, 1, 1, 1) * diff, diff * (weights[s] / 2).view(-1, 1, 1, 1)

    sub = None if progress is None else (lambda f, text: progress(IG_SHARE * f, text))
    attr = integrate(model, pix, fwd.target, 2 * steps, point, progress=sub, desc="IG steps")
    maps, labels, gains = [], [], []
    per_pixel = attr.amax(1).double().cpu().numpy()
    images = pix.permute(0, 2, 3, 1).double().cpu().numpy()
    for b in range(len(x)):
        regions = merge(per_pixel[b], segment_masks(images[b], dilation), min_pixels, fast=algorithm == "fast")
        maps.append(regions.values)
        labels.append(regions.labels)
        gains.append(regions.gains)
        if progress is not None:
            progress(IG_SHARE + (1 - IG_SHARE) * (b + 1) / len(x), f"XRAI regions {b + 1}/{len(x)}")
    out = torch.from_numpy(np.stack(maps)).float().to(x.device)
    return ExplainerResult.of(out, fwd, {**completeness(attr, fwd, start_scores), "segments": labels,
                                         "region_gains": gains})
