"""The numbers an upload gives a model, checked in one place for every format: the class count (the sidebar's option,
a labels list, a checkpoint's classifier), the input side (a config, a ``preprocessor_config.json``, an ONNX graph or
the sidebar) and the normalisation ``(x - mean) / std`` (a ``preprocessor_config.json``, timm's record or the
sidebar's text boxes). A zero, negative, tiny, huge, NaN or infinite value would give a giant model or input, or
non-finite predictions and maps; each is refused with one sentence naming it."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..errors import ModelLoadError
from .limits import LIMITS, Limits
from .messages import shown

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the defaults where an upload states none (as in models.spec)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def check_classes(n: object, *, limits: Limits = LIMITS) -> int:
    """A class count: a whole number from 1 to ``model_classes``."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= limits.model_classes:
        shown_n = f"{n:,}" if isinstance(n, int) and not isinstance(n, bool) else shown(repr(n), 20)
        raise ModelLoadError(f"The number of classes is {shown_n}; it must be at least 1, and this server builds models "
                             f"of up to {limits.model_classes:,} classes (limit model_classes).")
    return n


def check_normalisation(mean: object, std: object, where: str, *,
                        limits: Limits = LIMITS) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``(mean, std)`` as three finite floats each, std at least ``model_std_min``, |mean| at most ``model_mean_abs``;
    ``where`` names their source in the sentence (e.g. "The preprocessor_config.json's")."""
    out: list[tuple[float, float, float]] = []
    for name, value in (("mean", mean), ("std", std)):
        values = list(value) if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) else None
        numbers = [_number(v) for v in values] if values is not None and len(values) == 3 else []
        finite = [v for v in numbers if v is not None]
        if len(finite) != 3:
            raise ModelLoadError(f"{where} {name} must be three finite numbers (one per RGB channel); it is "
                                 f"{shown(repr(value), 40)}.")
        out.append((finite[0], finite[1], finite[2]))
    m, s = out
    if min(s) < limits.model_std_min:
        raise ModelLoadError(f"{where} std is {min(s):g}; dividing by it gives infinite inputs, so this server needs "
                             f"every std at least {limits.model_std_min:g} (limit model_std_min).")
    if max(abs(v) for v in m) > limits.model_mean_abs:
        raise ModelLoadError(f"{where} mean is {max(m, key=abs):g}, but pixels are in [0, 1]: this server accepts a "
                             f"mean within ±{limits.model_mean_abs:g} (limit model_mean_abs).")
    return m, s


def check_side(value: object, field: str, *, limits: Limits = LIMITS) -> int:
    """One side of a model's input in pixels, an integer from ``image_min_side`` to ``model_input_side``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelLoadError(f"{field} must be a whole number of pixels; it is {shown(repr(value), 40)}.")
    if not limits.image_min_side <= value <= limits.model_input_side:
        raise ModelLoadError(f"{field} is {value:,} pixels; this server runs models on inputs of "
                             f"{limits.image_min_side} to {limits.model_input_side:,} pixels per side "
                             "(limit model_input_side).")
    return value


def check_input_size(size: object, where: str, *, limits: Limits = LIMITS) -> tuple[int, int]:
    """``(height, width)`` from the sidebar or a graph, each side checked by :func:`check_side`."""
    if isinstance(size, (str, bytes)) or not isinstance(size, Sequence) or len(size) != 2:
        raise ModelLoadError(f"{where} input size must be two numbers (height, width); it is {shown(repr(size), 40)}.")
    return check_side(size[0], f"{where} input height", limits=limits), check_side(size[1], f"{where} input width",
                                                                                  limits=limits)
