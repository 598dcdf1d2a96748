"""Sanity checks for explanations (Adebayo et al. 2018): model randomisation, cascading or one stage at a
time, with Spearman (absolute and signed), SSIM and HOG similarity to the trained model's map;
and the input-manipulation attack on explanations with the softplus defence.

    from xai_core import sanity
    r = sanity.model_randomisation(model, image, [("gradient", {}), ("guided_backprop", {})])
    r.similarity["Guided Backprop"]["Spearman |·|"]; r.verdict("Gradient (saliency)")
    a = sanity.manipulate(model, image, target_map)    # Dombrowski et al. 2019; a.success, a.defended_success
"""

from .attack import AttackResult, manipulate, smoothed
from .check import DEPENDS, INSENSITIVE, SanityReport, model_randomisation
from .randomise import forward_order, randomised, stages, weighted_layers
from .similarity import SIMILARITIES, hog_similarity, is_constant, spearman_abs, spearman_signed, ssim

__all__ = ["DEPENDS", "INSENSITIVE", "SIMILARITIES", "AttackResult", "SanityReport", "forward_order",
           "hog_similarity", "is_constant", "manipulate", "model_randomisation", "randomised", "smoothed",
           "spearman_abs", "spearman_signed", "ssim", "stages", "weighted_layers"]
