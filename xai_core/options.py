"""Run options of one session (a leaf module): compile, frozen graph, bf16, time budget.

A :class:`~xai_core.workbench.Workbench` sets its options for the duration of each call through a
``contextvars.ContextVar``; the engine, the fast paths and the sample caps read :func:`current`. Nothing is
process-wide: two sessions running at the same time each see their own options, and a new thread starts with
the defaults (threads do not inherit another thread's context).
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import XaiError


@dataclass(frozen=True)
class RunOptions:
    """``compile``: torch.compile the forward passes of perturbation methods (about a minute once per model);
    ``freeze``: the verified frozen TorchScript graph on CPU; ``bf16``: bfloat16 autocast for CUDA forward
    passes; ``time_budget``: seconds a sample-count method may take before its count is capped (and says so)."""

    compile: bool = False
    freeze: bool = True
    bf16: bool = False
    time_budget: float = 60.0

    def __post_init__(self) -> None:
        if not (isinstance(self.time_budget, (int, float)) and math.isfinite(self.time_budget) and self.time_budget > 0):
            raise XaiError(f"The time budget must be a positive number of seconds; got {self.time_budget!r}.")
        object.__setattr__(self, "time_budget", float(self.time_budget))
        for name in ("compile", "freeze", "bf16"):
            object.__setattr__(self, name, bool(getattr(self, name)))

    @property
    def result_key(self) -> str:
        """The options that can change a map's numbers (bf16 rounding, capped sample counts): part of cache keys.
        Compiling and freezing reproduce the eager results to float tolerance, so they are not."""
        return f"bf16={int(self.bf16)};budget={self.time_budget!r}"


DEFAULT = RunOptions()
_CURRENT: contextvars.ContextVar[RunOptions] = contextvars.ContextVar("xai_run_options", default=DEFAULT)


def current() -> RunOptions:
    """The options of the run in progress on this thread (the defaults outside any Workbench call)."""
    return _CURRENT.get()


@contextmanager
def using(options: RunOptions) -> Iterator[RunOptions]:
    """Make ``options`` current on this thread (and context) for the ``with`` block; nests and restores."""
    token = _CURRENT.set(options)
    try:
        yield options
    finally:
        _CURRENT.reset(token)
