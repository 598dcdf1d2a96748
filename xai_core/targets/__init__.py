"""Targets beyond a class logit (see :mod:`.values`) and binding them to a model (:mod:`.bind`)."""

from .bind import Targeted, bind, describe_output
from .values import (
    DETECTION_SCORING,
    KINDS,
    PROMPT_CHARS,
    TARGET_TYPES,
    DetectionTarget,
    PromptTarget,
    RegionTarget,
    SimilarityTarget,
    Target,
    clean_prompt,
    why_not,
)

__all__ = ["DETECTION_SCORING", "KINDS", "PROMPT_CHARS", "TARGET_TYPES", "DetectionTarget", "PromptTarget",
           "RegionTarget", "SimilarityTarget", "Target", "Targeted", "bind", "clean_prompt", "describe_output", "why_not"]
