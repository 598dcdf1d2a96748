"""Sanity checks: model randomisation reproduces Adebayo et al.'s finding on the bundled model, never touches
the cached model, and every similarity is finite (constant maps are reported, not NaN)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import random_image

from xai_core import ExplainerError, sanity

GRAD, CAM, GBP = "Gradient (saliency)", "Grad-CAM", "Guided Backprop"


def test_logit_randomisation_gradient_and_gradcam_change_guided_backprop_does_not(lite0, chelsea):
    """The paper's finding (Adebayo et al. 2018, Fig. 2): with only the logit layer re-initialised, Gradient and
    Grad-CAM lose their rank correlation with the trained model's map while Guided Backprop keeps it. Three seeds;
    measured on Chelsea (median [range]): Gradient 0.31 [0.27–0.32], Grad-CAM 0.65 [0.45–0.71], Guided Backprop
    1.00 [1.00–1.00]. Grad-CAM's spread is why a verdict needs several seeds."""
    r = sanity.model_randomisation(lite0, chelsea, [("gradient", {}), ("gradcam", {}), ("guided_backprop", {})],
                                   n_stages=1, seeds=3)
    assert r.stages == ["trained", "logits (_fc)"] and r.layers == [["_fc"]] and r.seeds == [0, 1, 2]
    rho = {n: r.spread(n)[0] for n in (GRAD, CAM, GBP)}
    assert all(s.n == 3 and s.low <= s.median <= s.upper_quartile <= s.high for s in rho.values())
    assert rho[GRAD].high < 0.5 and rho[GBP].low > 0.95 and rho[GBP].median - rho[GRAD].median > 0.5, rho
    assert r.similarity[GRAD]["Spearman |·|"] == [rho[GRAD].median]
    assert r.verdict(GBP).startswith("barely changes") and "3 of 3 seeds ≥ 0.8" in r.verdict(GBP)
    assert r.verdict(GRAD).startswith("depends") and "3 of 3 seeds < 0.5" in r.verdict(GRAD)
    assert r.probability[1] < 0.05 < 0.5 < r.probability[0]  # the randomised logits no longer see a cat
    assert r.maps[GRAD][0].shape == lite0.input_size  # compared at the explainer's own resolution
    assert r.similarity["Edge detector (Sobel)"]["Spearman |·|"] == [pytest.approx(1.0)]


@pytest.mark.slow
@pytest.mark.parametrize("base", [0, 100])
def test_adebayo_verdicts_hold_on_three_samples_for_two_base_seeds(lite0, base):
    """Cascading randomisation in three stages, three seeds each, on three samples: Guided Backprop is judged
    insensitive, Gradient and Grad-CAM dependent, whichever base seed. Measured (upper quartiles decide): Guided
    Backprop ρ ≥ 0.99 on every seed at the logits; Gradient's and Grad-CAM's lowest medians 0.03–0.47."""
    from xai_core.images import load_sample

    for name in ("Chelsea the cat", "Astronaut", "Rocket"):
        r = sanity.model_randomisation(lite0, load_sample(name), [("gradient", {}), ("gradcam", {}),
                                                                  ("guided_backprop", {})],
                                       n_stages=3, seed=base, seeds=3, edges=False)
        assert r.seeds == [base, base + 1, base + 2]
        kinds = {n: r.kind(n) for n in (GRAD, CAM, GBP)}
        assert kinds == {GRAD: "depends", CAM: "depends", GBP: "insensitive"}, (name, base, kinds, {
            n: [s.text() for s in r.spread(n)] for n in kinds})


def test_random_logit_separates_guided_backprop_from_gradient(lite0, chelsea):
    """Sixt et al. 2020: Guided Backprop's map hardly depends on the class explained, Gradient's does. Measured on
    Chelsea with random classes teddy, can opener, sunglasses: Guided Backprop ρ 1.00, Gradient 0.32 [0.31–0.35]."""
    q = sanity.random_logit(lite0, chelsea, [("gradient", {}), ("guided_backprop", {})], seeds=3)
    assert q.target == 285 and len(set(q.classes)) == 3 and q.target not in q.classes
    assert q.kind(GBP) == "insensitive" and q.kind(GRAD) == "depends", {n: s.text() for n, s in q.spreads.items()}
    assert q.spreads[GBP].low - q.spreads[GRAD].high > 0.4
    assert q.verdict(GBP).startswith("barely changes when another class is explained")
    assert q.original[GRAD].shape == lite0.input_size and len(q.other[GRAD]) == 3
    single = sanity.random_logit(lite0, chelsea, [("gradient", {})], seeds=1, seed=1)  # batched == one at a time
    assert single.classes == q.classes[1:2]
    np.testing.assert_allclose(single.other[GRAD][0], q.other[GRAD][1], rtol=1e-4, atol=1e-6 * np.abs(q.other[GRAD][1]).max())


