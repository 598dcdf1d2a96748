"""Value types shared by the registries, the engine and the pages (a leaf: imports nothing from xai_core but errors).

* :data:`Progress` — the progress callback every long computation takes;
* :class:`ParamSpec` — one tunable parameter (UI widget and validation);
* :class:`Cost` — an explainer's passes per sample, as data;
* :class:`Diagnostic` / :class:`DiagnosticValue` — a value an explainer declares it reports, and how to show it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ExplainerError

Progress = Callable[[float, str], None]
# THE box: x0, y0, x1, y1 in image pixels (x1, y1 exclusive), the only box type in the library (metrics, lab,
# quiz, batch inputs and uploaded box files all use it); its share of an image is metrics.box_share.
Box = tuple[float, float, float, float]
ParamKind = Literal["int", "float", "bool", "choice", "layer"]
Show = Literal["caption", "notice", "image", "segments", "data"]


@dataclass(frozen=True)
class ParamSpec:
    """One tunable parameter: enough metadata for a UI widget and for validation."""

    name: str
    kind: ParamKind
    default: Any
    label: str
    help: str = ""
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()

    def validate(self, value: Any) -> Any:
        """Coerce and range-check one value; raise :class:`ExplainerError` with the allowed range."""
        try:
            if self.kind == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                value = int(value)
            elif self.kind == "float":
                value = float(value)
                if not math.isfinite(value):
                    raise ValueError
            elif self.kind == "bool":
                value = bool(value)
            else:
                value = str(value)
        except (TypeError, ValueError, OverflowError):
            raise ExplainerError(f"{self.label}: {value!r} is not a valid {self.kind}.") from None
        if self.kind in ("int", "float"):
            if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
                raise ExplainerError(f"{self.label} must be between {self.min} and {self.max}; got {value}.")
        if self.kind == "choice" and value not in self.choices:
            raise ExplainerError(f"{self.label} must be one of {', '.join(self.choices)}; got {value!r}.")
        return value


@dataclass(frozen=True)
class Cost:
    """Model passes per explained sample: ``forward`` forward and ``backward`` backward passes, times the value of
    the parameter ``per`` (e.g. RISE's ``masks``), or times what ``count(params, input_size)`` returns (e.g. the
    window positions of Occlusion). ``backward`` may be fractional: a backward that stops at an inner layer
    (Grad-CAM) counts as ``partial``. ``unknown`` marks a count only the model decides (Score-CAM's channels)."""

    forward: float = 1.0
    backward: float = 0.0
    per: str = ""
    count: Callable[[Mapping[str, Any], tuple[int, int]], int] | None = None
    count_label: str = "positions"
    partial: bool = False
    unknown: str = ""

    def passes(self, params: Mapping[str, Any], input_size: tuple[int, int] = (224, 224)) -> float:
        """Total forward + backward passes per sample with ``params`` (math.inf when only the model knows)."""
        if self.unknown and not params.get(self.per):
            return math.inf
        n = float(params[self.per]) if self.per else 1.0
        if self.count is not None:
            n *= self.count(params, input_size)
        return n * (self.forward + self.backward)

    def text(self) -> str:
        """E.g. ``1 forward + partial backward`` or ``masks × 1 forward``."""
        parts = [f"{self.forward:g} forward"]
        if self.backward:
            parts.append("partial backward" if self.partial else f"{self.backward:g} backward")
        base = " + ".join(parts)
        if self.unknown:
            return f"{self.unknown} × ({base})"
        scale = self.per.replace("_", " ") if self.per else ""
        if self.count is not None:
            scale = (scale + " × " if scale else "") + self.count_label
        return f"{scale} × ({base})" if scale else base


@dataclass(frozen=True)
class Diagnostic:
    """A value an explainer declares it reports with each map, and how a page shows it.

    ``show``: ``caption`` (one line of facts, ``fmt`` formats the value), ``notice`` (a highlighted sentence),
    ``image`` (a picture, title as caption), ``segments`` (superpixel labels; ``weights`` names the diagnostic
    holding one value per superpixel), ``data`` (kept for programs, not shown).
    """

    name: str
    title: str
    show: Show = "caption"
    unit: str = ""
    fmt: str = ""
    weights: str = ""

    def text(self, value: Any) -> str:
        if self.fmt:
            return self.fmt.format(value)
        if isinstance(value, float):
            return f"{self.title} {value:.3g}{self.unit}"
        return f"{self.title} {value}{self.unit}"


@dataclass(frozen=True)
class DiagnosticValue:
    """One reported value with its declaration."""

    spec: Diagnostic
    value: Any

    @property
    def text(self) -> str:
        return self.spec.text(self.value)
