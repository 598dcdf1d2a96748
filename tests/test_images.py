"""Uploaded-image decoding: every file is built here (no downloads); each one either becomes an RGB
uint8 array or raises exactly one ImageError whose message is a plain sentence."""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib

import cv2
import numpy as np
import pytest
from helpers import assert_clean_error
from PIL import Image, ImageFile

from xai_core import ImageError, images
from xai_core.images import decode_image, image_digest, load_image, load_sample, sample_names


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _blocks(h: int, w: int) -> np.ndarray:
    """Four flat colour quadrants: robust to JPEG and easy to locate after a rotation."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2] = (220, 30, 30)
    a[: h // 2, w // 2:] = (30, 200, 40)
    a[h // 2:, : w // 2] = (20, 40, 210)
    a[h // 2:, w // 2:] = (240, 230, 20)
    return a


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bilevel_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG, written without ever holding the pixels in memory."""
    row = b"\x00" + bytes((width + 7) // 8)
    z = zlib.compressobj(9)
    rows_per_block = max(1, 4_000_000 // len(row))
    parts, done = [], 0
    while done < height:
        n = min(rows_per_block, height - done)
        parts.append(z.compress(row * n))
        done += n
    parts.append(z.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"".join(parts))
            + _png_chunk(b"IEND", b""))


def _assert_clean(err: ImageError) -> str:
    assert type(err) is ImageError
    msg = assert_clean_error(err)
    assert len(msg) < 400
    return msg


def _assert_rgb(arr: np.ndarray, h: int, w: int) -> None:
    assert isinstance(arr, np.ndarray) and arr.dtype == np.uint8 and arr.shape == (h, w, 3)
    assert arr.flags.c_contiguous


# --------------------------------------------------------------------------------------------
# files that must be refused


@pytest.fixture(scope="module")
def jpeg_bytes() -> bytes:
    rng = np.random.default_rng(0)
    arr = np.clip(_blocks(64, 96).astype(int) + rng.integers(-20, 21, (64, 96, 3)), 0, 255).astype(np.uint8)
    return _encode(Image.fromarray(arr), "JPEG", quality=90)


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("cat.png", b"not really a png" * 10)
    return buf.getvalue()


BAD = {
    "empty": (lambda jpg: b"", "empty"),
    "text": (lambda jpg: b"just some text\nnot an image\n", "not an image format"),
    "zip_renamed_png": (lambda jpg: _zip(), "ZIP archive"),
    "pdf": (lambda jpg: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
    "truncated_jpeg": (lambda jpg: jpg[: len(jpg) * 2 // 3], "truncated or corrupt"),
    "jpeg_header_only": (lambda jpg: jpg[:200], "truncated or corrupt"),
    "png_signature_only": (lambda jpg: b"\x89PNG\r\n\x1a\n", None),
    "random_bytes": (lambda jpg: np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(), None),
    "tiny_png": (lambda jpg: _encode(Image.new("RGB", (5, 40)), "PNG"), "at least 8×8"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_files_raise_one_clean_image_error(name, jpeg_bytes):
    make, fragment = BAD[name]
    with pytest.raises(ImageError) as info:
        load_image(make(jpeg_bytes))
    msg = _assert_clean(info.value)
    if fragment:
        assert fragment in msg


def test_truncated_jpeg_is_not_silently_half_decoded(jpeg_bytes):
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    _assert_rgb(load_image(jpeg_bytes), 64, 96)  # the complete file is fine


@pytest.mark.parametrize("width,height,fragment", [(30000, 30000, "too large to decode safely"),
                                                   (8000, 8000, "over the 50 MP limit")])
def test_decompression_bomb_is_refused_before_decoding(monkeypatch, width, height, fragment):
    data = _bilevel_png(width, height)
    assert len(data) < 120_000  # ~1000:1 compression: tiny file, gigantic image
    assert struct.unpack(">II", data[16:24]) == (width, height)

    def no_decode(*_a, **_k):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    t0 = time.perf_counter()
    with pytest.raises(ImageError) as info:
        decode_image(data)
    assert time.perf_counter() - t0 < 1.0
    assert fragment in _assert_clean(info.value)


def test_size_limit_counts_pixels_not_bytes():
    """A large but legitimate photo-sized image (12 MP here, 1-bit so the file is small) decodes."""
    out = decode_image(_bilevel_png(4000, 3000))
    _assert_rgb(out.array, 3000, 4000)
    assert (out.array == 0).all() and any("grayscale" in n for n in out.notes)


# --------------------------------------------------------------------------------------------
# unusual but valid files are converted, and the conversion is reported


def test_sixteen_bit_grayscale_is_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 64 * 80).reshape(64, 80).round().astype(np.uint16)
    ok, png = cv2.imencode(".png", ramp)
    assert ok
    assert Image.open(io.BytesIO(png.tobytes())).mode.startswith("I")
    out = decode_image(png.tobytes())
    _assert_rgb(out.array, 64, 80)
    arr = out.array
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
    expected = np.round(ramp.astype(np.float64) * 255 / 65535)
    assert np.abs(arr[..., 0].astype(int) - expected).max() <= 1
    assert arr.min() == 0 and arr.max() == 255 and len(np.unique(arr)) > 250  # the full range, no saturation
    assert (arr[..., 0] == 255).mean() < 0.01
    assert any("16-bit" in n for n in out.notes)


def test_palette_png_without_transparency():
    rgb = _blocks(40, 48)
    pal = Image.fromarray(rgb).quantize(colors=8)
    assert pal.mode == "P" and "transparency" not in pal.info
    out = decode_image(_encode(pal, "PNG"))
    _assert_rgb(out.array, 40, 48)
    assert np.array_equal(out.array, np.asarray(pal.convert("RGB")))
    assert np.abs(out.array.astype(int) - rgb).max() <= 8
    assert any("palette" in n for n in out.notes)


def test_palette_png_with_transparency_is_composited_on_white():
    idx = np.zeros((32, 40), np.uint8)
    idx[:, 20:] = 1
    idx[10:20, :] = 2
    pal = Image.fromarray(idx, mode="P")
    pal.putpalette([0, 0, 0, 200, 10, 10, 10, 150, 20] + [0] * (256 * 3 - 9))
    data = _encode(pal, "PNG", transparency=0)
    assert Image.open(io.BytesIO(data)).info.get("transparency") == 0
    out = decode_image(data)
    _assert_rgb(out.array, 32, 40)
    assert (out.array[idx == 0] == 255).all()  # transparent black -> white, not black
    assert (out.array[idx == 1] == (200, 10, 10)).all() and (out.array[idx == 2] == (10, 150, 20)).all()
    assert any("transparency" in n for n in out.notes)


def test_rgba_png_is_composited_on_white():
    rgba = np.zeros((24, 30, 4), np.uint8)
    rgba[..., :3] = (0, 0, 200)
    rgba[:, :10, 3] = 0
    rgba[:, 10:20, 3] = 128
    rgba[:, 20:, 3] = 255
    out = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    _assert_rgb(out.array, 24, 30)
    assert (out.array[:, :10] == 255).all()
    assert (out.array[:, 20:] == (0, 0, 200)).all()
    half = out.array[:, 10:20].astype(int)
    assert np.abs(half - np.array([127, 127, 227])).max() <= 2
    assert any("alpha" in n for n in out.notes)


@pytest.mark.parametrize("mode", ["L", "LA", "1"])
def test_grayscale_images(mode):
    gray = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (20, 1))
    im = Image.fromarray(gray, "L")
    if mode != "L":
        im = im.convert(mode)
    out = decode_image(_encode(im, "PNG"))
    _assert_rgb(out.array, 20, 64)
    arr = out.array
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 0] == arr[..., 2]).all()
    if mode == "1":
        assert set(np.unique(arr)) <= {0, 255}
    else:
        assert np.array_equal(arr[..., 0], gray)
    assert out.notes


def test_cmyk_jpeg_is_converted_to_rgb():
    cmyk = np.zeros((32, 32, 4), np.uint8)
    cmyk[:16, :, 0] = 255  # cyan
    cmyk[16:, :, 1] = 255  # magenta
    im = Image.fromarray(cmyk, "CMYK")
    data = _encode(im, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = decode_image(data)
    _assert_rgb(out.array, 32, 32)
    assert np.abs(out.array[4:12, 4:28].astype(int) - (0, 255, 255)).mean() < 12
    assert np.abs(out.array[20:28, 4:28].astype(int) - (255, 0, 255)).mean() < 12
    assert any("CMYK" in n for n in out.notes)


def test_animated_gif_uses_the_first_frame():
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (40, 30), c) for c in colours]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    out = decode_image(data)
    _assert_rgb(out.array, 30, 40)
    assert (out.array == (255, 0, 0)).all()
    assert sum("first of 3 frames" in n for n in out.notes) == 1


def test_exif_orientation_is_applied_exactly_once():
    stored = _blocks(40, 64)  # landscape as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    data = _encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif)
    assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == 6
    out = decode_image(data)
    _assert_rgb(out.array, 64, 40)  # portrait: rotated once (twice would be landscape again)
    expected = np.rot90(stored, k=-1)  # clockwise
    diff = np.abs(out.array.astype(int) - expected.astype(int))
    assert diff.mean() < 4
    assert np.abs(out.array.astype(int) - np.rot90(stored, k=1).astype(int)).mean() > 50  # not the other way round
    assert out.notes.count("EXIF orientation applied") == 1


def test_exif_orientation_one_changes_nothing():
    exif = Image.Exif()
    exif[0x0112] = 1
    out = decode_image(_encode(Image.fromarray(_blocks(40, 64)), "PNG", exif=exif))
    assert np.array_equal(out.array, _blocks(40, 64)) and out.notes == []


@pytest.mark.parametrize("fmt,kw", [("PNG", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True})])
def test_plain_rgb_round_trips_exactly(fmt, kw):
    rng = np.random.default_rng(2)
    arr = rng.integers(0, 256, (33, 47, 3), dtype=np.uint8)
    out = decode_image(_encode(Image.fromarray(arr), fmt, **kw))
    assert np.array_equal(out.array, arr) and out.notes == []


