"""The one error concept analyses raise on purpose, and the minimum set sizes they check."""

from __future__ import annotations

from ..errors import XaiError


class ConceptError(XaiError):
    """A concept analysis cannot run on what it was given (too few images, an unusable layer, bad parameters)."""


def require_images(n: int, needed: int, what: str, why: str) -> None:
    """Raise :class:`ConceptError` with one sentence when ``n`` images are fewer than ``needed``."""
    if n < needed:
        raise ConceptError(f"{what} has {n} image{'s' if n != 1 else ''}; {why} needs at least {needed}: add more images.")
