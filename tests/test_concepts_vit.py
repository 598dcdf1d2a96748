"""Concepts on a ViT's token layer (xai_core.concepts): the patch tokens are the positions (on the patch grid), the
class token is left out; a planted concept is found in a toy token model and in a tiny random-init timm ViT; signed
token layers are factorised by semi-NMF; TCAV works on tokens (logistic and FastCAV CAVs agree)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import DEVICE
from torch import nn

import xai_core
from xai_core.concepts.activations import activations
from xai_core.concepts.craft import coefficients, concept_maps, discover
from xai_core.concepts.errors import ConceptError
from xai_core.concepts.nmf import transform
from xai_core.concepts.tcav import tcav
from xai_core.hooks import capture
from xai_core.models.layout import TokenGrid
from xai_core.models.own import wrap

timm = pytest.importorskip("timm")

SIDE, PATCH = 32, 8
GRID = SIDE // PATCH
FEATURES = torch.tensor([[2.0, -1, -1], [0, 1, 0], [0, 0, 1], [1 / 3, 1 / 3, 1 / 3]])  # red, green, blue, brightness


class TokenRed(nn.Module):
    """A toy ViT: 8×8 patches → tokens of their mean colour's features, a class token prepended, a per-token MLP
    activation (``mlp.act``: ReLU; unit 0 fires on red only), then the patch tokens' mean → linear. Class 0 reads the
    red unit (weight 3); both classes read the rest alike. The class token fires the red unit 10× harder than a red
    patch: were it not left out, every map and factorisation would be about it."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 4, PATCH, stride=PATCH)
        self.cls_token = nn.Parameter(torch.tensor([[[10.0, 0, 0, 0]]]))
        self.mlp = nn.Sequential()
        self.mlp.fc1 = nn.Linear(4, 4)
        self.mlp.act = nn.ReLU()
        self.head = nn.Linear(4, 2)
        with torch.no_grad():
            self.embed.weight.copy_((FEATURES / PATCH**2).view(4, 3, 1, 1).expand(4, 3, PATCH, PATCH))
            self.embed.bias.zero_()
            self.mlp.fc1.weight.copy_(torch.eye(4))
            self.mlp.fc1.bias.copy_(torch.tensor([-0.6, -0.3, -0.3, -0.2]))
            self.head.weight.copy_(torch.tensor([[3.0, 0.5, 0.5, 0.2], [0.0, 0.5, 0.5, 0.2]]))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2)
        t = self.mlp(torch.cat([self.cls_token.expand(len(t), -1, -1), t], 1))
        return self.head(t[:, 1:].mean(1))


def token_red() -> xai_core.ModelSpec:
    return xai_core.from_module(TokenRed(), ["red", "other"], input_size=(SIDE, SIDE), cam_layer="mlp.act",
                                reshape=TokenGrid(1, (GRID, GRID)), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                                device=DEVICE)


def tiny_vit() -> xai_core.ModelSpec:
    torch.manual_seed(1)
    m = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=SIDE, patch_size=PATCH, depth=2,
                          num_classes=3)
    return wrap(m, id="timm_vit", title="tiny timm ViT", labels=list("abc"), input_size=(SIDE, SIDE),
                mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), device=DEVICE)


def backgrounds(n: int, rng: np.random.Generator) -> np.ndarray:
    """Green/blue/grey patch-sized blocks with little red (R ≤ 0.35)."""
    blocks = np.stack([rng.uniform(0, 0.35, (n, GRID, GRID)), rng.uniform(0.2, 1, (n, GRID, GRID)),
                       rng.uniform(0.2, 1, (n, GRID, GRID))], 1)
    return blocks.repeat(PATCH, 2).repeat(PATCH, 3).astype(np.float32)