def test_random_classes_are_seeded_uniform_and_never_the_target():
    drawn = [sanity.random_class(s, 3, 5) for s in range(400)]
    assert 3 not in drawn and set(drawn) == {0, 1, 2, 4}
    assert drawn == [sanity.random_class(s, 3, 5) for s in range(400)]
    with pytest.raises(ExplainerError, match="two classes"):
        sanity.random_class(0, 0, 1)


def test_seed_count_is_checked_and_copy_seeds_never_collide():
    with pytest.raises(ExplainerError, match="between 1 and"):
        sanity.model_randomisation(None, np.zeros((8, 8, 3), np.uint8), [], seeds=0)
    pairs = {sanity.copy_seed(s, k) for s in range(50) for k in range(1, 9)}
    assert len(pairs) == 400


def test_verdict_statistics_on_known_values():
    s = sanity.Spread.of([0.9, -0.7, 0.81, 0.2])
    assert (s.median, s.low, s.high) == (pytest.approx(0.505), -0.7, 0.9)
    assert s.upper_quartile == pytest.approx(0.8325) and s.at_least(0.8) == 2 and s.below(0.5) == 2
    assert s.text() == "0.51 [-0.70–0.90]" and sanity.Spread.of([0.3]).text() == "0.30"


def test_cascade_to_the_stem_on_the_bundled_model_is_finite_and_never_touches_the_cached_model(lite0, chelsea):
    before = {k: v.clone() for k, v in lite0.module.state_dict().items()}
    seen = []
    r = sanity.model_randomisation(lite0, chelsea, [("gradient", {}), ("gradcam", {})], n_stages=4, seeds=2,
                                   progress=lambda f, t: seen.append(f))
    assert len(r.stages) == 5 and seen[-1] == 1.0 and seen == sorted(seen)
    for name, sims in r.similarity.items():
        for s, values in sims.items():
            assert len(values) == 4 and np.isfinite(values).all(), (name, s, values)
            assert all(sp.n == 2 and np.isfinite(sp.values).all() for sp in r.spreads[name][s])
    assert all(np.isfinite(p) for p in r.probability)
    after = lite0.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    covered = [n for g in r.layers for n in g]
    assert sorted(covered) == sorted(sanity.weighted_layers(lite0, lite0.preprocess(chelsea)))  # every layer, once


def test_randomised_copies_are_seeded_and_only_change_the_chosen_layers(tiny):
    x = torch.rand(1, 3, 32, 32)
    a = sanity.randomised(tiny, ["fc"], x, seed=3)
    b = sanity.randomised(tiny, ["fc"], x, seed=3)
    c = sanity.randomised(tiny, ["fc"], x, seed=4)
    assert torch.equal(a.module.fc.weight, b.module.fc.weight) and not torch.equal(a.module.fc.weight, c.module.fc.weight)
    assert not torch.equal(a.module.fc.weight, tiny.module.fc.weight)
    assert torch.equal(a.module.conv1.weight, tiny.module.conv1.weight) and a.module is not tiny.module
    assert sanity.weighted_layers(tiny, x) == ["conv1", "conv2", "fc"]
    assert sanity.stages(["l1", "l2", "l3", "l4", "l5"], 3) == [["l5"], ["l4", "l3"], ["l2", "l1"]]


def test_similarities_identities_and_constant_maps():
    rng = np.random.default_rng(0)
    m = rng.random((50, 40)).astype(np.float32) - 0.5
    for fn in sanity.SIMILARITIES.values():
        assert fn(m, m) == pytest.approx(1.0, abs=1e-6)
    assert sanity.spearman_signed(m, -m) == pytest.approx(-1.0) and sanity.spearman_abs(m, -m) == pytest.approx(1.0)
    flat = np.zeros_like(m)
    assert sanity.is_constant(flat) and not sanity.is_constant(m)
    assert sanity.is_constant(np.full((4, 4), 7.0, np.float32))
    assert all(fn(m, flat) == 0.0 for fn in sanity.SIMILARITIES.values())
    with pytest.raises(ExplainerError, match="cannot be compared"):
        sanity.spearman_abs(m, m[:-1])


def test_spearman_abs_takes_abs_first_at_full_resolution():
    """A map whose sign flips from pixel to pixel: |·| first, so it ranks exactly like its absolute value (averaging
    the signed map down before |·| would cancel it to near zero and lose the ranking)."""
    rng = np.random.default_rng(1)
    mag = rng.random((96, 128)).astype(np.float32) + 0.1
    sign = np.where((np.indices(mag.shape).sum(0) % 2) == 0, 1.0, -1.0).astype(np.float32)  # a checkerboard
    a = mag * sign
    assert sanity.spearman_abs(a, np.abs(a)) == 1.0
    assert sanity.spearman_abs(a, -a) == 1.0 and sanity.spearman_signed(a, np.abs(a)) < 0.1


