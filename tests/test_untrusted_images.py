"""The image boundary: documents posing as images are refused by name and never reach a decoder that can start a
process (Pillow's EPS plugin runs Ghostscript); only the six raster formats are opened; pixel bombs stay bounded.
Every file is generated here."""

from __future__ import annotations

import io
import os
import subprocess

import numpy as np
import pytest
from helpers import assert_clean_error, png_bytes, random_image
from hostile import DOCUMENTS, eps_via_pillow, run_capped
from PIL import EpsImagePlugin, Image

from xai_core import ImageError, images
from xai_core.untrusted import FORMATS, LIMITS, Limits, decode_image
from xai_core.untrusted.raster import PIL_FORMATS

SPAWNERS = [(subprocess, "Popen"), (os, "system"), (os, "posix_spawn"), (os, "posix_spawnp"), (os, "fork"),
            (os, "execv"), (os, "execve"), (os, "execvp"), (os, "popen")]


@pytest.fixture
def watched(monkeypatch) -> list[str]:
    """Every way to start a process, and every entry into Pillow's EPS plugin, records itself (and refuses)."""
    calls: list[str] = []

    def spy(tag: str):
        def refuse(*_a, **_k):
            calls.append(tag)
            raise AssertionError(f"{tag} was called")
        return refuse

    for mod, name in SPAWNERS:
        if hasattr(mod, name):
            monkeypatch.setattr(mod, name, spy(f"{mod.__name__}.{name}"))
    Image.init()
    factory, accept = Image.OPEN["EPS"]

    def eps_accept(prefix: bytes) -> bool:
        calls.append("EPS accept")
        return accept(prefix)

    def eps_factory(*a, **k):
        calls.append("EPS open")
        return factory(*a, **k)

    monkeypatch.setitem(Image.OPEN, "EPS", (eps_factory, eps_accept))
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", spy("Ghostscript"))
    return calls


@pytest.mark.parametrize("kind", list(DOCUMENTS))
def test_documents_posing_as_images_are_refused_by_name_and_start_nothing(kind, watched):
    make, named = DOCUMENTS[kind]
    with pytest.raises(ImageError) as info:
        images.load_image(make())  # what the page calls for an upload named photo.png / photo.jpg
    msg = assert_clean_error(info.value)
    assert named in msg and "whatever its name says" in msg and "PNG, JPEG" in msg
    assert watched == []


@pytest.mark.parametrize("prefix", [b"\n", b"  ", b"\x00\x00", b"JUNK"])
def test_eps_behind_junk_is_not_recognised_and_still_never_reaches_the_eps_plugin(prefix, watched):
    data = prefix + eps_via_pillow()
    with pytest.raises(ImageError, match="not an image format we can read"):
        decode_image(data)
    assert watched == []


def test_control_without_the_allow_list_pillow_would_hand_the_same_bytes_to_the_eps_plugin(watched):
    """Proves the spies sit on the real path: a plain Image.open (what the old code did) reaches the EPS plugin."""
    for data in (eps_via_pillow(), DOCUMENTS["dos_eps"][0]()):
        watched.clear()
        Image.open(io.BytesIO(data))
        assert "EPS open" in watched


def _save(fmt: str, mode: str = "RGB", **kw) -> bytes:
    arr = random_image(24, 20, seed=3)
    im = Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


REFUSED = {"PPM": {}, "ICO": {}, "PCX": {}, "TGA": {}, "SGI": {}, "QOI": {}, "DDS": {}, "JPEG2000": {}, "IM": {},
           "MSP": {"mode": "1"}, "XBM": {"mode": "1"}, "SPIDER": {"mode": "F"}}


@pytest.mark.parametrize("fmt", list(REFUSED))
def test_formats_pillow_reads_but_the_allow_list_does_not_are_refused(fmt, watched):
    data = _save(fmt, **REFUSED[fmt])
    assert Image.open(io.BytesIO(data)).size[0] > 0  # Pillow itself would open it
    watched.clear()
    with pytest.raises(ImageError) as info:
        decode_image(data)
    assert "not an image format we can read" in assert_clean_error(info.value)
    assert watched == []


@pytest.mark.parametrize("fmt", PIL_FORMATS)
def test_every_allowed_format_decodes(fmt, watched):
    out = decode_image(_save(fmt, **({"lossless": True} if fmt == "WEBP" else {})))
    assert out.array.shape == (24, 20, 3) and out.array.dtype == np.uint8
    assert watched == []


def test_the_allow_list_is_the_documented_one():
    assert FORMATS == images.FORMATS == ("PNG", "JPEG", "WebP", "TIFF", "BMP", "GIF")
    assert set(PIL_FORMATS) == {"PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF"}


def test_limits_come_from_the_limits_object():
    assert (images.MAX_PIXELS, images.MAX_BYTES, images.MIN_SIDE) == (LIMITS.image_pixels, LIMITS.upload_bytes,
                                                                      LIMITS.image_min_side)
    data = png_bytes(random_image(30, 40))
    assert decode_image(data).array.shape == (30, 40, 3)
    with pytest.raises(ImageError, match=r"over the 0 MP limit"):
        decode_image(data, limits=Limits(image_pixels=1000))
    with pytest.raises(ImageError, match="files up to 0 MB are accepted"):
        decode_image(data, limits=Limits(upload_bytes=100))


def test_large_animated_gifs_are_not_walked_to_count_frames():
    frames = [Image.new("RGB", (16, 16), ((255, 0, 0), (0, 0, 255))[i % 2]) for i in range(40)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=10, disposal=0)
    data = buf.getvalue()
    assert "animated image: the first of 40 frames is used" in decode_image(data).notes
    assert "animated image: the first frame is used" in decode_image(data, limits=Limits(frame_count_bytes=100)).notes


# --------------------------------------------------------------------------------------------
# under an address-space cap, in a child process


def _bilevel(w: int, h: int) -> bytes:
    from test_images import _bilevel_png

    return _bilevel_png(w, h)


def _many_frames() -> bytes:
    frames = [Image.new("RGB", (8, 8), ((255, 0, 0), (0, 0, 255))[i % 2]) for i in range(20_000)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=10, disposal=0)
    return buf.getvalue()


def _decode(data: bytes) -> list:
    out = decode_image(data)
    return [list(out.array.shape), out.notes]


# name: (make input, read it, expected error or None, fragment of the message or of the value)
CAPPED = {
    "gigapixel_png": (lambda: _bilevel(30000, 30000), _decode, "ImageError", "too large to decode safely"),
    "64mp_png": (lambda: _bilevel(8000, 8000), _decode, "ImageError", "over the 50 MP limit"),
    "49mp_png_decodes": (lambda: _bilevel(7000, 7000), _decode, None, "[7000, 7000, 3]"),
    "20000_frame_gif": (_many_frames, _decode, None, "first of 20000 frames"),
    **{f"doc_{k}": (make, _decode, "ImageError", named) for k, (make, named) in DOCUMENTS.items()},
}


def test_hostile_images_under_a_memory_and_time_cap():
    results = run_capped("test_untrusted_images", list(CAPPED), headroom_mib=1024)
    for name, (_, _, error, fragment) in CAPPED.items():
        r = results[name]
        assert r["error"] == error, (name, r)
        assert fragment in (r["message"] if error else str(r["value"])), (name, r)
        assert not r.get("chained") and r["seconds"] < 20 and r["peak_mib"] < 900, (name, r)
