"""Blur IG, Guided IG and XRAI against PAIR saliency 0.2.1 (the authors' library), plus their own properties.

PAIR's core classes take a ``call_model_function`` on numpy images ``[N, H, W, 3]``; here it maps pixels in [0, 1]
through the model's normalisation (ImageNet mean/std, so the mapping is exercised) and returns the gradient of the
target logit with respect to those pixels. Ours take normalised tensors and define the same paths in pixel space,
so the two agree value for value: Blur IG and Guided IG to float32 resolution (Guided IG is deterministic and even
calls the model on the same float32 inputs), XRAI's segments and merge exactly, XRAI's maps to float32 resolution
(its IG points are built in float32 here, float64 in PAIR). Definitions that differ are stated where they are used.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import LABELS, SIZE, SmoothCNN, TinyCNN, assert_close_f32, random_input, seeded, spearman
from saliency.core import BlurIG, GuidedIG, XRAIParameters
from saliency.core import xrai as pair_xrai
from saliency.core.base import INPUT_OUTPUT_GRADIENTS
from scipy.ndimage import gaussian_filter

import xai_core
from xai_core import Cancelled, get_explainer
from xai_core.engine import select
from xai_core.explainers import xrai_regions
from xai_core.explainers.blur_ig import BlurPath, blurred
from xai_core.explainers.pixel_paths import pixel_gradients
from xai_core.hooks import has_hooks

IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


def _spec(module: torch.nn.Module) -> xai_core.ModelSpec:
    return xai_core.from_module(module, LABELS, input_size=SIZE, cam_layer="act2", fc_layer="fc", device="cpu",
                                **IMAGENET)


@pytest.fixture(scope="module")
def relu() -> xai_core.ModelSpec:
    seeded(1)
    return _spec(TinyCNN())


@pytest.fixture(scope="module")
def smooth() -> xai_core.ModelSpec:
    """Smooth and clearly non-linear (the completeness checks need a score that moves along the path)."""
    seeded(0)
    module = SmoothCNN()
    with torch.no_grad():
        module.conv1.weight.mul_(6)
        module.conv2.weight.mul_(4)
        module.fc.weight.mul_(4)
    return _spec(module)


def pair_model(model: xai_core.ModelSpec, target: int):
    """PAIR's call_model_function: d logit[target] / d pixels for a batch of HWC images in [0, 1]."""
    def call(batch, call_model_args=None, expected_keys=None):
        p = torch.from_numpy(np.asarray(batch)).float().permute(0, 3, 1, 2).contiguous().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(model.module(model.normalise(p))[:, target].sum(), p)
        return {INPUT_OUTPUT_GRADIENTS: g.permute(0, 2, 3, 1).numpy()}
    return call


def hwc(model: xai_core.ModelSpec, x: torch.Tensor) -> np.ndarray:
    """The image as PAIR gets it: pixels in [0, 1], (H, W, 3), float64."""
    return model.denormalise(x)[0].permute(1, 2, 0).double().numpy()


def chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)


@pytest.mark.parametrize("shape,max_sigma,steps", [((32, 32), 10.0, 40), ((24, 40), 50.0, 25)])
@pytest.mark.parametrize("model", ["smooth", "relu"])
def test_blur_ig_matches_pair(request, model, shape, max_sigma, steps):
    """PAIR blurs in float64 (scipy.ndimage), ours with float32 matrices: the path points differ by float32
    round-off, which on a ReLU model can switch a unit on or off (a jump in the gradient), so there the maps agree
    in rank; on the smooth model value for value."""
    spec = request.getfixturevalue(model)
    x = torch.nn.functional.interpolate(random_input(spec, 1, seed=3), size=shape, mode="bilinear")
    ours = get_explainer("blur_ig").attribute(spec, x, torch.tensor([2]), max_sigma=max_sigma, steps=steps).values[0]
    ref = chw(BlurIG().GetMask(hwc(spec, x), pair_model(spec, 2), max_sigma=max_sigma, steps=steps, batch_size=10))
    assert spearman(ours, ref) >= 0.99
    if model == "smooth":
        assert_close_f32(ours, ref)


