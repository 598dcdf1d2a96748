"""The type checker that `make lint` runs is configured to catch a wrong return type.

mypy runs with the project's own ``[tool.mypy]`` configuration (pyproject.toml) on a tiny module written to a
temporary folder: one function returns a ``str`` where it declares ``int``. mypy must report exactly that error,
and must pass the same module once the return type is right (so the error is the wrong type, not the set-up).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy is a dev dependency (requirements-dev.txt)")

ROOT = Path(__file__).resolve().parents[1]

WRONG = '''
def count(items: list[str]) -> int:
    return ",".join(items)
'''

RIGHT = '''
def count(items: list[str]) -> int:
    return len(items)
'''


def _mypy(source: str, folder: Path) -> subprocess.CompletedProcess[str]:
    module = folder / "wrong_return.py"
    module.write_text(source, encoding="utf-8")
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
           "--cache-dir", str(folder / "cache"), "--no-error-summary", str(module)]
    return subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=120)


def test_mypy_reports_a_wrong_return_type(tmp_path: Path) -> None:
    run = _mypy(WRONG, tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, run.stdout
    assert "wrong_return.py:3:" in errors[0]
    assert 'Incompatible return value type (got "str", expected "int")' in errors[0]
    assert "[return-value]" in errors[0]


def test_mypy_passes_the_same_module_with_the_right_return_type(tmp_path: Path) -> None:
    run = _mypy(RIGHT, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert ": error:" not in run.stdout
