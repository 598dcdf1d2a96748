"""Agreement with Quantus 0.6 (test-only dependency, pinned in requirements-dev.txt) where the definitions match:
pointing game, relevance mass, top-k (IoU from Quantus's top-k intersection), AOPC with a black reference and
deletion. The differences that remain are written in the Methods catalogue (xai_core/catalogue.py: QUANTUS) and
checked here as relations, not hidden behind tolerances.

NumPy 2.4 removed ``np.trapz``, which Quantus 0.6's ``calculate_auc`` still calls (PixelFlipping's AUC): the
fixture below gives ``np`` a ``trapz`` alias of ``np.trapezoid`` for the duration of each test only, in this
process only. The app never uses ``np.trapz`` (metrics.auc uses ``np.trapezoid``).
"""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch
from helpers import SIZE, random_image

from xai_core import metrics
from xai_core.metrics import box_region, evaluate
from xai_core.metrics.localisation import iou, relevance_mass
from xai_core.metrics.pointing_game import pointing_game

N = SIZE[0] * SIZE[1]
BOX = (6, 9, 20, 25)  # x0, y0, x1, y1


@pytest.fixture(autouse=True)
def _trapz_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    if not hasattr(np, "trapz"):  # NumPy ≥ 2.4: Quantus 0.6 calls the removed name
        monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)


def _maps(seed: int, count: int = 6) -> np.ndarray:
    """Tie-free positive maps [count, H, W] (distinct values: every ordering is unique)."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(N).reshape(SIZE).astype(np.float32) / N + 1e-3 for _ in range(count)])


def _quantus_inputs(maps: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(maps)
    x = np.zeros((n, 3, *SIZE), np.float32)
    return x, np.zeros(n, int), maps[:, None].astype(np.float32), np.broadcast_to(region, (n, 1, *SIZE)).astype(float)


def test_pointing_game_relevance_mass_and_top_k_agree_with_quantus():
    region = box_region(SIZE, BOX)
    maps = _maps(0, 8)
    maps[0][region] += 2.0  # one sure hit, one sure miss
    maps[1][~region] += 2.0
    x, y, a, s = _quantus_inputs(maps, region)
    kw = dict(abs=False, normalise=False, disable_warnings=True)
    q_hit = quantus.PointingGame(**kw)(model=None, x_batch=x, y_batch=y, a_batch=a, s_batch=s)
    ours = [pointing_game(m, region, tolerance=0) for m in maps]  # Quantus has no tolerance
    assert ours == [float(v) for v in q_hit] and ours[:2] == [1.0, 0.0]
    q_mass = quantus.RelevanceMassAccuracy(**kw)(model=None, x_batch=x, y_batch=y, a_batch=a, s_batch=s)
    np.testing.assert_allclose([relevance_mass(m, region) for m in maps], q_mass, rtol=1e-5)  # float32 sums
    for k in (10, 100, 500):
        q_tki = np.asarray(quantus.TopKIntersection(k=k, **kw)(model=None, x_batch=x, y_batch=y, a_batch=a, s_batch=s))
        inter = q_tki * k  # pixels of the top k inside the region
        expected = inter / (k + region.sum() - inter)  # IoU of the top k with the region
        np.testing.assert_allclose([iou(m, region, threshold="top_fraction", level=k / N) for m in maps], expected,
                                   rtol=1e-12)


def test_relevance_mass_differs_from_quantus_on_signed_maps_as_documented():
    """Quantus sums the signed map; ours only its positive part (evidence for the class)."""
    region = box_region(SIZE, BOX)
    m = _maps(1, 1)[0] - 0.5
    x, y, a, s = _quantus_inputs(m[None], region)
    q = quantus.RelevanceMassAccuracy(abs=False, normalise=False, disable_warnings=True)(
        model=None, x_batch=x, y_batch=y, a_batch=a, s_batch=s)[0]
    signed = m[region].sum() / m.sum()
    positive = np.clip(m, 0, None)
    assert q == pytest.approx(signed, rel=1e-4)
    assert relevance_mass(m, region) == pytest.approx(positive[region].sum() / positive.sum(), rel=1e-6)
    assert abs(relevance_mass(m, region) - q) > 0.01


def _image_with_black() -> np.ndarray:
    img = random_image(*SIZE, seed=5)
    img[0, 0] = 0  # Quantus's "black" is the image's minimum; with one black pixel it is black (0), as ours
    return img


def test_aopc_with_a_black_reference_agrees_with_quantus_region_perturbation(planted):
    image, maps = _image_with_black(), _maps(2, 3)
    steps, patch = 12, 4
    r = evaluate(planted, image, {f"m{i}": m for i, m in enumerate(maps)}, metrics=["aopc_morf", "aopc_lerf"],
                 params={"aopc_morf": {"patch": patch, "steps": steps, "perturbation": "black"},
                         "aopc_lerf": {"patch": patch, "steps": steps, "perturbation": "black"}})
    x = planted.preprocess(image).numpy().repeat(len(maps), 0)
    y = np.full(len(maps), r.target)
    for mid, order in (("aopc_morf", "morf"), ("aopc_lerf", "lerf")):
        q = np.asarray(quantus.RegionPerturbation(patch_size=patch, regions_evaluation=steps, order=order, abs=False,
                                                  normalise=False, perturb_baseline="black", disable_warnings=True)(
            model=planted.module, x_batch=x, y_batch=y, a_batch=maps[:, None], softmax=True, device="cpu"))
        for i in range(len(maps)):
            c = r.curves[(f"m{i}", mid)]
            drops = c.probs[0] - c.probs[1:]  # Quantus returns f(x) − f(x_k) for k = 1..L
            np.testing.assert_allclose(drops, q[i], atol=1e-6)
            # Samek's AOPC averages over k = 0..L (the first term is 0): L/(L+1) × Quantus's mean.
            assert c.value == pytest.approx(q[i].sum() / (steps + 1), abs=1e-6)


class _Grey(torch.nn.Module):
    """The planted model on one grey channel: Quantus's PixelFlipping counts features as C×H×W but checks its step
    against H×W, so a step of whole RGB pixels is only possible with one channel."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.expand(-1, 3, -1, -1))


