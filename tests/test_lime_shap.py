"""LIME and KernelSHAP over superpixels: exact answers on a model linear in the superpixels, efficiency, the
planted patch, determinism, the time budget, and agreement with Captum (test-only oracle)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import PATCH_COLS, PATCH_ROWS, SIZE, UNIT, random_image, random_input, spearman
from torch import nn

import xai_core
from xai_core import RunOptions, get_explainer, options
from xai_core.explainers import superpixels as sp
from xai_core.explainers.common import reference_input
from xai_core.explainers.lime import weighted_ridge

METHODS = ("lime", "kernel_shap")
GRID = {"segmentation": "grid", "n_segments": 16}  # 4 × 4 cells of 8 × 8 pixels at 32 × 32


class CellLinear(nn.Module):
    """Logit of class 0 = Σ_j w_j · (mean of channel 0 over grid cell j); the other classes are constant 0."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("w", w)
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += len(x)
        z = F.avg_pool2d(x[:, :1], 8).flatten(1) @ self.w
        return torch.stack([z, torch.zeros_like(z), torch.zeros_like(z)], 1)


def cell_means(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x[:, :1], 8).flatten(1)


@pytest.fixture
def linear() -> xai_core.ModelSpec:
    w = torch.randn(16, generator=torch.Generator().manual_seed(3))
    return xai_core.from_module(CellLinear(w), ["lin", "b", "c"], input_size=SIZE, device="cpu", **UNIT)


def run(method: str, model: xai_core.ModelSpec, x: torch.Tensor, target: torch.Tensor, **params) -> tuple[torch.Tensor, dict]:
    """The maps and the diagnostics of one run."""
    result = get_explainer(method).run(model, x, target, **params)
    return result.maps, dict(result.diagnostics)


def values(method: str, diagnostics: dict) -> list[np.ndarray]:
    return diagnostics["coefficients" if method == "lime" else "shap_values"]


@pytest.mark.parametrize("reference", ["black", "blurred"])
@pytest.mark.parametrize("method", METHODS)
def test_linear_model_recovers_w_times_cell_minus_reference(linear, method, reference):
    x = random_input(linear, 2, seed=1)
    maps, ex = run(method, linear, x, torch.zeros(2, dtype=torch.long), score="logit", reference=reference, **GRID)
    expected = linear.module.w * (cell_means(x) - cell_means(reference_input(linear, x, reference)))
    rtol = 0.02 if method == "lime" else 1e-4  # LIME's ridge (α = 1) shrinks by ~1%; Shapley values are exact
    for b in range(2):
        np.testing.assert_allclose(values(method, ex)[b], expected[b].numpy(), rtol=rtol, atol=rtol * 1e-2)
        assert np.array_equal(ex["segments"][b], sp.grid(32, 32, 16))
        # The map is each cell's value painted on its pixels.
        torch.testing.assert_close(maps[b], torch.from_numpy(values(method, ex)[b][ex["segments"][b]]).float())
    if method == "lime":
        assert min(ex["surrogate_r2"]) > 0.999


