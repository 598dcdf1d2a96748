"""ImageNet-W carton concepts on the bundled ImageNet EfficientNet-Lite0 (xai_core.lab.imagenet_w_concepts): the
concept of 'carton' whose importance rises most when the watermark is added is off on the clean images, on on the
watermarked ones, and its crops and map sit on the watermark's text."""

from __future__ import annotations

import numpy as np
import pytest

import xai_core
from xai_core import images
from xai_core.concepts.errors import ConceptError
from xai_core.lab import imagenet_w_concepts as iwc


def test_the_watermark_turns_on_one_carton_concept_that_sits_on_the_text(lite0: xai_core.ModelSpec) -> None:
    samples = {n: images.load_sample(n) for n in images.sample_names()}  # 7 images + their watermarked copies
    found = iwc.carton_concepts(lite0, samples, rank=10, crop=0.5, stride=0.25)
    top = found.riser
    assert found.layer == lite0.cam_layer and not found.discovery.signed  # a ReLU6 layer: plain NMF
    # Measured at the CAM layer (1280 × 7 × 7), rank 10: the rising concept is the most important one (share 0.48);
    # importance 0.013 clean → 2.36 watermarked, mean coefficient 0.037 → 6.5: absent until the watermark is drawn.
    assert found.rising == 0 and top.share > 0.3
    assert top.importance_marked > 20 * max(top.importance_clean, 0.01)
    assert top.coefficient_marked > 20 * top.coefficient_clean
    assert all(c.rise < 0.5 * top.rise for c in found.concepts if c is not top)
    # its 10 reference crops all come from watermarked images and hold watermark pixels (measured 10/10)
    assert top.crops_on_watermark >= 0.9
    # its map on the watermarked images: 0.32–0.38 of its mass in the text box, which covers 0.156 of the image
    marked = np.array(found.mass_in_box_marked)
    assert (marked > 1.5 * found.box_share).all() and marked.mean() > 2 * found.box_share, marked
    assert found.images.shape == (14, 224, 224, 3) and found.masks.shape == (7, 224, 224)
    assert (found.masks.sum(axis=(1, 2)) > 500).all()  # the overlay's own pixels: about 5 % of each image


def test_too_few_images_or_a_non_imagenet_model_get_a_sentence(lite0: xai_core.ModelSpec) -> None:
    few = {n: images.load_sample(n) for n in images.sample_names()[:4]}
    with pytest.raises(ConceptError, match="at least 5"):
        iwc.carton_concepts(lite0, few)
    lab_model = xai_core.load_model("lab_horse_cnn", device="cpu")
    with pytest.raises(xai_core.ExplainerError, match="ImageNet-1k classifier"):
        iwc.carton_concepts(lab_model, few)