def test_float_tiff_is_rescaled():
    arr = np.linspace(-1.0, 3.0, 20 * 30, dtype=np.float32).reshape(20, 30)
    out = decode_image(_encode(Image.fromarray(arr, "F"), "TIFF"))
    _assert_rgb(out.array, 20, 30)
    assert out.array.min() == 0 and out.array.max() == 255
    assert out.notes


# --------------------------------------------------------------------------------------------
# digests and samples


def test_image_digest():
    a = _blocks(10, 12)
    b = a.copy()
    assert image_digest(a) == image_digest(b)
    b[3, 4, 1] ^= 1
    assert image_digest(a) != image_digest(b)
    flat = np.arange(2 * 6 * 3, dtype=np.uint8)
    assert image_digest(flat.reshape(2, 6, 3)) != image_digest(flat.reshape(6, 2, 3))
    assert image_digest(np.asfortranarray(a)) == image_digest(a)


def test_samples_ship_offline():
    for name in sample_names():
        img = load_sample(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 8, name
        assert img.max() > img.min(), name
    with pytest.raises(ImageError, match="Unknown sample"):
        load_sample("Nope")


def test_downscale_never_enlarges():
    img = _blocks(300, 1200)
    small = images.downscale(img, 600)
    assert small.shape == (150, 600, 3) and small.dtype == np.uint8
    assert images.downscale(img, 2000) is img
