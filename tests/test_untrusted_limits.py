"""The limits of the upload boundary: stated once, all used, shown as a table, and the old names still agree."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import xai_core
from xai_core import images, metrics
from xai_core.lab import folders
from xai_core.models import upload
from xai_core.untrusted import LIMITS, Limits, describe_limits
from xai_core.untrusted.limits import human


def test_every_limit_is_described_and_readable():
    rows = describe_limits()
    assert [r["limit"] for r in rows] == [f.name for f in dataclasses.fields(Limits)]
    table = {r["limit"]: r["value"] for r in rows}
    assert table["upload_bytes"] == "200 MB" and table["image_pixels"] == "50 MP" and table["zip_members"] == "4,096"
    assert all(r["what"] and r["value"] for r in rows)
    assert human(100, "member_bytes") == "100 bytes"


def test_every_limit_is_enforced_somewhere_in_the_boundary():
    """Every field is read somewhere in the library (not counting the file that states them): as ``limits.NAME`` /
    ``LIMITS.NAME``, or by name in models/cost.py, which checks a measured cost against the limit it names."""
    root = Path(xai_core.__file__).parent
    src = "".join(p.read_text() for p in root.rglob("*.py") if p.name != "limits.py")
    by_name = (root / "models" / "cost.py").read_text()
    unused = [f.name for f in dataclasses.fields(Limits)
              if f"limits.{f.name}" not in src and f"LIMITS.{f.name}" not in src and f'"{f.name}"' not in by_name]
    assert unused == []


def test_the_limits_are_frozen_and_the_historical_names_agree():
    with pytest.raises(dataclasses.FrozenInstanceError):
        LIMITS.upload_bytes = 1  # type: ignore[misc]
    assert images.MAX_BYTES == metrics.sets.MAX_ZIP_BYTES == folders.MAX_ZIP_BYTES == LIMITS.upload_bytes
    assert (metrics.sets.MAX_IMAGES, folders.MAX_IMAGES) == (LIMITS.set_images, LIMITS.class_zip_images)
    assert folders.MAX_FILE_BYTES == LIMITS.zip_member_bytes and upload.MAX_CHECKPOINT_BYTES == LIMITS.checkpoint_bytes
