"""The ImageNet-W watermark (Li et al. 2023) on the bundled ImageNet model: the carton probability rises, and LRP
puts the carton evidence on the watermark."""

from __future__ import annotations

import numpy as np
import pytest

import xai_core
from xai_core import images
from xai_core.lab import imagenet_w as iw


@pytest.fixture(scope="module")
def samples() -> dict[str, np.ndarray]:
    return {n: images.load_sample(n) for n in images.sample_names()}


def test_the_watermark_changes_only_pixels_in_its_text_box(chelsea):
    clean = chelsea[:224, :224].copy()
    marked, (x0, y0, x1, y1) = iw.watermark(clean)
    changed = np.abs(marked.astype(int) - clean).sum(2) > 0
    assert changed.sum() > 500 and not changed[:y0].any() and not changed[y1:].any() and not changed[:, x1:].any()
    assert 0.1 < xai_core.metrics.box_share(clean.shape[:2], (x0, y0, x1, y1)) < 0.2


def test_carton_probability_rises_on_every_sample(lite0, samples):
    shifts = iw.carton_shift(lite0, samples)
    assert len(shifts) == len(samples) >= 7
    assert all(s.p_marked > s.p_clean and s.rank_marked < s.rank_clean for s in shifts)
    assert np.median([s.ratio for s in shifts]) > 10  # measured: ×2.4 to ×150, median ×35
    p = xai_core.probabilities(lite0, lite0.resized(samples["Grass texture"]))
    assert shifts[[s.name for s in shifts].index("Grass texture")].p_clean == pytest.approx(float(p[iw.CARTON]), rel=1e-3)


def test_lrp_moves_the_carton_evidence_onto_the_watermark(lite0, samples):
    found = {n: iw.where_explainers_point(lite0, im, ["lrp"]) for n, im in samples.items()}
    row = iw.mass_over(found, ["lrp"])[0]
    assert row["images where it rose"] == f"{len(samples)}/{len(samples)}"
    # measured 0.09 → 0.36; the box is 15% of the image
    assert row["mass in box, watermarked"] > 2 * row["mass in box, clean"] and row["mass in box, watermarked"] > 0.25


def test_a_model_without_imagenet_classes_is_refused_clearly():
    lab_model = xai_core.load_model("lab_horse_cnn", device="cpu")
    with pytest.raises(xai_core.ExplainerError, match="ImageNet-1k classifier"):
        iw.carton_shift(lab_model, {"x": np.zeros((64, 64, 3), np.uint8)})