def test_deletion_with_a_black_baseline_agrees_with_quantus_pixel_flipping(planted):
    image = np.repeat(_image_with_black()[..., :1], 3, axis=2)  # grey: the three channels are equal
    maps = _maps(3, 2)
    steps = 16
    r = evaluate(planted, image, {f"m{i}": m for i, m in enumerate(maps)}, metrics=["deletion"],
                 params={"deletion": {"steps": steps, "baseline": "black"}})
    x = planted.preprocess(image).numpy()[:, :1].repeat(len(maps), 0)
    y = np.full(len(maps), r.target)
    kw = dict(features_in_step=N // steps, abs=False, normalise=False, perturb_baseline="black", disable_warnings=True)
    args = dict(model=_Grey(planted.module).eval(), x_batch=x, y_batch=y, a_batch=maps[:, None], softmax=True, device="cpu")
    curves = np.asarray(quantus.PixelFlipping(**kw)(**args))
    aucs = np.asarray(quantus.PixelFlipping(return_auc_per_sample=True, **kw)(**args))  # calls np.trapz
    for i in range(len(maps)):
        c = r.curves[(f"m{i}", "deletion")]
        np.testing.assert_allclose(c.probs[1:], curves[i], atol=1e-6)  # Quantus's curve starts after step 1
        # Quantus integrates its points with dx = 1 and no unperturbed start; ours over [0, 1] from x = 0.
        assert c.value == pytest.approx((aucs[i] + (c.probs[0] + c.probs[1]) / 2) / steps, abs=1e-6)
    assert metrics.auc(np.linspace(0, 1, 3), np.array([1.0, 0.5, 0.0])) == pytest.approx(0.5)


def test_every_metric_states_its_differences_from_quantus():
    from xai_core.catalogue import QUANTUS

    assert set(QUANTUS) == {m.id for m in metrics.list_metrics()}
    assert all(len(text) > 30 for text in QUANTUS.values())
