"""CRAFT-style concept discovery (xai_core.concepts.craft): a planted concept is found, the lab CNN's tag is found
without being named, hostile sizes get a sentence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import f32_tol
from torch import nn

import xai_core
from xai_core import lab
from xai_core.concepts import craft
from xai_core.concepts.activations import activations_and_gradients
from xai_core.concepts.craft import MIN_IMAGES, coefficients, concept_maps, discover, grid_crops
from xai_core.concepts.errors import ConceptError
from xai_core.concepts.nmf import factorise, negative_share, transform
from xai_core.models.spec import ModelSpec

SIDE = 32
SQUARE = 8


class RedDetector(nn.Module):
    """1×1 conv → ReLU → GAP → linear. Channel 0 fires on red only (2R − G − B − 0.6 > 0); channels 1-3 on green,
    blue and brightness. Class 0 ('red') reads channel 0 with weight 3; both classes read the rest alike."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[2.0, -1, -1], [0, 1, 0], [0, 0, 1], [1 / 3, 1 / 3, 1 / 3]]).view(4, 3, 1, 1))
            self.conv.bias.copy_(torch.tensor([-0.6, -0.3, -0.3, -0.2]))
            self.fc.weight.copy_(torch.tensor([[3.0, 0.5, 0.5, 0.2], [0.0, 0.5, 0.5, 0.2]]))
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.pool(self.relu(self.conv(x)))))


def red_model() -> ModelSpec:
    return xai_core.from_module(RedDetector(), ["red", "other"], input_size=(SIDE, SIDE), cam_layer="relu",
                                mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), device="cpu")


