"""Property-based fuzzing of the upload boundary: whatever the bytes, the image decoder, the labels parser, the box
CSV parser, both zip readers and the checkpoint reader either succeed or raise their one typed error.

Inputs are valid files of every kind with bytes flipped, truncated or spliced, plus zips whose header fields are
drawn at random. Examples are derandomised (the same on every machine) and bounded so all of this takes ~30 s;
XAI_FUZZ_EXAMPLES=20000 runs a long randomised search instead."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import torch
from helpers import png_bytes, random_image, zip_bytes
from hostile import Entry, raw_zip, torch_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from xai_core import ImageError, ModelLoadError, metrics
from xai_core.lab import folders
from xai_core.untrusted import DecodedImage, Limits, decode_image, parse_boxes, parse_labels, read_state_dict

DEEP = int(os.environ.get("XAI_FUZZ_EXAMPLES", "0"))  # e.g. 20000: a long run with fresh random examples


def fuzz(examples: int) -> settings:
    return settings(max_examples=DEEP or examples, deadline=None, derandomize=not DEEP, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


SMALL = Limits(image_pixels=1_000_000, zip_member_bytes=2**20, zip_total_bytes=8 * 2**20)  # fast, same code paths


def _encode(fmt: str, mode: str = "RGB", **kw) -> bytes:
    im = Image.fromarray(random_image(12, 10, seed=len(fmt) + len(mode))).convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _gif() -> bytes:
    frames = [Image.new("RGB", (9, 9), c) for c in ((250, 0, 0), (0, 250, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50)
    return buf.getvalue()


IMAGES = [_encode("PNG"), _encode("PNG", "I;16"), _encode("PNG", "P"), _encode("PNG", "RGBA"), _encode("JPEG"),
          _encode("JPEG", progressive=True), _encode("WEBP"), _encode("TIFF", compression="tiff_deflate"),
          _encode("TIFF", "F"), _encode("BMP"), _gif(), _encode("JPEG", "CMYK")]


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A seed file with a few bytes replaced, then maybe truncated or spliced with random bytes."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(1, len(data)))
    tail = draw(st.binary(max_size=64)) if draw(st.booleans()) else b""
    return bytes(data[:cut]) + tail


@fuzz(1500)
@given(st.one_of(mutated(IMAGES), st.binary(max_size=256)))
def test_image_decoder_raises_only_image_errors(data):
    try:
        out = decode_image(data, limits=SMALL)
    except ImageError:
        return
    assert isinstance(out, DecodedImage) and out.array.dtype == np.uint8 and out.array.shape[2] == 3


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                     max_leaves=12)
_label_text = st.one_of(
    st.binary(max_size=200),
    _json.map(lambda v: json.dumps(v).encode()),
    st.lists(st.sampled_from(["[", "]", "{", "}", '"', ",", ":", "1", "a", "\\", " ", "\n", "NaN", "1e400"]),
             max_size=60).map(lambda parts: "".join(parts).encode()),
)


@fuzz(800)
@given(_label_text, st.integers(1, 6))
def test_labels_parser_raises_only_model_load_errors(data, n):
    try:
        names = parse_labels(data, n)
    except ModelLoadError:
        return
    assert len(names) == n and all(isinstance(s, str) for s in names)


_csv_field = st.one_of(st.sampled_from(["1", "-2.5", "inf", "nan", "1e400", "=1+1", '"', "", " 3 ", "1_0"]),
                       st.text(max_size=12))


@fuzz(800)
@given(st.one_of(st.text(max_size=200), st.lists(st.lists(_csv_field, max_size=7), max_size=6).map(
    lambda rows: "\n".join(",".join(r) for r in rows))))
def test_box_csv_parser_raises_only_image_errors(text):
    try:
        boxes = parse_boxes(text)
    except ImageError:
        return
    assert all(len(b) == 4 and all(np.isfinite(b)) for b in boxes.values())


_PNG = png_bytes(random_image(16, 16))
ZIPS = [zip_bytes({"cats/1.png": _PNG, "cats/1_mask.png": png_bytes(np.full((16, 16), 255, np.uint8)),
                   "dogs/2.png": _PNG, "boxes.csv": b"filename,x0,y0,x1,y1\n2.png,1,1,9,9\n"}),
        raw_zip([Entry("set/a.png", _PNG), Entry("set/b/c.png", _PNG)])]
for method in (8, 12):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        z.writestr("x/1.png", _PNG)
        z.writestr("y/2.bmp", IMAGES[9])
    ZIPS.append(buf.getvalue())

_names = st.one_of(st.sampled_from(["a/1.png", "b/2.png", "../x.png", "/x.png", "a\\3.png", "boxes.csv", "c/"]),
                   st.binary(min_size=1, max_size=12))
_entries = st.lists(st.builds(
    Entry, name=_names, data=st.one_of(st.just(_PNG), st.binary(max_size=40)), method=st.sampled_from([0, 8, 12, 14, 99]),
    crc=st.one_of(st.none(), st.integers(0, 2**32 - 1)), size=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    csize=st.one_of(st.none(), st.integers(0, 2**32 - 1)), flags=st.sampled_from([0, 1, 8, 0x800])), min_size=1, max_size=5)


@fuzz(800)
@given(st.one_of(mutated(ZIPS), _entries.map(raw_zip)))
def test_both_zip_readers_raise_only_image_errors(data):
    for read in (metrics.read_zip, folders.read_class_zip):
        try:
            read(data)
        except ImageError:
            pass


CHECKPOINTS = [torch_bytes({"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(2, dtype=torch.int64)}),
               torch_bytes({"state_dict": {"module.x": torch.ones(4)}, "epoch": 3})]


@fuzz(500)
@given(mutated(CHECKPOINTS))
def test_checkpoint_reader_raises_only_model_load_errors(data):
    try:
        state = read_state_dict(data, "w.pth")
    except ModelLoadError:
        return
    assert all(isinstance(v, torch.Tensor) and v.layout == torch.strided for v in state.values())
