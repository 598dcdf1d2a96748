"""The lab's synthetic images as sample images (64×64, made on the fly from fixed seeds): a horse with the
'(c)foto' tag, the same horse without it, and another shape with the tag pasted on — the Clever Hans case for
every page and every lab model (the classifier, the segmenter, the detector)."""

from __future__ import annotations

from functools import cache

import numpy as np

from ..images import register_sample
from .data import add_tag, make_dataset

SEED = 11


@cache
def _pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tagged horse, the same horse untagged, a tagged other shape). The first horse of the set is drawn before any
    tag consumed the generator, so both sets hold the same picture there."""
    tagged, plain = make_dataset(12, seed=SEED, tag_fraction=1.0), make_dataset(12, seed=SEED, tag_fraction=0.0)
    i = int(np.flatnonzero(tagged.labels == 1)[0])
    j = int(np.flatnonzero(tagged.labels == 0)[0])
    other, _ = add_tag(plain.images[j], np.random.default_rng(SEED))
    return tagged.images[i], plain.images[i], other


register_sample("Lab: horse with the tag", lambda: _pair()[0].copy())
register_sample("Lab: same horse, no tag", lambda: _pair()[1].copy())
register_sample("Lab: other shape with the tag", lambda: _pair()[2].copy())
