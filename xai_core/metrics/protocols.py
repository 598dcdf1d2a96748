"""The typed call signature of each metric kind, as protocols: mypy refuses a function registered under another
kind's decorator (see :mod:`.registry` for the kinds and :mod:`.signature` for the same check at import)."""

from __future__ import annotations

from typing import ParamSpec, Protocol

import numpy as np
import torch

from ..models.spec import ModelSpec
from .values import Plan, Probe, Rerun

__all__ = ["CurveMetric", "LocalisationMetric", "MapMetric", "P", "ProbeMetric", "RerunMetric"]

P = ParamSpec("P")


class CurveMetric(Protocol[P]):
    """``fn(model, x, small_map, *, seed, **declared params) -> Plan``. ``P`` is the function's own keyword
    parameters (``seed`` among them: checked at registration, as PEP 612 allows no keyword-only parameter beside ``P``)."""

    def __call__(self, model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, /,
                 *args: P.args, **params: P.kwargs) -> Plan: ...


class ProbeMetric(Protocol[P]):
    """``fn(model, x, small_map, *, seed, **declared params) -> Probe``."""

    def __call__(self, model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, /,
                 *args: P.args, **params: P.kwargs) -> Probe: ...


class RerunMetric(Protocol[P]):
    """``fn(model, x, small_map, rerun, *, seed, **declared params) -> float``."""

    def __call__(self, model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, rerun: Rerun, /,
                 *args: P.args, **params: P.kwargs) -> float: ...


class LocalisationMetric(Protocol[P]):
    """``fn(heatmap, region, **declared params) -> float``: the map and a boolean region, both at the image's size."""

    def __call__(self, heatmap: np.ndarray, region: np.ndarray, /, *args: P.args, **params: P.kwargs) -> float: ...


class MapMetric(Protocol[P]):
    """``fn(small_map, **declared params) -> float``: the map at the model's input size, as a float array."""

    def __call__(self, small_map: np.ndarray, /, *args: P.args, **params: P.kwargs) -> float: ...
