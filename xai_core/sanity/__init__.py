"""Sanity checks for explanations: model randomisation (Adebayo et al. 2018), cascading or one stage at a time,
over several seeds, with Spearman (absolute and signed), SSIM and HOG similarity to the trained model's map at
the map's own resolution; the random-logit check (Sixt et al. 2020); and the input-manipulation attack on
explanations with the softplus defence.

    from xai_core import sanity
    r = sanity.model_randomisation(model, image, [("gradient", {}), ("guided_backprop", {})], seeds=3)
    r.spread("Guided Backprop")[0].text(); r.verdict("Gradient (saliency)")
    q = sanity.random_logit(model, image, [("gradient", {})], seeds=3); q.verdict("Gradient (saliency)")
    a = sanity.manipulate(model, image, target_map)    # Dombrowski et al. 2019; a.success, a.defended_success
"""

from .attack import AttackResult, manipulate, smoothed
from .check import MAX_SEEDS, SanityReport, copy_seed, model_randomisation, randomisation_stream
from .cost import CheckCost, random_logit_cost, randomisation_cost
from .logit_check import RANDOM_LOGIT_REFERENCE, RandomLogitReport, random_class, random_logit
from .randomise import forward_order, randomised, stages, weighted_layers
from .similarity import MEASURE, RESOLUTION, SIMILARITIES, hog_similarity, is_constant, spearman_abs, spearman_signed, ssim
from .target_check import PROMPTS, random_target, random_target_check
from .verdict import DEPENDS, INSENSITIVE, Spread

__all__ = ["DEPENDS", "INSENSITIVE", "MAX_SEEDS", "MEASURE", "RANDOM_LOGIT_REFERENCE", "RESOLUTION", "SIMILARITIES",
           "AttackResult", "CheckCost", "RandomLogitReport", "SanityReport", "Spread", "copy_seed", "forward_order",
           "hog_similarity", "is_constant", "manipulate", "model_randomisation", "random_class", "random_logit",
           "random_logit_cost", "randomisation_cost", "randomisation_stream", "randomised", "smoothed", "spearman_abs",
           "spearman_signed", "ssim", "stages", "weighted_layers", "PROMPTS", "random_target", "random_target_check"]