def planted_images(n: int, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Green/blue/grey blocky backgrounds (R ≤ 0.35) with a pure red square at a random place; the squares' boxes."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 3, SIDE, SIDE), np.float32)
    boxes = np.zeros((n, 4), np.int64)
    for i in range(n):
        blocks = np.stack([rng.uniform(0, 0.35, (4, 4)), rng.uniform(0.2, 1, (4, 4)), rng.uniform(0.2, 1, (4, 4))])
        x[i] = blocks.repeat(SIDE // 4, 1).repeat(SIDE // 4, 2)
        y0, x0 = rng.integers(0, SIDE - SQUARE + 1, 2)
        x[i, :, y0:y0 + SQUARE, x0:x0 + SQUARE] = np.array([1.0, 0, 0]).reshape(3, 1, 1)
        boxes[i] = (x0, y0, x0 + SQUARE, y0 + SQUARE)
    return torch.from_numpy(x), boxes


def overlaps(a: tuple[int, int, int, int], b: np.ndarray) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_nmf_reconstructs_a_planted_factorisation_and_is_deterministic() -> None:
    gen = torch.Generator().manual_seed(1)
    u, w = torch.rand(60, 3, generator=gen), torch.rand(3, 12, generator=gen)
    a = u @ w
    f1, f2 = factorise(a, 3, iterations=2000, seed=4), factorise(a, 3, iterations=2000, seed=4)
    assert torch.equal(f1.concepts, f2.concepts) and torch.equal(f1.coefficients, f2.coefficients)
    assert f1.relative_error < 1e-2  # exact rank 3: multiplicative updates get within 1 % (measured 2e-3)
    assert (f1.coefficients >= 0).all() and (f1.concepts >= 0).all()
    torch.testing.assert_close(f1.concepts.norm(dim=1), torch.ones(3))
    # transform with the concepts fixed reproduces the fitted coefficients' reconstruction
    u2 = transform(a, f1.concepts, iterations=2000)
    assert float((u2 @ f1.concepts - a).norm() / a.norm()) < 2e-2


def test_crops_tile_the_input_and_keep_their_boxes() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    pieces, crops = grid_crops(x, 4, 2, resize=False)
    assert len(crops) == 2 * 9 and pieces.shape == (18, 3, 4, 4)
    for p, c in zip(pieces, crops, strict=True):
        x0, y0, x1, y1 = c.box
        assert torch.equal(p, x[c.image, :, y0:y1, x0:x1])


def test_planted_red_concept_is_found_first_with_its_crops_and_map() -> None:
    model = red_model()
    x, boxes = planted_images(24)
    found = discover(model, x, 0, rank=3, crop=0.5, stride=0.25, top_crops=10)
    top = found.concepts[0]
    assert found.layer == "relu" and found.relative_error < 0.1
    # the red channel leads (red pixels also light the brightness channel: measured direction 0.91, 0.07, 0.29, 0.29)
    assert int(top.direction.argmax()) == 0 and float(top.direction[0]) > 0.85
    assert all(float(c.direction[0]) < 0.1 for c in found.concepts[1:])
    assert top.importance > 1.2 * max(c.importance for c in found.concepts[1:])  # measured 0.250 vs 0.184
    assert all(overlaps(c.box, boxes[c.image]) for c in top.crops)
    maps = concept_maps(model, found, x)[:, 0]
    peaks = maps.flatten(1).argmax(1)
    for i, p in enumerate(peaks.tolist()):
        y, xx = divmod(p, SIDE)
        assert boxes[i, 0] <= xx < boxes[i, 2] and boxes[i, 1] <= y < boxes[i, 3]


def test_gradient_x_input_importance_is_complete_on_a_linear_head() -> None:
    """With GAP + linear after the layer: Σ_k importance_k + the residual's gradient × input = mean logit − bias."""
    model = red_model()
    x, _ = planted_images(12, seed=3)
    found = discover(model, x, 0, rank=3, crop=0.5, stride=0.25)
    data = activations_and_gradients(model, x, 0, "relu")
    assert data.grads is not None
    u = coefficients(data.acts, found.directions)
    residual = data.acts - torch.einsum("nkhw,kc->nchw", u, found.directions)
    rest = float((residual * data.grads).sum(dim=(1, 2, 3)).mean())
    with torch.no_grad():
        logit = float(model.module(x)[:, 0].mean())
    total = sum(c.importance for c in found.concepts) + rest
    assert abs(total - logit) <= f32_tol(max(abs(logit), 1.0), terms=4 * SIDE * SIDE)


def test_too_few_images_or_bad_sizes_get_a_sentence() -> None:
    model = red_model()
    x, _ = planted_images(MIN_IMAGES - 1)
    with pytest.raises(ConceptError, match=f"at least {MIN_IMAGES}"):
        discover(model, x, 0)
    with pytest.raises(ConceptError, match="concepts cannot be found"):
        factorise(torch.rand(5, 4), 9)
    with pytest.raises(ConceptError, match="do not fit"):
        grid_crops(torch.zeros(1, 3, 8, 8), 9, 1)


def test_lab_cnn_tag_concept_is_discovered_without_being_told() -> None:
    """Horses of a fresh lab set (90 % tagged); the discovery never sees tags, boxes or masks. Crops are not resized:
    the lab CNN is fully convolutional and trained at one scale (with CRAFT's resizing the 2× text activates none of
    its tag features: all importances came out negative, measured)."""
    model = lab.load_lab_model("cpu")
    data = lab.make_dataset(300, seed=7)
    horses = data.subset(data.labels == 1)
    found = discover(model, lab.to_tensor(horses.images), 1, rank=8, crop=0.375, stride=0.125, resize=False,
                     top_crops=10)

    def tag_overlap(c: object) -> float:
        return float(np.mean([horses.tagged[r.image] and overlaps(r.box, horses.tag_boxes[r.image]) for r in c.crops]))

    top3 = [tag_overlap(c) for c in found.concepts[:3]]
    # Measured (140 horses, 24-px crops every 8 px, rank 8): overlap 1.00 for each of the top 3 concepts (shares
    # 0.19, 0.18, 0.13) — and for all 7 concepts of positive importance: this model sees little but the tag; the one
    # negative concept (share −0.13) overlaps 0.00. Chance: a crop overlaps a tag box in 30.5 % of cases.
    chance = np.mean([horses.tagged[r.image] and overlaps(r.box, horses.tag_boxes[r.image])
                      for r in grid_crops(lab.to_tensor(horses.images), 24, 8, resize=False)[1]])
    assert chance < 0.4
    assert max(top3) >= 0.8, top3
    assert found.concepts[0].importance > 0


def test_semi_nmf_reconstructs_a_signed_product_and_is_deterministic() -> None:
    """Signed activations (a ViT's LayerNorm): U ≥ 0, W free; an exact rank-3 product is reconstructed."""
    gen = torch.Generator().manual_seed(1)
    u, w = torch.rand(80, 3, generator=gen), torch.randn(3, 12, generator=gen)
    a = u @ w
    assert 0.2 < negative_share(a) < 0.8 and negative_share(a.clamp_min(0)) == 0.0
    f1, f2 = factorise(a, 3, iterations=2000, seed=4, signed=True), factorise(a, 3, iterations=2000, seed=4, signed=True)
    assert torch.equal(f1.concepts, f2.concepts) and f1.signed
    assert f1.relative_error < 1e-3  # measured 4e-6 (HALS); Ding et al.'s multiplicative update stalled at 3.7e-2
    assert (f1.coefficients >= 0).all() and (f1.concepts < 0).any()
    u2 = transform(a, f1.concepts, iterations=2000)  # signed concepts: semi-NMF's update, negatives kept
    assert (u2 >= 0).all() and float((u2 @ f1.concepts - a).norm() / a.norm()) < 1e-3
    clipped = factorise(a, 3, iterations=2000, seed=4)  # plain NMF can only fit the clipped matrix
    assert not clipped.signed and (clipped.concepts >= 0).all()


def test_crops_made_in_parts_give_the_same_discovery_and_per_image_numbers_add_up(monkeypatch) -> None:
    model = red_model()
    x, _ = planted_images(12, seed=3)
    whole = discover(model, x, 0, rank=3)
    monkeypatch.setattr(craft, "CROPS_PER_PASS", 9)  # one image's 9 crops per pass
    parts = discover(model, x, 0, rank=3)
    # batches of another size: equal to float32 resolution (measured 6e-8), not bit for bit
    torch.testing.assert_close(parts.directions, whole.directions, rtol=1e-5, atol=1e-6)
    assert [c.crops for c in parts.concepts] == [c.crops for c in whole.concepts]
    assert whole.image_importance is not None and whole.image_coefficients is not None
    imp = torch.tensor([c.importance for c in whole.concepts])
    torch.testing.assert_close(whole.image_importance.mean(0), imp)  # per-image importances average to the concept's
    assert whole.image_coefficients.shape == (12, 3) and (whole.image_coefficients >= 0).all()
    assert not whole.signed and whole.negative_share == 0.0  # after a ReLU: plain NMF, nothing clipped
    with pytest.raises(ConceptError, match="Unknown factorisation"):
        discover(model, x, 0, rank=3, factorisation="pca")
