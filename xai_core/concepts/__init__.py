"""Concept explanations on the Workbench: discover (CRAFT-style NMF), see (reference crops, concept maps), test
(TCAV) and correct (P-ClArC projection), for any model whose layer gives feature maps."""

from .clarc import BeforeAfter, before_after, project, projected, reference_level
from .craft import Concept, Crop, Discovery, concept_maps, discover
from .errors import ConceptError
from .tcav import TcavResult, tcav

__all__ = ["BeforeAfter", "Concept", "ConceptError", "Crop", "Discovery", "TcavResult", "before_after", "concept_maps",
           "discover", "project", "projected", "reference_level", "tcav"]
