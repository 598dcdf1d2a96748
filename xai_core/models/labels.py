"""Class names: ImageNet's from torchvision's weight metadata; user label files (text or JSON) are parsed by the
upload boundary (:func:`xai_core.untrusted.parse_labels`: sizes and JSON depth bounded) and re-exported here."""

from __future__ import annotations

import functools

from ..untrusted.text import parse_labels

__all__ = ["imagenet_labels", "parse_labels"]


@functools.cache
def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names (shipped in torchvision; no download)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
