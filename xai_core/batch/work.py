"""What the one loop (:func:`.compute.explain_loaded`) takes: decoded images (:class:`Decoded`, from files or already
in memory) and what to compute for each (:class:`Work`). A :class:`~.config.BatchConfig` gives its Work
(:attr:`BatchConfig.work`); the pages build theirs (:mod:`.sets`, :mod:`xai_core.lab.own_data`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import XaiError
from ..metrics.evaluate import box_region
from ..request import ExplainRequest
from ..types import Box

TARGET_MODES = ("label", "top1")
Params = tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]


@dataclass(frozen=True, eq=False)
class Decoded:
    """One image ready for the loop: ``key`` (unique in the run), RGB uint8 pixels, its class (an index of the
    model's classes) when known, and where the object is: ``box`` as given (in the original image's pixels, i.e.
    ``scale`` × these are the pixels here) or ``region`` (a boolean mask at this image's size; it wins over the box).
    ``path``: the file it came from (None in memory)."""

    key: str
    image: np.ndarray
    label: int | None = None
    box: Box | None = None
    region: np.ndarray | None = None
    path: str | None = None
    scale: float = 1.0

    def object_region(self) -> np.ndarray | None:
        """The object as a boolean mask at the image's size (None: not known); an empty or outside box raises."""
        if self.region is not None or self.box is None:
            return self.region
        x0, y0, x1, y1 = self.box
        s = self.scale
        return box_region(self.image.shape[:2], (x0 * s, y0 * s, x1 * s, y1 * s))


@dataclass(frozen=True)
class Work:
    """``requests``: one per explainer and seed (their target is settled per image); ``target``: ``label`` (the
    image's class where known, else top-1), ``top1`` or a class index; ``metrics`` and their parameters, scored
    by :func:`xai_core.metrics.evaluate` per image; ``references``: also score the three model-free reference maps
    (random, centre, edges) beside each image's maps, as baselines."""

    requests: tuple[ExplainRequest, ...]
    target: str | int = "label"
    metrics: tuple[str, ...] = ()
    metric_params: Params = ()
    references: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.target, int) and self.target not in TARGET_MODES:
            raise XaiError(f"The target must be label, top1 or a class index; got {self.target!r}.")
        if not self.requests:
            raise XaiError("Pick at least one explainer.")

    @classmethod
    def make(cls, requests: list[ExplainRequest], *, target: str | int = "label", metrics: list[str] | tuple = (),
             params: dict[str, dict] | None = None, references: bool = False) -> Work:
        frozen = tuple(sorted((m, tuple(sorted(p.items()))) for m, p in (params or {}).items() if m in metrics))
        return cls(tuple(requests), target, tuple(metrics), frozen, references)

    def target_of(self, label: int | None) -> int | None:
        """The class to explain for an image of class ``label`` (None: its top-1 class)."""
        if isinstance(self.target, int):
            return self.target
        return label if self.target == "label" else None

    def params(self) -> dict[str, dict[str, Any]]:
        return {m: dict(p) for m, p in self.metric_params}
