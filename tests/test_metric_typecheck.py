"""The metric protocols are checked by mypy too: a localisation function registered as a curve metric, a curve-like
function registered as a rerun metric, and a mistyped keyword of a registered metric, are type errors; the right
registrations of every kind are not.

mypy runs once, with the project's ``[tool.mypy]`` configuration, on a small module written to a temporary folder
(the library's own errors are silenced with ``--follow-imports=silent``: only this module's lines are reported).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy is a dev dependency (requirements-dev.txt)")

ROOT = Path(__file__).resolve().parents[1]

SOURCE = '''\
import numpy as np
import torch

from xai_core.metrics.registry import Plan, Probe, Rerun, metric
from xai_core.models.spec import ModelSpec


@metric("a", title="A", kind="curve", better="lower", summary="", reference="")
def wrong_kind(heatmap: np.ndarray, region: np.ndarray) -> float:
    """A localisation signature registered as a curve metric."""
    return 0.0


@metric("b", title="B", kind="localisation", better="higher", summary="", reference="")
def localisation(heatmap: np.ndarray, region: np.ndarray, *, tolerance: int = 3) -> float:
    """A localisation metric."""
    return 0.0


@metric("c", title="C", kind="curve", better="lower", summary="", reference="")
def curve(model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, *, seed: int = 0) -> Plan:
    """A curve metric."""
    raise NotImplementedError


localisation(np.zeros(1), np.zeros(1), tolerance=3)
localisation(np.zeros(1), np.zeros(1), tolerence=3)


@metric("d", title="D", kind="rerun", better="lower", summary="", reference="")
def no_rerun(model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, *, seed: int = 0) -> float:
    """A rerun metric without its rerun argument."""
    return 0.0


@metric("e", title="E", kind="probe", better="lower", summary="", reference="")
def probe(model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, *, seed: int = 0) -> Probe:
    """A probe metric."""
    raise NotImplementedError


@metric("f", title="F", kind="map", better="lower", summary="", reference="")
def map_metric(small_map: np.ndarray) -> float:
    """A map metric."""
    return 0.0


@metric("g", title="G", kind="rerun", better="lower", summary="", reference="")
def rerun(model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, rerun: Rerun, *, seed: int = 0) -> float:
    """A rerun metric."""
    return 0.0
'''


@pytest.mark.slow
def test_mypy_refuses_the_wrong_kind_and_a_mistyped_keyword(tmp_path: Path) -> None:
    module = tmp_path / "scratch_metrics.py"
    module.write_text(SOURCE, encoding="utf-8")
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
           str(tmp_path / "cache"), "--follow-imports=silent", "--no-error-summary", str(module)]
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=540,
                         env={**os.environ, "MYPYPATH": str(ROOT)})
    errors = [line.split(": error: ", 1) for line in run.stdout.splitlines() if ": error: " in line]
    lines = [int(where.rsplit(":", 1)[-1]) for where, _ in errors]
    assert lines == [8, 27, 30], run.stdout + run.stderr
    assert 'expected "CurveMetric' in errors[0][1] and "[arg-type]" in errors[0][1]
    assert 'Unexpected keyword argument "tolerence"' in errors[1][1]
    assert 'expected "RerunMetric' in errors[2][1] and "[arg-type]" in errors[2][1]