def test_blur_matrices_are_scipy_gaussian_filter_with_black_padding():
    img, sigmas = np.random.default_rng(0).random((3, 20, 28)), np.array([0.0, 0.7, 3.0, 40.0])
    rows, cols = BlurPath(20, sigmas, 0.01, torch.device("cpu")), BlurPath(28, sigmas, 0.01, torch.device("cpu"))
    x = torch.from_numpy(img).float()[None].expand(4, -1, -1, -1)
    got = blurred(rows, cols, x, torch.arange(4))
    for k, s in enumerate(sigmas):
        want = gaussian_filter(img, sigma=[0, s, s], mode="constant") if s else img
        assert_close_f32(got[k], torch.from_numpy(want).float(), terms=28)


@pytest.fixture
def numpy_quantile_shim(monkeypatch):
    """PAIR 0.2.1's Guided IG calls numpy.quantile(..., interpolation=...), which numpy 2.4 removed (now 'method')."""
    original = np.quantile
    monkeypatch.setattr(np, "quantile", lambda a, q, interpolation="linear", **kw: original(a, q, method=interpolation,
                                                                                           **kw))


@pytest.mark.parametrize("steps,fraction,max_dist", [(50, 0.25, 0.02), (30, 0.1, 0.1), (40, 0.5, 1.0)])
def test_guided_ig_matches_pair(relu, numpy_quantile_shim, steps, fraction, max_dist):
    x = random_input(relu, 1, seed=3)
    got = get_explainer("guided_ig").attribute(relu, x, torch.tensor([2]), steps=steps, fraction=fraction,
                                               max_dist=max_dist)
    ref = GuidedIG().GetMask(hwc(relu, x), pair_model(relu, 2), x_steps=steps, fraction=fraction, max_dist=max_dist)
    assert_close_f32(got.values[0], chw(ref))  # the same path: PAIR's float64 result rounded once to float32
    assert spearman(got.values[0], chw(ref)) >= 0.99


def test_guided_ig_without_deviation_is_left_riemann_ig(smooth):
    """max_dist = 0 pins the path to the straight line: IG from black with the left Riemann sum."""
    x, t, steps = random_input(smooth, 1, seed=2), torch.tensor([3]), 16
    pix = smooth.denormalise(x)
    ig = sum(pixel_gradients(smooth, pix * (k / steps), t).grad for k in range(steps)) * pix / steps
    got = get_explainer("guided_ig").attribute(smooth, x, t, steps=steps, max_dist=0.0).values
    assert_close_f32(got, ig)


def test_xrai_segments_are_pairs(relu):
    image = hwc(relu, random_input(relu, 1, seed=4))
    for radius in (5, 0):
        ours = xrai_regions.segment_masks(image, radius)
        assert np.array_equal(ours, np.stack(pair_xrai._get_segments_felzenszwalb(image, dilation_rad=radius)))


@pytest.mark.parametrize("fast", [False, True])
def test_xrai_merge_is_pairs_exactly(relu, fast):
    image = hwc(relu, random_input(relu, 1, seed=4))
    masks = xrai_regions.segment_masks(image, 5)
    attr = np.random.default_rng(1).normal(size=image.shape[:2]) ** 3  # heavy tails: regions differ clearly
    attr[:8] = 0.0  # and a flat band: ties PAIR breaks by segment order
    ours = xrai_regions.merge(attr, masks, 50, fast=fast)
    values, ranks = (pair_xrai.XRAI._xrai_fast if fast else pair_xrai.XRAI._xrai)(attr, list(masks), min_pixel_diff=50)
    assert np.array_equal(ours.values, values) and np.array_equal(ours.labels + 1, ranks)
    # Each region is the new part of one segment and carries its mean attribution: the map keeps the total.
    assert ours.values.sum() == pytest.approx(attr.sum(), rel=1e-12)
    for label in range(len(ours.gains) - 1):
        region = ours.labels == label
        assert (masks[:, region].all(1)).any() and ours.gains[label] == pytest.approx(attr[region].mean(), rel=1e-12)


