"""Performance Information Curves (Kapishnikov, Bolukbasi, Viégas & Terry, ICCV 2019): re-draw the image from its
most salient pixels (plus 1% at random) by linear interpolation, measure how much information that image holds (its
lossless WebP size, between the fully blurred image and the original) and how much of the model's confidence (SIC:
softmax) or correctness (AIC: still top-1) it restores; the area under that curve."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.interpolate import interp1d

from ..models.spec import ModelSpec
from .bokeh import THRESHOLDS, bokeh_set
from .registry import Outputs, Probe, metric

REF = ("Kapishnikov, Bolukbasi, Viégas & Terry 2019, 'XRAI: Better Attributions Through Regions', ICCV (the PIC "
       "metrics, sec. 4). arXiv:1906.02825")
PASSES = f"{2 + len(THRESHOLDS)} forward passes (shared by SIC and AIC), after {1 + len(THRESHOLDS)} triangulations"
POINTS = 1000  # points of the interpolated curve (PAIR's num_data_points)


def pic_auc(preds: np.ndarray, sizes: list[int], notes: list[str]) -> float:
    """Area under the PIC curve of predictions ``preds`` and WebP ``sizes`` of [image, fully blurred, bokeh at each
    threshold]: information and prediction normalised between the blurred image (0) and the image (1) and clipped, the
    prediction kept monotonous (its running maximum, as the paper), interpolated on 1000 points plus 1.0 (PAIR's
    ``compute_pic_metric``). NaN with a note where PAIR refuses the image."""
    orig_p, blur_p = float(preds[0]), float(preds[1])
    orig_h, blur_h = sizes[0], sizes[1]
    if blur_h >= orig_h:
        notes.append("undefined: the blurred image compresses no better than the image (a flat image?).")
        return math.nan
    if blur_p >= orig_p:
        notes.append("undefined: the model is as sure of the class on the fully blurred image as on the image.")
        return math.nan
    points, best = [], 0.0
    for h, p in zip(sizes[2:], preds[2:], strict=True):
        info = min(max((h - blur_h) / (orig_h - blur_h), 0.0), 1.0)
        best = max(best, min(max((float(p) - blur_p) / (orig_p - blur_p), 0.0), 1.0))
        points.append((info, best))
    xs, ys = zip(*points, (0.0, 0.0), (1.0, 1.0), strict=True)
    curve_x = np.linspace(0.0, 1.0, POINTS, endpoint=False)
    curve_y = np.append(interp1d(xs, ys)(curve_x), 1.0)
    return float(np.trapezoid(curve_y, np.append(curve_x, 1.0)))


def pic_probe(model: ModelSpec, x: torch.Tensor, m: torch.Tensor, seed: int, accuracy: bool) -> Probe:
    """The PIC inputs of the model input ``x`` as a uint8 image (its own resolution) and the map ``m``."""
    image = (model.denormalise(x)[0].clamp(0, 1).permute(1, 2, 0).float().cpu().numpy() * 255 + 0.5).astype(np.uint8)
    b = bokeh_set(image, m.detach().double().cpu().numpy(), seed)
    notes: list[str] = []

    def make(lo: int, hi: int) -> torch.Tensor:
        batch = torch.from_numpy(np.stack(b.images()[lo:hi])).permute(0, 3, 1, 2).float() / 255
        return model.normalise(batch.to(x.device))

    def area(o: Outputs) -> float:
        return pic_auc(o.top1.astype(float) if accuracy else o.probability, b.sizes(), notes)

    return Probe(2 + len(THRESHOLDS), make, area, share=("pic", seed), notes=notes)


@metric("sic", title="Softmax Information Curve (PIC)", short="SIC AUC", order=46, kind="probe", better="higher",
        default=False, passes=PASSES, reference=REF,
        summary="How fast the class probability comes back as the image is re-drawn from its most salient pixels, "
                "per bit of information restored; area under that curve.")
def sic(model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, *, seed: int = 0) -> Probe:
    """SIC AUC (Kapishnikov et al. 2019, arXiv:1906.02825): the PIC of the class's softmax probability over the
    normalised information of bokeh images built from the top 0.5%…75% of the map. Higher = more faithful."""
    return pic_probe(model, x, small_map, seed, accuracy=False)


@metric("aic", title="Accuracy Information Curve (PIC)", short="AIC AUC", order=48, kind="probe", better="higher",
        default=False, passes=PASSES, reference=REF,
        summary="How soon the class is top-1 again as the image is re-drawn from its most salient pixels, per bit of "
                "information restored; area under that curve.")
def aic(model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, *, seed: int = 0) -> Probe:
    """AIC AUC (Kapishnikov et al. 2019, arXiv:1906.02825): the PIC of "the class is top-1" (1 or 0). Higher = more
    faithful; undefined (NaN) when the class is not top-1 on the image itself."""
    return pic_probe(model, x, small_map, seed, accuracy=True)
