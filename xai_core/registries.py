"""One registry shape for everything a page lists and a user parameterises: explainers and metrics (a leaf module).

A registered thing is a frozen dataclass with at least ``id``, ``title`` and ``params`` (its :class:`ParamSpec`
tuple); mixing in :class:`Parameterised` gives it ``defaults`` and ``resolve`` (defaults filled in, every value
validated, an unknown name an error rather than silently ignored). A :class:`Registry` holds such specs by id:
``add`` (twice is a programming error), ``get`` (an unknown id is a user-facing error that lists the valid ones),
``list`` (registration order, optionally filtered), ``resolve`` (spec and validated parameters in one call) and
``validate`` (just the parameters).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

from .errors import XaiError
from .types import ParamSpec

__all__ = ["Parameterised", "Registry", "Spec"]


class Spec(Protocol):
    """What a registry needs of the things it holds."""

    @property
    def id(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def params(self) -> tuple[ParamSpec, ...]: ...

    def resolve(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]: ...


class Parameterised:
    """Mixin for a spec dataclass with ``title`` and ``params`` fields: defaults and validated parameters."""

    title: str
    params: tuple[ParamSpec, ...]
    error: type[XaiError] = XaiError  # the error class raised for a bad parameter (a class attribute, not a field)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def resolve(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults filled in, values validated; unknown names are an error, not ignored."""
        known = {p.name: p for p in self.params}
        given = dict(params or {})
        unknown = set(given) - set(known)
        if unknown:
            raise self.error(f"{self.title} has no parameter {', '.join(sorted(unknown))}; "
                             f"it takes {', '.join(known) or 'none'}.")
        out = self.defaults()
        out.update({k: known[k].validate(v) for k, v in given.items()})
        return out


S = TypeVar("S", bound=Spec)


class Registry(Generic[S]):
    """Specs of one kind by id, in registration order."""

    def __init__(self, kind: str, error: type[XaiError] = XaiError) -> None:
        self.kind = kind  # 'explainer', 'metric': used in messages
        self.error = error
        self._specs: dict[str, S] = {}

    def add(self, spec: S) -> S:
        if spec.id in self._specs:
            raise ValueError(f"{self.kind} id {spec.id!r} registered twice")
        self._specs[spec.id] = spec
        return spec

    def get(self, id: str) -> S:
        try:
            return self._specs[id]
        except KeyError:
            raise self.error(f"Unknown {self.kind} {id!r}; available: {', '.join(self._specs)}.") from None

    def list(self, where: Callable[[S], bool] | None = None) -> list[S]:
        return [s for s in self._specs.values() if where is None or where(s)]

    def resolve(self, id: str, params: Mapping[str, Any] | None = None) -> tuple[S, dict[str, Any]]:
        spec = self.get(id)
        return spec, spec.resolve(params)

    def validate(self, id: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.get(id).resolve(params)

    def __contains__(self, id: object) -> bool:
        return id in self._specs

    def __iter__(self) -> Iterator[S]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)
