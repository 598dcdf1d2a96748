"""render: display normalisation, colour maps, overlays and the downloadable PNG grid."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from xai_core import render


@pytest.mark.parametrize("value", [0.0, 5.0, -3.0, 1e-30, 1e30])
def test_constant_unsigned_map_is_zeros_never_nan(value):
    out = render.normalise(np.full((12, 9), value, np.float32), signed=False)
    assert out.shape == (12, 9) and np.isfinite(out).all() and (out == 0).all()


def test_zero_signed_map_is_zeros():
    out = render.normalise(np.zeros((5, 5)), signed=True)
    assert np.isfinite(out).all() and (out == 0).all()


def test_nan_and_inf_inputs_give_finite_output():
    m = np.random.default_rng(0).random((10, 10)).astype(np.float32)
    m[2, 3], m[4, 4], m[5, 5] = np.nan, np.inf, -np.inf
    for signed in (False, True):
        out = render.normalise(m, signed)
        assert np.isfinite(out).all()


def test_signed_maps_keep_sign_within_minus_one_one():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(40, 30)) * 7
    out = render.normalise(m, signed=True)
    assert out.min() >= -1 and out.max() <= 1 and out.min() < -0.5 and out.max() > 0.5
    assert (np.sign(out) == np.sign(m)).all()
    assert render.normalise(-m, signed=True) == pytest.approx(-out)


def test_unsigned_maps_within_zero_one_and_robust_to_one_spike():
    rng = np.random.default_rng(2)
    m = rng.random((50, 50))
    m[0, 0] = 1000.0
    out = render.normalise(m, signed=False)
    assert out.min() >= 0 and out.max() <= 1 and out[0, 0] == 1
    assert 0.3 < float(np.median(out)) < 0.7  # the spike does not wash the map out
    assert render.normalise(m * 10 + 3, signed=False) == pytest.approx(out, abs=1e-5)  # affine invariant


def test_colorize():
    m = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
    signed = render.colorize(m, signed=True)
    assert signed.shape == (8, 8, 3) and signed.dtype == np.uint8
    assert tuple(signed[0, 0]) == (33, 102, 172)  # most negative: blue
    assert tuple(signed[-1, -1]) == (178, 24, 43)  # most positive: red
    assert tuple(render.colorize(np.zeros((3, 3)), signed=True)[1, 1]) == (247, 247, 247)  # zero: white
    for cmap in render.COLORMAPS:
        heat = render.colorize(m, signed=False, cmap=cmap)
        assert heat.shape == (8, 8, 3) and heat.dtype == np.uint8
        assert not np.array_equal(heat[0, 0], heat[-1, -1])


def test_colorize_on_a_fixed_scale_keeps_small_values_pale():
    """A difference of two maps scaled to ±1 drawn with scale=1: a tiny difference stays near white, where the
    default (its own percentile) would paint it in full colour."""
    diff = np.linspace(-0.01, 0.01, 64, dtype=np.float32).reshape(8, 8)
    white = np.array([247, 247, 247])
    fixed = render.colorize(diff, True, scale=1.0).astype(int)
    own = render.colorize(diff, True).astype(int)
    assert np.abs(fixed - white).max() <= 3
    assert np.abs(own - white).max() > 100
    assert render.colorize(np.full((4, 4), 2.0), True, scale=1.0)[0, 0].tolist() == [178, 24, 43]  # clipped at +1


def test_overlay():
    image = np.full((16, 20, 3), 100, np.uint8)
    m = np.random.default_rng(3).random((16, 20))
    out = render.overlay(image, m, signed=False, alpha=0.5)
    assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)
    assert np.array_equal(render.overlay(image, m, signed=False, alpha=0.0), image)
    # Signed overlays leave pixels with no attribution untouched.
    s = np.zeros((16, 20))
    s[:4] = 1.0
    out = render.overlay(image, s, signed=True, alpha=0.7)
    assert np.array_equal(out[8:], image[8:]) and not np.array_equal(out[:4], image[:4])


def test_grid_png_is_a_decodable_png():
    image = np.random.default_rng(4).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    m = np.random.default_rng(5).random((60, 90))
    panels = [(f"Method {i}\nsecond line", render.overlay(image, m, signed=bool(i % 2))) for i in range(5)]
    data = render.grid_png(image, panels, tile=100, cols=3)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    im = Image.open(io.BytesIO(data))
    im.load()
    assert im.format == "PNG" and im.mode == "RGB"
    assert im.size == (3 * 108 + 8, 2 * (100 + 40 + 8) + 8)  # 6 tiles in 3 columns, 2 rows
    single = Image.open(io.BytesIO(render.grid_png(image, [], tile=50)))
    assert single.size == (50 + 16, 50 + 40 + 16)


def test_to_png_round_trips():
    image = np.random.default_rng(6).integers(0, 256, (7, 11, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(render.to_png(image)))), image)