@pytest.mark.parametrize("score", ["logit", "probability"])
def test_kernel_shap_efficiency(tiny, linear, score):
    """Σφ = f(x) − f(∅), checked against the model's own scores of the image and the all-hidden image."""
    for model, seg in ((linear, GRID), (tiny, {})):
        x = random_input(model, 2, seed=4)
        t = torch.tensor([0, 1 if model is tiny else 0])
        _, ex = run("kernel_shap", model, x, t, score=score, reference="blurred", samples=300, **seg)
        with torch.no_grad():
            out = [model.module(v) for v in (x, reference_input(model, x, "blurred"))]
        f = [(o.softmax(1) if score == "probability" else o).gather(1, t[:, None])[:, 0].double() for o in out]
        delta = (f[0] - f[1]).numpy()
        sums = np.array([p.sum() for p in ex["shap_values"]])
        np.testing.assert_allclose(sums, delta, rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(ex["base_value"], f[1].numpy(), rtol=1e-5, atol=1e-7)
        assert max(ex["efficiency_gap"]) < 1e-9


@pytest.mark.parametrize("reference", sp.REFERENCES)
@pytest.mark.parametrize("method", METHODS)
def test_planted_patch_peaks_on_a_cell_overlapping_the_patch(planted, method, reference):
    x = random_input(planted, 3, seed=2)
    with torch.no_grad():
        target = planted.module(x).argmax(1)  # the class whose probability rises with the patch (see test_blackbox)
    maps, ex = run(method, planted, x, target, reference=reference, **GRID)
    seg = ex["segments"][0]
    patch_cells = set(np.unique(seg[PATCH_ROWS, PATCH_COLS]).tolist())
    for m, v in zip(maps, values(method, ex), strict=True):
        r, c = divmod(int(m.argmax()), SIZE[1])
        assert seg[r, c] in patch_cells
        outside = [abs(v[j]) for j in range(16) if j not in patch_cells]
        assert max(outside) < 0.2 * np.abs(v).max()  # cells the model cannot see get (almost) nothing


@pytest.mark.parametrize("method", METHODS)
def test_seeded_and_batch_independent(tiny, method):
    x, t = random_input(tiny, 3, seed=7), torch.tensor([0, 2, 4])
    a = get_explainer(method)(tiny, x, t, seed=3, samples=200)
    assert torch.equal(a, get_explainer(method)(tiny, x, t, seed=3, samples=200))
    assert not torch.equal(a, get_explainer(method)(tiny, x, t, seed=4, samples=200))
    singles = torch.cat([get_explainer(method)(tiny, x[i: i + 1], t[i: i + 1], seed=3, samples=200) for i in range(3)])
    assert torch.equal(a, singles)


@pytest.mark.parametrize("method", METHODS)
def test_time_budget_caps_samples_and_says_so(linear, method, monkeypatch):
    monkeypatch.setattr("xai_core.explainers.common.seconds_per_pass", lambda module, x: 0.01)  # 10 ms a pass
    # A 1 s budget; eager forwards, because the test counts Python forward calls (a frozen graph makes none).
    with options.using(RunOptions(freeze=False, time_budget=1.0)):
        x = random_input(linear, 1, seed=2)
        linear.module.seen = 0
        maps, ex = run(method, linear, x, torch.tensor([0]), samples=1000, **GRID)
        assert ex["samples"] == [100] and linear.module.seen == 100
        assert "capped from 1000 to 100" in ex["notice"][0] and "time budget" in ex["notice"][0]
        assert torch.isfinite(maps).all() and float(maps.abs().max()) > 0
        linear.module.seen = 0
        _, ex = run(method, linear, x, torch.tensor([0]), samples=50, **GRID)
    assert "notice" not in ex and linear.module.seen == 50


@pytest.mark.parametrize("segmentation", sp.SEGMENTATIONS)
@pytest.mark.parametrize("method", METHODS)
def test_every_segmentation_through_explain(tiny, method, segmentation):
    e = xai_core.explain(tiny, random_image(48, 40, seed=2), method, seed=1, samples=100, segmentation=segmentation)
    seg = e.value("segments")
    assert e.diagnostics["segments"].spec.show == "segments"
    assert seg.shape == SIZE and seg.dtype == np.int32
    assert np.array_equal(np.unique(seg), np.arange(seg.max() + 1))  # consecutive labels from 0
    vals = e.value(e.diagnostics["segments"].spec.weights)
    assert vals.shape == (seg.max() + 1,) and e.map.shape == (48, 40) and e.signed
    assert isinstance(e.value("surrogate_r2" if method == "lime" else "efficiency_gap"), float)


def test_sampling_and_references(tiny):
    rng = np.random.default_rng(0)
    z = sp.shapley_coalitions(rng, 2001, 10)
    assert (z[0] == 1).all() and (z[1] == 0).all() and np.array_equal(z[3::2], 1 - z[2:-1:2])  # paired
    k = z[2:].sum(1).astype(int)
    assert k.min() >= 1 and k.max() <= 9
    p = 9 / (np.arange(1, 10) * (10 - np.arange(1, 10)))
    np.testing.assert_allclose(np.bincount(k, minlength=10)[1:] / len(k), p / p.sum(), atol=0.03)
    zl = sp.bernoulli_coalitions(rng, 2000, 10)
    assert (zl[0] == 1).all() and abs(zl[1:].mean() - 0.5) < 0.02
    x = random_input(tiny, 2, seed=1)
    seg = torch.from_numpy(np.stack([sp.grid(32, 32, 16)] * 2)).long()
    ref = sp.references(tiny, x, seg, "mean")
    cell = F.avg_pool2d(x, 8)
    torch.testing.assert_close(ref, F.interpolate(cell, scale_factor=8, mode="nearest"))


def test_weighted_ridge_matches_scikit_learn():
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(1)
    z, y, w = rng.integers(0, 2, (300, 12)).astype(float), rng.normal(size=300), rng.random(300)
    beta, b, r2 = weighted_ridge(z, y, w, 1.0)
    ref = linear_model.Ridge(alpha=1.0).fit(z, y, sample_weight=w)
    np.testing.assert_allclose(beta, ref.coef_, atol=1e-10)
    assert b == pytest.approx(ref.intercept_) and r2 == pytest.approx(ref.score(z, y, sample_weight=w))


@pytest.mark.parametrize("method", METHODS)
def test_agrees_with_captum(linear, method):
    from captum.attr import KernelShap, Lime

    x = random_input(linear, 1, seed=5)
    _, ex = run(method, linear, x, torch.tensor([0]), score="logit", reference="black", samples=500, **GRID)
    mask = torch.from_numpy(ex["segments"][0]).long()[None, None]
    algo = Lime if method == "lime" else KernelShap
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = algo(linear.module).attribute(x.contiguous(), target=0, baselines=0.0, feature_mask=mask, n_samples=500,
                                               perturbations_per_eval=50, return_input_shape=False)
    rho = spearman(values(method, ex)[0], theirs[0])
    assert rho >= 0.95


@pytest.mark.parametrize("method", METHODS)
def test_one_superpixel_and_progress(linear, method):
    x, seen = random_input(linear, 2, seed=6), []
    maps, ex = run(method, linear, x, torch.tensor([0, 0]), score="logit", reference="black", samples=50,
                   segmentation="grid", n_segments=2, progress=lambda f, text: seen.append(f))
    assert all(s.max() == 0 for s in ex["segments"]) and torch.isfinite(maps).all()
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0) and len(seen) >= 2
    if method == "kernel_shap":  # one player gets the whole difference f(x) − f(black)
        f = linear.module(x)[:, 0]
        np.testing.assert_allclose([v[0] for v in ex["shap_values"]], f.numpy(), rtol=1e-5)
    with pytest.raises(xai_core.Cancelled):
        get_explainer(method)(linear, x, torch.tensor([0, 0]), samples=50, progress=_cancel)


def _cancel(fraction: float, text: str) -> None:
    raise xai_core.Cancelled("stopped")
