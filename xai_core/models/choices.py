"""The user's layer choices over the ones a loader found: the CAM layer and, for attention explainers, which blocks.

``cam_layer`` names any module of the model (CAM methods read its output; token outputs go through the model's
``reshape``). ``attention_blocks`` N keeps the last N blocks of the model's :class:`~.layout.TokenLayout`: attention
rollout and Chefer et al.'s relevance then start at block L−N (the "start layer" of Chefer et al. 2021's CLIP
explanations, arXiv:2103.15679, which a CLIP ViT-B/16 needs set to its last blocks), LeGrad's layer count is taken
within them; 0 or None keeps every block.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import ModelLoadError
from ..untrusted.messages import shown
from .spec import ModelSpec


def apply(spec: ModelSpec, options: dict[str, Any]) -> ModelSpec:
    """``spec`` with ``options["cam_layer"]`` and ``options["attention_blocks"]`` applied (checked; in place)."""
    cam = options.get("cam_layer")
    if cam:
        try:
            spec.module.get_submodule(str(cam))
        except AttributeError:
            raise ModelLoadError(f"The model {spec.title} has no layer named {shown(repr(str(cam)), 80)}; leave the CAM layer "
                                 f"empty to use the one found ({spec.cam_layer or 'none'}).") from None
        spec.cam_layer = str(cam)
    n = options.get("attention_blocks")
    if n:
        lay = spec.tokens
        if lay is None:
            raise ModelLoadError(f"The model {spec.title} has no global self-attention blocks to choose from; leave the "
                                 "attention blocks at 0.")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ModelLoadError(f"The attention blocks must be a whole number of last blocks (0: all); it is "
                                 f"{shown(repr(n), 20)}.")
        k = min(n, len(lay.blocks))
        spec.tokens = dataclasses.replace(lay, blocks=lay.blocks[-k:], attentions=lay.attentions[-k:])
    return spec
