"""The registration-time check of a metric function's signature against its kind and its declared parameters.

The kinds' signatures are in :data:`SIGNATURES` (e.g. a curve metric is ``fn(model, x, small_map, *, seed, <declared
params>) -> Plan``, a localisation metric ``fn(heatmap, region, *, <declared params>) -> float``). Refused, with a
:class:`TypeError` that says what to write: another kind's positional arguments, ``*args`` or a ``**kwargs`` catch-all
(a mistyped parameter would be silently swallowed), a keyword that is not a declared :class:`ParamSpec` (no widget
could set it) or a declared one the function does not take, a keyword default that differs from the declared
default, and a return annotation that is not the kind's (``Plan``, ``Probe`` or ``float``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..types import ParamSpec

POSITIONAL = {"curve": ("model", "x", "small_map"), "probe": ("model", "x", "small_map"),
              "rerun": ("model", "x", "small_map", "rerun"), "localisation": ("heatmap", "region"),
              "map": ("small_map",)}
RETURNS = {"curve": "Plan", "probe": "Probe", "rerun": "float", "localisation": "float", "map": "float"}
SIGNATURES = {"curve": "fn(model, x, small_map, *, seed, **declared params) -> Plan",
              "probe": "fn(model, x, small_map, *, seed, **declared params) -> Probe",
              "rerun": "fn(model, x, small_map, rerun, *, seed, **declared params) -> float",
              "localisation": "fn(heatmap, region, **declared params) -> float",
              "map": "fn(small_map, **declared params) -> float"}
FIXED_KEYWORDS = {"curve": {"seed"}, "probe": {"seed"}, "rerun": {"seed"}, "localisation": set(), "map": set()}


def check_signature(id: str, kind: str, fn: Callable[..., Any], params: tuple[ParamSpec, ...]) -> None:
    """Raise :class:`TypeError` unless ``fn`` has the signature of a ``kind`` metric taking exactly ``params``."""
    where = f"metric {id!r} ({kind}: {SIGNATURES[kind]})"
    sig = inspect.signature(fn)
    args = list(sig.parameters.values())
    if any(a.kind in (a.VAR_POSITIONAL, a.VAR_KEYWORD) for a in args):
        raise TypeError(f"{where} takes *args or **kwargs: name each parameter, so a mistyped one is an error.")
    positional = [a for a in args if a.kind in (a.POSITIONAL_ONLY, a.POSITIONAL_OR_KEYWORD)]
    if len(positional) != len(POSITIONAL[kind]) or any(a.default is not a.empty for a in positional):
        others = [k for k, names in POSITIONAL.items() if k != kind and names == tuple(a.name for a in positional)]
        others = others or [k for k, names in POSITIONAL.items() if k != kind and len(names) == len(positional)]
        looks = f"; it has the signature of a {' or '.join(others)} metric" if others else ""
        raise TypeError(f"{where} takes the positional arguments ({', '.join(a.name for a in positional)}){looks}. "
                        f"Positional arguments must be ({', '.join(POSITIONAL[kind])}), without defaults.")
    keywords = {a.name: a for a in args if a.kind == a.KEYWORD_ONLY}
    missing_fixed = FIXED_KEYWORDS[kind] - set(keywords)
    if missing_fixed:
        raise TypeError(f"{where} must take the keyword {', '.join(sorted(missing_fixed))}.")
    declared = {p.name: p for p in params}
    undeclared = set(keywords) - FIXED_KEYWORDS[kind] - set(declared)
    if undeclared:
        raise TypeError(f"{where} takes {', '.join(sorted(undeclared))} but does not declare "
                        f"{'it' if len(undeclared) == 1 else 'them'} in params.")
    not_taken = set(declared) - set(keywords)
    if not_taken:
        raise TypeError(f"{where} declares {', '.join(sorted(not_taken))} but its function does not take "
                        f"{'it' if len(not_taken) == 1 else 'them'} as keyword-only arguments.")
    for name, p in declared.items():
        default = keywords[name].default
        if default is not inspect.Parameter.empty and default != p.default:
            raise TypeError(f"{where}: {name} defaults to {default!r} in the function but {p.default!r} in params.")
    returns = sig.return_annotation
    if returns is not sig.empty:
        named = returns if isinstance(returns, str) else getattr(returns, "__name__", str(returns))
        if named.rpartition(".")[2] != RETURNS[kind]:
            raise TypeError(f"{where} is annotated to return {named}, not {RETURNS[kind]}.")
