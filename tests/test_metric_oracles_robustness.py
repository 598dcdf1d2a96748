"""Agreement of sensitivity-max (Captum), sparseness and complexity (Quantus) and Focus (Quantus) with their reference
implementations, driven with the same perturbations, maps and mosaics (see test_metric_oracles.py for the faithfulness
metrics). Small random-init models built here; nothing is downloaded."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch
from captum.metrics import sensitivity_max as captum_sensitivity
from helpers import EPS32, SmoothCNN, TinyCNN, random_image, seeded
from test_metric_oracles import ODD, level_map, spec_of

from xai_core import metrics
from xai_core.metrics import focus as focus_mod
from xai_core.metrics.infidelity import pixel_noise
from xai_core.request import ExplainRequest
from xai_core.workbench import Workbench


def test_sensitivity_max_agrees_with_captum_through_the_workbench():
    seeded(5)
    spec = spec_of(SmoothCNN(), (32, 32))
    wb = Workbench(spec)
    image = random_image(32, 32, seed=10)
    request = ExplainRequest.make("gradient", None, {}, 0)
    e = wb.explain(image, request)
    r = metrics.evaluate(wb, image, {"g": e.map}, metrics=["sensitivity_max"], requests={"g": request},
                         params={"sensitivity_max": {"samples": 6, "radius": 0.05}})
    x = spec.preprocess(image)
    deltas = torch.cat([pixel_noise(spec, x, k, 0, "uniform", 0.05)[None] for k in range(6)])

    def explain(inp: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if isinstance(inp, tuple):  # Captum explains x itself as a 1-tuple and expects a tuple back
            return tuple(explain(t) for t in inp)
        return wb.explain_tensor(inp, [r.target] * len(inp), request).maps

    theirs = captum_sensitivity(explain, x, perturb_func=lambda inp, radius: inp + deltas, perturb_radius=0.05,
                                n_perturb_samples=6)
    assert r.values["g"]["sensitivity_max"] == pytest.approx(float(theirs), rel=1e-5)
    assert r.values["g"]["sensitivity_max"] > 0


def test_sparseness_and_complexity_agree_with_quantus():
    rng = np.random.default_rng(3)
    maps = np.stack([rng.standard_normal(ODD), rng.random(ODD) ** 8, level_map(4), np.abs(rng.standard_normal(ODD))])
    maps = maps.astype(np.float32)
    x, y, a = np.zeros((len(maps), 3, *ODD), np.float32), np.zeros(len(maps), int), maps[:, None].copy()
    q_gini = quantus.Sparseness(disable_warnings=True)(model=None, x_batch=x, y_batch=y, a_batch=a.copy())
    q_entropy = quantus.Complexity(disable_warnings=True)(model=None, x_batch=x, y_batch=y, a_batch=a.copy())
    ours = [metrics.get_metric(k) for k in ("sparseness", "complexity")]
    rtol = 4 * EPS32 * maps[0].size ** 0.5  # Quantus sums 1000 float32 values, we sum float64: ~1.5e-5
    np.testing.assert_allclose([ours[0].score(m) for m in maps], q_gini, rtol=rtol)
    np.testing.assert_allclose([ours[1].score(m) for m in maps], q_entropy, rtol=rtol)
    assert ours[0].score(np.zeros(ODD)) == pytest.approx(0.0) and ours[1].score(np.zeros(ODD)) == pytest.approx(np.log(1000))


def test_focus_agrees_with_quantus_on_the_same_mosaics():
    seeded(7)
    spec = spec_of(TinyCNN(width=8))
    wb = Workbench(spec)
    x = spec.preprocess(random_image(*ODD, seed=12))
    others = torch.cat([spec.preprocess(random_image(*ODD, seed=30 + i)) for i in range(3)])
    request = ExplainRequest.make("gradient", None, {}, 0)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def explain(xs: torch.Tensor) -> torch.Tensor:
        maps = wb.explain_tensor(xs, [2] * len(xs), request).maps
        seen.append((xs, maps))
        return maps

    value = focus_mod.focus(spec, x, torch.zeros(ODD), metrics.Rerun(explain, lambda k, seed: others[:k], 2),
                            mosaics=3, seed=4)
    mosaics, maps = seen[0]
    flags = [tuple(int(q in focus_mod.arrangement(4, j)) for q in range(4)) for j in range(3)]
    q = quantus.Focus(abs=False, normalise=False, disable_warnings=True)(
        model=spec.module, x_batch=mosaics.numpy(), y_batch=np.full(3, 2), a_batch=maps[:, None].numpy(),
        custom_batch=flags)
    assert value == pytest.approx(float(np.mean(q)), abs=1e-6)
    small = torch.nn.functional.interpolate(x, size=(10, 25), mode="bilinear", antialias=True, align_corners=False)
    for j, f in enumerate(flags):  # the image fills exactly the quadrants Quantus is told hold the class
        for q_i, (row, col) in enumerate(focus_mod.QUADRANTS):
            tile = mosaics[j, :, row * 10:(row + 1) * 10, col * 25:(col + 1) * 25]
            assert torch.equal(tile, small[0]) == bool(f[q_i])
