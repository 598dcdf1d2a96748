"""The limits of the upload boundary: stated once, all used, shown as a table, and the old names still agree."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from xai_core import images, metrics, untrusted
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
    src = "".join(inspect.getsource(m) for m in (untrusted.raster, untrusted.zips, untrusted.zipscan,
                                                 untrusted.checkpoints, untrusted.text, untrusted.modelfiles, metrics.sets,
                                                 folders))
    unused = [f.name for f in dataclasses.fields(Limits) if f"limits.{f.name}" not in src and f"LIMITS.{f.name}" not in src]
    assert unused == []


def test_the_limits_are_frozen_and_the_historical_names_agree():
    with pytest.raises(dataclasses.FrozenInstanceError):
        LIMITS.upload_bytes = 1  # type: ignore[misc]
    assert images.MAX_BYTES == metrics.sets.MAX_ZIP_BYTES == folders.MAX_ZIP_BYTES == LIMITS.upload_bytes
    assert (metrics.sets.MAX_IMAGES, folders.MAX_IMAGES) == (LIMITS.set_images, LIMITS.class_zip_images)
    assert folders.MAX_FILE_BYTES == LIMITS.zip_member_bytes and upload.MAX_CHECKPOINT_BYTES == LIMITS.checkpoint_bytes