@pytest.mark.parametrize("algorithm", ["full", "fast"])
@pytest.mark.parametrize("model", ["smooth", "relu"])
def test_xrai_matches_pair(request, model, algorithm):
    """Same IG (PAIR's 'linspace' points) from black and white: PAIR's defaults are the image's min and max, which
    this image does not reach, so PAIR is given black and white as its baselines. The IG points are float32 here and
    float64 in PAIR (see the Blur IG test for what that does on a ReLU model); on the smooth model the maps, and so
    the order in which regions are added, agree to float32 resolution."""
    spec = request.getfixturevalue(model)
    x = random_input(spec, 1, seed=3)
    ours = get_explainer("xrai").run(spec, x, torch.tensor([2]), steps=20, rule="linspace", algorithm=algorithm)
    image = hwc(spec, x)
    ref = pair_xrai.XRAI().GetMaskWithDetails(
        image, pair_model(spec, 2), baselines=[np.zeros_like(image), np.ones_like(image)], batch_size=20,
        extra_parameters=XRAIParameters(steps=20, algorithm=algorithm, return_xrai_segments=True))
    assert spearman(ours.maps[0], ref.attribution_mask) >= 0.99
    if model == "smooth":
        assert_close_f32(ours.maps[0], torch.from_numpy(ref.attribution_mask))
        assert np.array_equal(ours.diagnostics["segments"][0] + 1, ref.segments)


def test_xrai_map_is_constant_on_its_regions(smooth):
    x, t = random_input(smooth, 2, seed=6), torch.tensor([0, 4])
    result = get_explainer("xrai").run(smooth, x, t, steps=16)
    diagnostics = result.diagnostics
    for m, labels, gains in zip(result.maps, diagnostics["segments"], diagnostics["region_gains"], strict=True):
        m = m.double().numpy()
        assert labels.min() == 0 and len(gains) == labels.max() + 1 > 5
        for label, gain in enumerate(gains):
            assert np.allclose(m[labels == label], gain, rtol=0, atol=1e-7 * np.abs(m).max())
        assert (np.diff(gains[:-1]) <= 0).all()  # ranked by density (the pixels no segment added come last)


@pytest.mark.parametrize("method,steps,tolerance", [("blur_ig", 400, 0.01), ("guided_ig", 800, 0.03)])
def test_completeness(smooth, method, steps, tolerance):
    """Σ attributions ≈ f(x) − f(path start) (the fully blurred image; black): both are left Riemann sums, so the gap
    falls like 1/steps (measured at 400 / 800 steps: 0.2 % / 0.2 % and 1.4 % / 0.6 % on the two images)."""
    x, t = random_input(smooth, 2, seed=1), torch.tensor([1, 3])
    spec = get_explainer(method)
    params = {"max_sigma": 20.0} if method == "blur_ig" else {}
    fine = spec.attribute(smooth, x, t, steps=steps, **params)
    pix = smooth.denormalise(x)
    if method == "blur_ig":
        path = BlurPath(SIZE[0], np.array([20.0]), 0.01, x.device)
        start = smooth.normalise(blurred(path, path, pix, torch.zeros(2, dtype=torch.long)))
    else:
        start = smooth.normalise(torch.zeros_like(pix))
    with torch.no_grad():
        delta = select(smooth.module(x), t) - select(smooth.module(start), t)
    assert (delta.abs() > 0.1).all()
    gap = (fine.values.sum(dim=(1, 2, 3)) - delta).abs() / delta.abs()
    assert (gap < tolerance).all(), gap
    assert np.allclose(fine.diagnostics["completeness_gap"], gap.numpy(), atol=1e-4)
    coarse = spec.attribute(smooth, x, t, steps=steps // 16, **params).diagnostics["completeness_gap"]
    assert (np.asarray(coarse) > 3 * gap.numpy()).all()  # not vacuous: fewer steps miss by far more


@pytest.mark.parametrize("method", ["blur_ig", "guided_ig", "xrai"])
def test_progress_reaches_one_and_cancel_stops(relu, method):
    x, t = random_input(relu, 2, seed=0), torch.tensor([0, 1])
    seen: list[float] = []
    get_explainer(method)(relu, x, t, steps=8, progress=lambda f, _text: seen.append(f))
    assert seen and seen[-1] == pytest.approx(1.0) and seen == sorted(seen)

    def cancel(f, _text):
        raise Cancelled("Stopped by the user.")

    with pytest.raises(Cancelled):
        get_explainer(method)(relu, x, t, steps=8, progress=cancel)
    assert not has_hooks(relu.module)
