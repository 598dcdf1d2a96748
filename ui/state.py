"""Session-state keys and the context the sidebar hands to every page."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xai_core import ModelSpec

LAST_IMAGE = "xai_last_image"
# The Explain page's choices (explainers, their parameters, target, seed), kept for the Evaluate page:
# widget state does not survive a page switch.
CHOICE = "xai_choice"


@dataclass
class Context:
    """What the sidebar picked: the model (and its cache key) and the image (and its digest)."""

    model: ModelSpec
    model_key: str
    image: np.ndarray
    image_name: str
    digest: str
    notes: list[str] = field(default_factory=list)