def planted(n: int, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Backgrounds with one patch painted pure red; the red patch's (row, column) on the grid."""
    rng = np.random.default_rng(seed)
    x = backgrounds(n, rng)
    where = rng.integers(0, GRID, (n, 2))
    for i, (r, c) in enumerate(where):
        x[i, :, r * PATCH:(r + 1) * PATCH, c * PATCH:(c + 1) * PATCH] = np.array([1.0, 0, 0]).reshape(3, 1, 1)
    return torch.from_numpy(x).to(DEVICE), where


def on_patch(maps: torch.Tensor, where: np.ndarray) -> float:
    """Share of images whose map [N, H, W] peaks (averaged per patch) on the planted patch."""
    grid = torch.nn.functional.avg_pool2d(maps[:, None], PATCH)[:, 0].flatten(1).argmax(1).cpu().numpy()
    return float(np.mean(grid == where[:, 0] * GRID + where[:, 1]))


def test_toy_token_model_planted_concept_is_found_without_the_class_token() -> None:
    model = token_red()
    x, where = planted(24)
    found = discover(model, x, 0, rank=3, crop=0.5, stride=0.25)
    top = found.concepts[0]
    assert not found.signed and found.negative_share == 0.0  # a ReLU layer: plain NMF
    # the planted direction is the red unit (a red patch also lights the brightness unit a little)
    assert int(top.direction.argmax()) == 0 and float(top.direction[0]) > 0.85, top.direction
    assert top.importance > 1.2 * max(c.importance for c in found.concepts[1:])
    assert on_patch(concept_maps(model, found, x)[:, 0], where) == 1.0
    for c in top.crops:  # every reference crop holds the red patch
        r, col = where[c.image]
        x0, y0, x1, y1 = c.box
        assert x0 < (col + 1) * PATCH and col * PATCH < x1 and y0 < (r + 1) * PATCH and r * PATCH < y1
    assert found.image_coefficients is not None and found.image_coefficients.shape == (24, 3)


def test_token_grid_is_the_patch_tokens_in_row_major_order_without_the_class_token() -> None:
    model = tiny_vit()
    x, _ = planted(4, seed=2)
    layer = "blocks.0.norm1"
    with torch.inference_mode(), capture(model.submodule(layer)) as rec:
        model.module(x)
    assert rec.activation is not None
    raw = rec.activation.float().cpu()  # [N, 1 + 16, C]: the class token first
    acts = activations(model, x, layer).acts
    assert acts.shape == (4, raw.shape[2], GRID, GRID)
    directions = torch.nn.functional.normalize(torch.randn(3, raw.shape[2], generator=torch.Generator().manual_seed(0)),
                                               dim=1)
    u = coefficients(acts, directions)  # [N, 3, 4, 4]
    expected = transform(raw[:, 1:].reshape(-1, raw.shape[2]), directions).view(4, GRID, GRID, 3).permute(0, 3, 1, 2)
    torch.testing.assert_close(u, expected)


@pytest.mark.parametrize("layer", ["blocks.0.norm1", "blocks.1.norm1"])
def test_tiny_vit_planted_red_patch_concept_sits_on_the_patch(layer: str) -> None:
    """A random-init ViT still maps a pure red patch to a token unlike the background's: one of the concepts of its
    LayerNorm layer (signed: semi-NMF) is that patch. Before attention (block 0) and after one block of mixing.
    Measured over 4 image seeds × both layers at rank 6: the best concept's map peaks on the red patch in 24/24
    images every time (semi-NMF); clipping the negatives away (plain NMF) gave 8/24 to 24/24."""
    model = tiny_vit()
    x, where = planted(24)
    found = discover(model, x, 0, layer=layer, rank=6, crop=0.5, stride=0.25)
    assert found.signed and 0.4 < found.negative_share < 0.6  # a LayerNorm output: half the mass is negative
    assert found.relative_error < 0.05  # measured 0.017 and 0.023
    assert bool((found.directions < 0).any())
    maps = concept_maps(model, found, x)
    assert maps.shape == (24, 6, SIDE, SIDE)
    hits = [on_patch(maps[:, k], where) for k in range(6)]
    assert max(hits) == 1.0 and sorted(hits)[-2] <= 0.25, hits  # chance: 1/16 per image


def test_last_vit_block_mlp_has_no_gradient_and_says_so() -> None:
    model = tiny_vit()
    x, _ = planted(10)
    with pytest.raises(ConceptError, match="choose an earlier layer"):
        discover(model, x, 0, layer="blocks.1.mlp.act", rank=2)


def test_tcav_on_tokens_finds_the_red_concept_with_both_cavs() -> None:
    model = token_red()
    rng = np.random.default_rng(7)
    inputs = planted(16, seed=5)[0] * 0.5 + torch.from_numpy(backgrounds(16, rng)).to(DEVICE) * 0.5
    concept = planted(20, seed=1)[0]
    randoms = [torch.from_numpy(backgrounds(20, np.random.default_rng(100 + i))).to(DEVICE) for i in range(10)]
    for method in ("logistic", "fastcav"):
        red = tcav(model, inputs, 0, concept, randoms, cav_method=method)
        assert red.score == 1.0 and red.significant, (method, red)  # class 0 reads the red unit
        assert tcav(model, inputs, 1, concept, randoms, cav_method=method).score <= 0.5
