"""CRP's channels as a class's concepts, in the same :class:`~xai_core.concepts.craft.Discovery` shape as CRAFT's
directions, so a page, a report or P-ClArC can take either: the ``top`` channels of ``layer`` by their mean share of
the class's LRP relevance over a set (Achtibat et al., Nature Machine Intelligence 2023), each with its relevance
maximisation crops from the same set, its unit direction ``e_k`` (projecting it out is P-ClArC on one channel) and,
on an image, its conditional heatmap instead of a factorisation coefficient map.
"""

from __future__ import annotations

import math

import torch

from ..models.spec import ModelSpec
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .craft import Concept, Discovery, concept_maps
from .crp import concept_relevance, conditional_heatmaps
from .errors import require_images
from .relmax import relevance_maximisation

CRP_METHOD = "CRP: each channel's mean share of the class's LRP relevance at the layer (ε-z⁺-♭ rules)"
MIN_CRP_IMAGES = 3  # reference crops need a set, not one image


def _phase(progress: Progress | None, start: float, span: float) -> Progress | None:
    """Progress of one of the two passes (relevance, then references) as a part of the whole."""
    if progress is None:
        return None
    return lambda f, text: progress(start + span * f, text)


def crp_concepts(model: ModelSpec | Workbench, x: torch.Tensor, target: int, *, layer: str | None = None, top: int = 5,
                 top_crops: int = 10, composite: str = "epsilon_plus_flat",
                 progress: Progress | None = None) -> Discovery:
    """The ``top`` channels of ``layer`` (None: the CAM layer) with the largest mean share of class ``target``'s
    relevance over normalised images ``x`` [N, 3, H, W], most relevant first; each with its ``top_crops`` relevance
    maximisation crops from ``x``. One LRP pass per image for the shares, one per image and concept for the crops."""
    require_images(len(x), MIN_CRP_IMAGES, "The set", "relevance maximisation")
    wb = as_workbench(model)
    rel = concept_relevance(wb, x, int(target), layer, composite=composite, progress=_phase(progress, 0.0, 0.5))
    best = rel.top(top)
    channels = [k for k, _s in best]
    refs = relevance_maximisation(wb, x, int(target), rel.layer, channels, top=top_crops, composite=composite,
                                  progress=_phase(progress, 0.5, 0.5))
    mean_rel = rel.relevance.mean(0)
    width = rel.relevance.shape[1]
    concepts = tuple(Concept(k, torch.nn.functional.one_hot(torch.tensor(k), width).float(), float(mean_rel[k]), share,
                             refs.of(k).crops) for k, share in best)
    return Discovery(int(target), rel.layer, concepts, math.nan, importance_method=CRP_METHOD)


def is_crp(discovery: Discovery) -> bool:
    """Whether ``discovery`` holds CRP channels (:func:`crp_concepts`) rather than CRAFT directions."""
    return discovery.importance_method == CRP_METHOD


def maps_of(model: ModelSpec | Workbench, discovery: Discovery, x: torch.Tensor,
            composite: str = "epsilon_plus_flat") -> torch.Tensor:
    """Each concept's map on inputs ``x`` [N, k, H, W], in the order of ``discovery.concepts``: CRP's conditional
    heatmaps (signed pixel relevance through the channel) for CRP channels, CRAFT's coefficient maps otherwise."""
    if not is_crp(discovery):
        return concept_maps(model, discovery, x)
    return conditional_heatmaps(model, x, discovery.target, discovery.layer, [c.index for c in discovery.concepts],
                                composite=composite)
