"""The pictures a study shows, rendered once when it is published: each pool image without a map (condition
``none``) and with each method's map of the model's answer (overlay, ``render.overlay``), as PNG at a fixed display
size. The maps run through the designer's Workbench (the model's lock, the engine's batching and cancellation); a
batch run's own maps are used as they are. Participants then only read PNG bytes from the database."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..render import overlay, to_png
from ..request import ExplainRequest
from ..workbench import Workbench
from .design import NONE, StudyError
from .sources import Candidate

DISPLAY = 256  # px, the longer side of a shown picture: small images are enlarged (nearest), large ones reduced
Progress = Callable[[float, str], None]


def display(image: np.ndarray, side: int = DISPLAY) -> np.ndarray:
    """``image`` scaled so that its longer side is ``side`` px (nearest-neighbour when enlarging: pixels stay sharp)."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_NEAREST if scale > 1 else cv2.INTER_AREA)


def picture(c: Candidate, condition: str, wb: Workbench | None, seed: int = 0, alpha: float = 0.5) -> np.ndarray:
    """The RGB picture of candidate ``c`` under ``condition`` (before scaling)."""
    if condition == NONE:
        return c.image
    if condition in c.maps:
        m, signed = c.maps[condition]
        h, w = c.image.shape[:2]
        return overlay(c.image, cv2.resize(np.asarray(m, np.float32), (w, h), interpolation=cv2.INTER_LINEAR), signed,
                       alpha=alpha)
    if wb is None:
        raise StudyError(f"The images have no '{condition}' maps; choose conditions among the run's explainers.")
    e = wb.explain(c.image, ExplainRequest.make(condition, c.target, {}, seed))
    return overlay(c.image, e.map, e.signed, alpha=alpha)


def render_all(pool: list[Candidate], conditions: tuple[str, ...], wb: Workbench | None, *, seed: int = 0,
               progress: Progress | None = None) -> dict[tuple[int, str], bytes]:
    """PNG bytes for every (pool index, condition); ``progress(fraction, text)`` after each (it raises to cancel)."""
    out: dict[tuple[int, str], bytes] = {}
    total = len(pool) * len(conditions)
    for i, c in enumerate(pool):
        for cond in conditions:
            out[(i, cond)] = to_png(display(picture(c, cond, wb, seed)))
            if progress is not None:
                progress(len(out) / total, f"picture {len(out)} of {total}")
    return out
