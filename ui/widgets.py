"""Widgets built from registry metadata: adding an explainer needs no change here."""

from __future__ import annotations

from typing import Any

import streamlit as st

from xai_core import ExplainerSpec, ModelSpec, ParamSpec, Workbench, list_explainers
from xai_core.registry import REDUCTIONS

FAST = 2  # passes per image: one forward and one (possibly partial) backward, or less


def param_widget(p: ParamSpec, key: str, model: ModelSpec | Workbench) -> Any:
    """One widget for one parameter; returns its value."""
    model = model.model if isinstance(model, Workbench) else model
    if p.kind == "int":
        return st.slider(p.label, int(p.min), int(p.max), int(p.default), int(p.step or 1), help=p.help, key=key)
    if p.kind == "float":
        return st.slider(p.label, float(p.min), float(p.max), float(p.default), float(p.step or 0.01),
                         help=p.help, key=key)
    if p.kind == "bool":
        return st.toggle(p.label, bool(p.default), help=p.help, key=key)
    if p.kind == "layer":
        options = ["", *model.layer_names()]
        return st.selectbox(p.label, options, help=p.help, key=key,
                            format_func=lambda n: f"default ({model.cam_layer or 'none'})" if n == "" else n)
    return st.selectbox(p.label, p.choices, index=p.choices.index(p.default), help=p.help, key=key,
                        format_func=lambda c: REDUCTIONS.get(c, c))


def params_for(spec: ExplainerSpec, model: ModelSpec | Workbench) -> dict[str, Any]:
    """An expander of parameter widgets for one explainer; returns only values changed from defaults."""
    if not spec.params:
        return {}
    model = model.model if isinstance(model, Workbench) else model
    values: dict[str, Any] = {}
    with st.expander(f"⚙️ {spec.title}", expanded=False):
        st.caption(f"{spec.summary}  \n*Cost:* {cost_text(spec, model.input_size)}.")
        for p in spec.params:
            values[p.name] = param_widget(p, f"param:{model.id}:{spec.id}:{p.name}", model)
    return {k: v for k, v in values.items() if v != spec.defaults()[k]}


def methods_within(max_passes: float, input_size: tuple[int, int] = (224, 224), model: ModelSpec | None = None) -> list[str]:
    """Ids of the explainers whose default parameters cost at most ``max_passes`` passes per image (registry data)
    and, given a model, that apply to it (``ExplainerSpec.why_not``)."""
    return [s.id for s in list_explainers(max_passes=max_passes, input_size=input_size)
            if model is None or s.why_not(model) is None]


def one_per_family(ids: list[str]) -> list[str]:
    """A default selection: per family, its first unsigned method (else its first), in registry order."""
    specs = [s for s in list_explainers() if s.id in ids]
    out: list[str] = []
    for fam in dict.fromkeys(s.family for s in specs):
        members = [s for s in specs if s.family == fam]
        out.append(next((s for s in members if not s.signed), members[0]).id)
    return out


def cost_text(spec: ExplainerSpec, input_size: tuple[int, int] = (224, 224)) -> str:
    """The cost from the registry's data, e.g. ``masks × (1 forward) = 2000 passes per image``."""
    n = spec.passes(None, input_size)
    total = "" if n == float("inf") or spec.cost.text() in ("1 forward", "1 forward + 1 backward") else \
        f" = {n:.0f} passes per image at the defaults"
    return spec.cost.text() + total


class LazyProgress:
    """A progress callback that shows a bar in ``slot`` only once work actually reports progress."""

    def __init__(self, slot: Any, title: str) -> None:
        self.slot, self.title, self.bar = slot, title, None

    def __call__(self, fraction: float, text: str) -> None:
        if self.bar is None:
            self.bar = self.slot.progress(0.0, text=self.title)
        self.bar.progress(min(max(fraction, 0.0), 1.0), text=f"{self.title}: {text}")

    def clear(self) -> None:
        if self.bar is not None:
            self.slot.empty()
