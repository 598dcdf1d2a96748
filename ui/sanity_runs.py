"""The Sanity page's run panels: what a run will cost (from the registry's cost data), a Run button, the partial
results drawn in place while it runs, and the result from the cache once computed — opening the page or a part
computes nothing."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

from xai_core import sanity
from xai_core.metrics import EDGES

from . import sanity_view, services
from .live import Throttle

SPEED = "xai_sanity_seconds_per_pass"  # per model: seconds per model pass measured on this session's last run


def ready(key: tuple, cost: sanity.CheckCost, model_key: str, label: str, button: str) -> bool:
    """True when the result of ``key`` is cached (an instant rerun) or the Run button was pressed in this run; else
    the page says what a run will cost and waits."""
    if services.store().get(key) is not None:
        return True
    speed = st.session_state.get(SPEED, {}).get(model_key)
    note = st.empty()
    note.info(f"Not computed yet. This run: {cost.text(speed)}", icon="⏱️")
    pressed = st.button(label, type="primary", key=button)
    if pressed:  # the line must not say "not computed" above the maps this run draws
        note.caption(f"⏱️ {cost.text(speed)}")
    return pressed


def compute(key: tuple, cost: sanity.CheckCost, model_key: str, build: Callable[[], Any], stop: str,
            slot: Any | None = None) -> Any:
    """The result of ``key``, built once (memoised) with a Stop button (in ``slot``, else below) while it runs; the
    run's speed is kept for the next estimate. Any click reruns the page, which interrupts the run at its next progress
    report or partial drawing: that is the Stop."""
    hit = services.store().get(key)
    if hit is not None:
        return hit
    slot = st.empty() if slot is None else slot
    slot.button("⏹️ Stop", key=stop, help="Stops the run; nothing partial is kept.")
    start = time.perf_counter()
    result = services.memo(key, build)
    if math.isfinite(cost.passes) and cost.passes > 0:
        st.session_state.setdefault(SPEED, {})[model_key] = (time.perf_counter() - start) / cost.passes
    slot.empty()
    return result


class Live:
    """``partial`` for :func:`xai_core.sanity.model_randomisation`: each partial report redrawn in ``area`` (in place,
    throttled by :class:`~ui.live.Throttle`), the pictures of finished cells kept between redraws."""

    def __init__(self, area: Any, image: np.ndarray) -> None:
        self.area, self.image = area, image
        self.throttle = Throttle()
        self.panels: dict = {}

    def __call__(self, report: sanity.SanityReport) -> None:
        names = [n for n in report.maps if n != EDGES]
        done = sum(bool(report.maps[n]) + sum(s.n for s in report.spread(n)) for n in names)
        total = len(names) * (1 + len(report.layers) * len(report.seeds))
        if done < total:  # the complete report is drawn by the page itself
            self.throttle.draw(lambda _: self._draw(report, done, total))

    def _draw(self, report: sanity.SanityReport, done: int, total: int) -> None:
        with self.area.container():
            sanity_view.live(report, self.image, self.panels, done, total)
