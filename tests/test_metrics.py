"""Evaluation metrics: the oracle beats a random map beats the anti-oracle on a model that only sees a
planted patch; curves are well formed; localisation scores are exact on constructed cases."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import PATCH_COLS, PATCH_ROWS, SIZE, random_image

from xai_core import ExplainerError, metrics
from xai_core.metrics import box_region, evaluate

SMALL = {"deletion": {"steps": 16}, "insertion": {"steps": 16}, "aopc_morf": {"patch": 4, "steps": 12},
         "aopc_lerf": {"patch": 4, "steps": 12}}
PATCH_BOX = (PATCH_COLS.start, PATCH_ROWS.start, PATCH_COLS.stop, PATCH_ROWS.stop)


@pytest.fixture
def bright_patch_image() -> np.ndarray:
    img = random_image(*SIZE, seed=3)
    img[PATCH_ROWS, PATCH_COLS] = 255  # bright evidence where the model looks
    return img


def oracle_maps() -> dict[str, np.ndarray]:
    oracle = np.zeros(SIZE, np.float32)
    # The model sees the patch through a 3×3 convolution: the 1-px ring around it matters too (less).
    oracle[PATCH_ROWS.start - 1:PATCH_ROWS.stop + 1, PATCH_COLS.start - 1:PATCH_COLS.stop + 1] = 0.5
    oracle[PATCH_ROWS, PATCH_COLS] = 1.0
    oracle += np.linspace(0, 1e-3, oracle.size, dtype=np.float32).reshape(SIZE)  # no ties
    return {"oracle": oracle, "random": metrics.reference_maps(np.zeros((*SIZE, 3), np.uint8), seed=1)[metrics.RANDOM],
            "anti-oracle": 1.0 - oracle}


def test_oracle_beats_random_beats_anti_oracle_on_every_metric(planted, bright_patch_image):
    region = box_region(SIZE, PATCH_BOX)
    r = evaluate(planted, bright_patch_image, oracle_maps(), params=SMALL, region=region)
    assert r.target == 1  # the class whose probability rises with the patch
    v = r.values
    assert v["oracle"]["deletion"] < v["random"]["deletion"] < v["anti-oracle"]["deletion"]
    assert v["oracle"]["insertion"] > v["random"]["insertion"] > v["anti-oracle"]["insertion"]
    assert v["oracle"]["aopc_morf"] > v["random"]["aopc_morf"] > v["anti-oracle"]["aopc_morf"]
    # LeRF: the oracle's least relevant regions are invisible to the model, so nothing changes at all.
    assert v["oracle"]["aopc_lerf"] == pytest.approx(0.0, abs=1e-6)
    assert v["oracle"]["aopc_lerf"] <= v["random"]["aopc_lerf"] < v["anti-oracle"]["aopc_lerf"]
    assert v["oracle"]["pointing_game"] == 1.0 and v["anti-oracle"]["pointing_game"] == 0.0
    assert v["oracle"]["iou"] == pytest.approx(56 / 90, abs=1e-6)  # patch 7×8 inside its ring 9×10 (both > 20%)
    assert v["oracle"]["relevance_mass"] > 0.6 > v["random"]["relevance_mass"]
    # Every step of every curve went through one batched engine call: 3 maps × (17 + 17 + 13 + 13) inputs.
    assert r.passes == 3 * (17 + 17 + 13 + 13)


def test_curves_are_well_formed_and_auc_uses_trapezoid(planted, bright_patch_image):
    r = evaluate(planted, bright_patch_image, oracle_maps(), metrics=["deletion", "insertion"], params=SMALL)
    for (name, mid), c in r.curves.items():
        assert c.xs[0] == 0 and c.xs[-1] == 1 and np.all(np.diff(c.xs) > 0)
        assert np.all((c.probs >= 0) & (c.probs <= 1))
        assert c.value == pytest.approx(float(np.trapezoid(c.probs, c.xs)))
        p = r.plans[(name, mid)]
        assert p.counts[0] == 0 and p.counts[-1] == SIZE[0] * SIZE[1] and np.all(np.diff(p.counts) >= 0)
    # Deleting the oracle's pixels (brightest evidence first, then the ring, then what the model cannot see)
    # only lowers p. (Insertion need not be monotone: the ring's true pixels are darker than the blur's.)
    assert np.all(np.diff(r.curves[("oracle", "deletion")].probs) <= 1e-6)
    # Both curves meet the unperturbed probability: deletion starts there, insertion ends there.
    p0 = float(torch.softmax(planted.module(planted.preprocess(bright_patch_image)), 1)[0, 1])
    for name in ("oracle", "random"):
        assert r.curves[(name, "deletion")].probs[0] == pytest.approx(p0, abs=1e-5)
        assert r.curves[(name, "insertion")].probs[-1] == pytest.approx(p0, abs=1e-5)
    # Perturbed inputs are nested: pixels changed at step k stay changed at step k + 1.
    base = r.image_at("random", "deletion", 0).astype(int)
    changed = [np.any(r.image_at("random", "deletion", k).astype(int) != base, axis=2) for k in range(0, 17, 4)]
    assert all(np.all(a <= b) for a, b in zip(changed, changed[1:], strict=False)) and changed[-1].all()
    assert metrics.auc(np.linspace(0, 1, 11), np.linspace(0, 1, 11)) == pytest.approx(0.5)


def test_no_metric_uses_the_removed_numpy_trapz():
    for f in Path(metrics.__file__).parent.glob("*.py"):
        names = {n.attr for n in ast.walk(ast.parse(f.read_text())) if isinstance(n, ast.Attribute)}
        assert "trapz" not in names, f


def test_evaluating_maps_together_equals_one_at_a_time(planted, bright_patch_image):
    maps = oracle_maps()
    together = evaluate(planted, bright_patch_image, maps, params=SMALL, metrics=["deletion", "aopc_morf"])
    for name, m in maps.items():
        alone = evaluate(planted, bright_patch_image, {name: m}, params=SMALL, metrics=["deletion", "aopc_morf"])
        for mid in ("deletion", "aopc_morf"):
            assert alone.values[name][mid] == pytest.approx(together.values[name][mid], rel=1e-5, abs=1e-7)


def test_flat_maps_are_ranked_by_a_seeded_permutation_not_row_major():
    rank = metrics.order_of(torch.zeros(8, 8), seed=0)
    assert sorted(rank.flatten().tolist()) == list(range(64))
    assert rank[:2].max() > 16  # the top rows are not all first
    torch.testing.assert_close(rank, metrics.order_of(torch.zeros(8, 8), seed=0))
    ranked = metrics.order_of(torch.arange(16.0).view(4, 4))
    assert ranked[3, 3] == 0 and ranked[0, 0] == 15


def test_pointing_game_tolerance_iou_and_relevance_mass_are_exact():
    region = box_region((100, 100), (20, 20, 40, 40))
    m = np.zeros((100, 100), np.float32)
    m[50, 30] = 1.0  # 11 px below the box
    pg = metrics.get_metric("pointing_game").fn
    assert pg(m, region, tolerance=15) == 1.0 and pg(m, region, tolerance=5) == 0.0
    assert pg(np.zeros_like(m), region) == 0.0  # a flat map points nowhere
    m2 = np.zeros((100, 100), np.float32)
    m2[30:50, 20:40] = 1.0  # half inside the box
    m2[0, 0] = -5.0  # negative evidence is ignored by IoU and mass
    iou = metrics.get_metric("iou").fn
    assert iou(m2, region) == pytest.approx(200 / 600)
    assert iou(m2, region, threshold="top_fraction", level=0.04) == pytest.approx(200 / 600)
    assert metrics.get_metric("relevance_mass").fn(m2, region) == pytest.approx(0.5)


def test_regions_from_boxes_and_masks_and_their_errors():
    assert box_region((10, 20), (18, 2, 30, 5)).sum() == 2 * 3  # clipped to the image
    with pytest.raises(ExplainerError, match="empty or outside"):
        box_region((10, 20), (25, 2, 30, 5))
    mask = np.zeros((5, 10, 3), np.uint8)
    mask[1:3, 2:6] = 255
    region = metrics.mask_region(mask, (10, 20))
    assert region.shape == (10, 20) and region.sum() == 4 * 8
    with pytest.raises(ExplainerError, match="mask is empty"):
        metrics.mask_region(np.zeros((4, 4), np.uint8), (8, 8))


def test_reference_maps_are_finite_and_the_edge_detector_finds_edges():
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, 32:] = 255
    refs = metrics.reference_maps(img)
    assert set(refs) == {metrics.RANDOM, metrics.CENTRE, metrics.EDGES}
    assert all(r.shape == (64, 64) and np.isfinite(r).all() for r in refs.values())
    assert abs(int(np.argmax(refs[metrics.EDGES].max(axis=0))) - 32) <= 1
    r, c = np.unravel_index(int(np.argmax(refs[metrics.CENTRE])), (64, 64))
    assert r in (31, 32) and c in (31, 32)


def test_metric_registry_is_documented_and_directions_are_stated():
    ids = [m.id for m in metrics.list_metrics() if m.default]  # the cheap ones, chosen unless the user picks
    assert ids == ["deletion", "insertion", "aopc_morf", "aopc_lerf", "pointing_game", "iou", "relevance_mass"]
    for m in metrics.list_metrics():
        assert m.fn.__doc__ and m.reference and m.column[-1] in "↑↓" and m.passes and m.requires
    assert metrics.get_metric("deletion").column == "Deletion AUC ↓"
    with pytest.raises(ExplainerError, match="has no parameter"):
        metrics.get_metric("deletion").resolve({"colour": 1})


def test_bad_shapes_are_clear_errors(planted, bright_patch_image):
    with pytest.raises(ExplainerError, match="is 3×2 but the image is 32×32"):
        evaluate(planted, bright_patch_image, {"m": np.zeros((2, 3), np.float32)})


def test_reference_stability_reruns_one_metric_per_reference_and_reports_the_order(planted, bright_patch_image):
    maps = {k: v for k, v in oracle_maps().items()}
    st = metrics.reference_stability(planted, bright_patch_image, maps, metric="aopc_morf",
                                     params={"patch": 4, "steps": 12})
    assert list(st.values) == list(metrics.REFERENCES) and all(set(v) == set(maps) for v in st.values.values())
    for ref in metrics.REFERENCES:  # each reference gives what one evaluation with that reference gives
        one = evaluate(planted, bright_patch_image, maps, metrics=["aopc_morf"],
                       params={"aopc_morf": {"patch": 4, "steps": 12, "perturbation": ref}})
        assert st.values[ref] == {n: one.values[n]["aopc_morf"] for n in maps}
    assert st.ranking("black")[0] == "oracle" and st.ranking("black")[-1] == "anti-oracle"
    assert st.stable and st.text().startswith("Stable: the ranking by AOPC MoRF is oracle > random > anti-oracle")
    flipped = metrics.Stability("deletion", {"black": {"a": 0.1, "b": 0.2}, "noise": {"a": 0.3, "b": 0.2}})
    assert not flipped.stable and flipped.text() == ("Not stable: the ranking by Deletion AUC changes with the "
                                                     "reference — black: a > b; noise: b > a.")
    assert metrics.reference_param(metrics.get_metric("deletion")) == "baseline"
    assert metrics.reference_param(metrics.get_metric("insertion")) is None
    with pytest.raises(ExplainerError, match="no reference to vary"):
        metrics.reference_stability(planted, bright_patch_image, maps, metric="insertion")
