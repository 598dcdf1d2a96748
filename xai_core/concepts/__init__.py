"""Concept explanations on the Workbench: discover (CRAFT-style NMF), see (reference crops, concept maps), explain
(CRP: concept relevance, conditional heatmaps, relevance-maximisation references), test (TCAV) and correct (P-ClArC
projection; A-ClArC fine-tuning of a copy of the lab CNN), for any model whose layer gives feature maps."""

from .aclarc import AclarcResult, Artifact, aclarc, artifact_added, artifact_level, before_after_aclarc, lab_numbers
from .aclarc_input import Tuning, aclarc_input
from .artifact_pixels import ArtifactPixels, find_artifact_pixels, pasted
from .clarc import BeforeAfter, before_after, co_located, project, projected, reference_level, reference_levels
from .craft import FACTORISATIONS, MIN_IMAGES, Concept, Crop, Discovery, concept_maps, discover
from .crp import ConceptRelevance, concept_relevance, conditional_heatmaps
from .crp_concepts import CRP_METHOD, crp_concepts, is_crp, maps_of
from .errors import ConceptError
from .nmf import negative_share
from .relmax import References, RelMax, relevance_maximisation
from .tcav import CAV_METHODS, TcavResult, fast_cav, tcav

__all__ = [
    "CAV_METHODS", "CRP_METHOD", "FACTORISATIONS", "MIN_IMAGES", "AclarcResult", "Artifact", "ArtifactPixels",
    "BeforeAfter", "Concept", "ConceptError", "ConceptRelevance", "Crop", "Discovery", "References", "RelMax",
    "TcavResult", "Tuning", "aclarc", "aclarc_input", "artifact_added", "artifact_level", "before_after",
    "before_after_aclarc", "co_located", "concept_maps", "concept_relevance", "conditional_heatmaps", "crp_concepts",
    "discover", "fast_cav", "find_artifact_pixels", "is_crp", "lab_numbers", "maps_of", "negative_share", "pasted",
    "project", "projected", "reference_level", "reference_levels", "relevance_maximisation", "tcav",
]