def test_rank_correlation_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    from xai_core.sanity.similarity import ranks

    rng = np.random.default_rng(2)
    a = np.maximum(rng.standard_normal((60, 70)), 0).astype(np.float32)  # half the pixels tied at 0 (a ReLU map)
    b = np.round(rng.standard_normal((60, 70)), 1).astype(np.float32) + a
    assert sanity.spearman_signed(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel())[0], abs=1e-12)
    np.testing.assert_array_equal(ranks(np.array([3.0, 1.0, 3.0, 2.0])), [2.5, 0.0, 2.5, 1.0])


def test_a_model_randomised_into_a_constant_gets_a_constant_map_reported(tiny):
    image = random_image(32, 32, seed=1)
    with torch.no_grad():
        dead = sanity.randomised(tiny, [], torch.rand(1, 3, 32, 32))
        dead.module.fc.weight.zero_()  # the class score no longer depends on the input: every gradient is 0
    r = sanity.model_randomisation(tiny, image, [("gradient", {})], n_stages=2)
    assert all(np.isfinite(v).all() for s in r.similarity.values() for v in s.values())
    r2 = sanity.model_randomisation(dead, image, [("gradient", {})], n_stages=2)
    assert r2.constant[GRAD][0] and r2.similarity[GRAD]["Spearman |·|"] == [0.0, 0.0]
    assert r2.spread(GRAD)[0].values == (0.0, 0.0, 0.0) and r2.verdict(GRAD).startswith("depends")


def test_input_attack_moves_the_gradient_map_and_softplus_defence_resists(lite0, chelsea):
    """Dombrowski et al. 2019 on the bundled model at 96×96 (30 Adam steps, ε = 8/255): the Gradient map moves
    towards a box in the top-right corner while the prediction stays; maps computed with softplus(β=2) barely
    move. Measured: distance to the target ÷4.9, success 0.80 vs 0.10 with the defence, p 0.97 → 1.00."""
    from xai_core import from_module
    from xai_core.sanity.attack import manipulate

    small = from_module(lite0.module, lite0.labels, input_size=(96, 96), mean=lite0.mean, std=lite0.std,
                        device=lite0.device)
    target = np.zeros(chelsea.shape[:2], np.float32)
    target[20:120, 300:430] = 1.0
    r = manipulate(small, chelsea, target, steps=30, epsilon=8 / 255, lr=1e-2, gamma=10, attack_beta=10)
    assert r.distance_before / r.distance_after > 2.5
    assert r.defended_success < r.success / 2
    assert abs(r.probability_after - r.probability_before) < 0.1
    assert np.abs(r.manipulated.astype(int) - r.original.astype(int)).max() <= 8 + 1  # ‖δ‖∞ ≤ 8/255 (+ rounding)


def test_cost_before_a_run_counts_the_maps_the_run_makes(tiny, monkeypatch):
    """The page states a run's cost from the registry's cost data before it runs: the map count is what the check
    then explains, and the passes are the registry's passes per map (Integrated Gradients: 2 per step)."""
    from xai_core.workbench import Workbench

    calls = []
    real = Workbench.explain_tensor
    monkeypatch.setattr(Workbench, "explain_tensor", lambda self, x, t, r, **k: calls.append(len(t)) or real(self, x, t, r, **k))
    methods = [("gradient", {}), ("integrated_gradients", {"steps": 8})]
    image = random_image(32, 32, seed=2)
    sanity.model_randomisation(tiny, image, methods, n_stages=2, seeds=2, edges=False)
    cost = sanity.randomisation_cost(methods, n_stages=2, seeds=2, input_size=tiny.input_size)
    assert cost.maps == sum(calls) == 2 * (1 + 2 * 2)
    assert cost.passes == 5 * (2 + 16) + 4 * 17 and cost.heaviest == "Integrated Gradients"  # 17: BatchNorm, p(class)
    assert cost.share == pytest.approx(5 * 16 / cost.passes)
    calls.clear()
    sanity.random_logit(tiny, image, methods, seeds=3)
    assert sanity.random_logit_cost(methods, seeds=3).maps == sum(calls) == 2 * 4
    assert "10 maps" in cost.text() and "Integrated Gradients" in cost.text() and " s at this" in cost.text(0.01)
    with pytest.raises(ExplainerError, match="between 1 and"):
        sanity.random_logit_cost(methods, seeds=0)
