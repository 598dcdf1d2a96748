"""Pictures of any-time maps: previews as they sharpen, and a map's uncertainty as hatching over its unstable pixels.

Unstable pixels (:func:`xai_core.anytime.unstable`): those whose place in the map's top 10% is uncertain — within two
standard errors (the map's ``uncertainty``) of the top-10% threshold. Hatching: white diagonal stripes over them.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np
import plotly.graph_objects as go

import xai_core as xc
from xai_core import anytime, render

from . import figures

TOP = 0.1  # the top share whose membership the hatching questions
Z = 2.0  # standard errors
LEGEND = (f"Hatched: pixels whose place in the top {TOP:.0%} is uncertain (within {Z:.0f} standard errors of its "
          "threshold).")


def unstable_mask(e: xc.Explanation, shape: tuple[int, int]) -> np.ndarray | None:
    """Unstable pixels of ``e`` at ``shape`` (h, w), or None when the map carries no uncertainty."""
    if e.uncertainty is None:
        return None
    h, w = shape
    m = cv2.resize(np.asarray(e.map, np.float32), (w, h), interpolation=cv2.INTER_AREA)
    u = cv2.resize(np.asarray(e.uncertainty, np.float32), (w, h), interpolation=cv2.INTER_AREA)
    return anytime.unstable(m, u, TOP, Z)


def _stripes(shape: tuple[int, int]) -> np.ndarray:
    i, j = np.indices(shape)
    return (i + j) % 6 < 2


def hatch_layer(mask: np.ndarray) -> np.ndarray:
    """RGBA ``uint8``: white stripes over the ``True`` pixels of ``mask``, transparent elsewhere."""
    out = np.zeros((*mask.shape, 4), np.uint8)
    out[mask & _stripes(mask.shape)] = (255, 255, 255, 210)
    return out


def preview(image: np.ndarray, e: xc.Explanation, *, alpha: float, cmap: str, uncertainty: bool) -> np.ndarray:
    """The map over the image at display size (an RGB picture for a refinement), hatched when asked and possible."""
    over = figures.overlay_small(image, e.map, e.signed, alpha=alpha, cmap=cmap)
    mask = unstable_mask(e, over.shape[:2]) if uncertainty else None
    if mask is not None:
        over = over.copy()
        over[mask & _stripes(mask.shape)] = 255
    return over


def title(e: xc.Explanation, user_stopped: bool = False) -> str:
    """The figure's title: the method, and on a second line why its refinement stopped before the end."""
    ref = e.refinement
    if ref is None or (ref.complete and not user_stopped):
        return e.title
    why = f"stopped by you at {ref.text}" if user_stopped else \
        f"stopped early at {ref.text}: stable" if ref.stopped else ref.text
    return f"{e.title}<br><sup>{why}</sup>"


def with_uncertainty(fig: go.Figure, e: xc.Explanation, image: np.ndarray) -> go.Figure:
    """A copy of the heatmap figure ``fig`` with the hatching of ``e``'s unstable pixels on top (hover still reads the
    raw map); ``fig`` itself when ``e`` has no uncertainty."""
    h, w = figures.display(image, figures.DISPLAY_SIDE).shape[:2]
    mask = unstable_mask(e, (h, w))
    if mask is None:
        return fig
    uri = "data:image/png;base64," + base64.b64encode(render.to_png(hatch_layer(mask))).decode()
    return go.Figure(data=[fig.data[0], go.Image(source=uri, hoverinfo="skip"), *fig.data[1:]], layout=fig.layout)
