"""Pointing game (Zhang et al. 2016): is the map's maximum on the object?"""

from __future__ import annotations

import cv2
import numpy as np

from ..types import ParamSpec
from .registry import metric


@metric("pointing_game", order=50, title="Pointing game", short="Pointing hit", kind="localisation", better="higher",
        passes="none",
        summary="1 if the map's maximum lies in the annotated region (within a tolerance), else 0.",
        reference="Zhang, Bargal, Lin, Brandt, Shen & Sclaroff 2016/2018, 'Top-down Neural Attention by Excitation "
                  "Backprop', ECCV / IJCV. arXiv:1608.00507",
        params=(ParamSpec("tolerance", "int", 15, "Tolerance (px)",
                          "A maximum this close to the region (image pixels) still counts as a hit.", 0, 100, 1),))
def pointing_game(m: np.ndarray, region: np.ndarray, *, tolerance: int = 15) -> float:
    """Hit (1.0) if the argmax of ``m`` is within ``tolerance`` pixels of ``region`` (Zhang et al. 2016,
    arXiv:1608.00507; 15 px as in the paper). A map with no positive maximum cannot point: 0."""
    if not np.isfinite(m).all() or m.max() <= m.min():
        return 0.0
    r, c = np.unravel_index(int(np.argmax(m)), m.shape)
    if region[r, c]:
        return 1.0
    if tolerance <= 0:
        return 0.0
    distance = cv2.distanceTransform((~region).astype(np.uint8), cv2.DIST_L2, 5)
    return float(distance[r, c] <= tolerance)
