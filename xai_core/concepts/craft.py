"""Concept discovery per class, CRAFT-style (Fel et al., 'CRAFT: Concept Recursive Activation FacTorization for
Explainability', CVPR 2023): crops of a class's images → a layer's activations, spatially averaged → non-negative
factorisation ``A ≈ U W`` (rows of ``W`` are the concepts) → each concept's importance for the class → its
reference crops and its map on an image.

Importance here is **gradient × input on the concept coefficients** (not the paper's Sobol indices): on each full
image every spatial activation ``a`` is written ``a ≈ Σ_k u_k w_k`` (``u`` ≥ 0 for the fixed concepts), and concept
k's importance is ``Σ_positions u_k · (w_k · ∂logit/∂a)``, averaged over the images. For a head that is linear in
the layer (global pooling + linear, as the lab CNN) this is the concept's exact share of the logit.

Token models (ViT): the layer's patch tokens are the "positions" (``ModelSpec.as_grid`` lays them on the patch grid);
the class and register tokens are left out of the factorisation, the coefficients and the maps. Token layers are
signed (LayerNorm, GELU outputs), and CRAFT's NMF needs non-negative activations: when more than
:data:`SIGNED_SHARE` of the activations' mass is negative, the factorisation is semi-NMF (:mod:`.nmf`: signed
concepts, non-negative coefficients) instead of clipping the negatives away.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.spec import ModelSpec
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .activations import activations, activations_and_gradients
from .errors import ConceptError, require_images
from .nmf import factorise, negative_share, transform

MIN_IMAGES = 10  # fewer images give a factorisation that changes with every added image
METHOD = "gradient × input on the concept coefficients"
SIGNED_SHARE = 0.01  # negative share of the activation mass above which "auto" factorises by semi-NMF
CROPS_PER_PASS = 256  # crops resized to the input size held in memory at once (the rest are made as they go)
FACTORISATIONS = ("auto", "nmf", "semi-nmf")


@dataclass(frozen=True)
class Crop:
    """A crop of image ``image`` (its index in the set): ``box`` = (x0, y0, x1, y1) in model-input pixels."""

    image: int
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Concept:
    """One discovered concept: its ``direction`` [C] (unit norm; non-negative unless the discovery is ``signed``) at
    the layer, its ``importance`` for the class (mean gradient × input of its coefficient), ``share`` = importance /
    Σ|importance|, and the crops where its coefficient is largest, best first."""

    index: int
    direction: torch.Tensor
    importance: float
    share: float
    crops: tuple[Crop, ...]


@dataclass(frozen=True)
class Discovery:
    """Concepts of class ``target`` at ``layer``, most important first, with the factorisation's relative error.

    ``image_coefficients`` and ``image_importance`` [N, k] (columns in the order of :attr:`concepts`): each full
    image's mean concept coefficient over the layer's positions and its gradient × input importance. ``signed``: the
    concepts came from semi-NMF; ``negative_share``: the share of the crops' activation mass that was negative
    (clipped away when not ``signed``)."""

    target: int
    layer: str
    concepts: tuple[Concept, ...]
    relative_error: float
    importance_method: str = METHOD
    image_coefficients: torch.Tensor | None = None
    image_importance: torch.Tensor | None = None
    signed: bool = False
    negative_share: float = 0.0

    @property
    def directions(self) -> torch.Tensor:
        """The concepts' directions [k, C], in the order of :attr:`concepts`."""
        return torch.stack([c.direction for c in self.concepts])


def grid_crops(x: torch.Tensor, side: int, stride: int, *, resize: bool = True) -> tuple[torch.Tensor, list[Crop]]:
    """Square crops of ``side`` pixels every ``stride`` pixels over inputs ``x`` [N, 3, H, W]; each resized back to
    H × W (bilinear, as CRAFT) when ``resize``, else kept at ``side`` (fully convolutional models only)."""
    n, _c, h, w = x.shape
    if not 1 <= side <= min(h, w) or stride < 1:
        raise ConceptError(f"Crops of {side} pixels every {stride} do not fit {h}×{w} inputs; choose a smaller crop.")
    ys, xs = range(0, h - side + 1, stride), range(0, w - side + 1, stride)
    boxes = [(x0, y0, x0 + side, y0 + side) for y0 in ys for x0 in xs]
    out = torch.stack([x[:, :, y0:y1, x0:x1] for x0, y0, x1, y1 in boxes], 1).flatten(0, 1)
    if resize and (side != h or side != w):
        out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
    return out, [Crop(i, b) for i in range(n) for b in boxes]


def coefficients(acts: torch.Tensor, directions: torch.Tensor, *, signed: bool | None = None) -> torch.Tensor:
    """Concept coefficients ``U`` [N, k, h, w] ≥ 0 of feature maps ``acts`` [N, C, h, w] for fixed directions
    (``signed``: see :func:`.nmf.transform`)."""
    n, c, h, w = acts.shape
    u = transform(acts.permute(0, 2, 3, 1).reshape(-1, c), directions, signed=signed)
    return u.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def crop_activations(wb: Workbench, x: torch.Tensor, side: int, stride: int, resize: bool, layer: str | None,
                     progress: Progress | None = None) -> tuple[str, torch.Tensor, list[Crop]]:
    """The layer's name, the spatially averaged activations [M, C] of every crop of ``x`` and the crops; crops are
    made a few images at a time (at most :data:`CROPS_PER_PASS` held at once)."""
    per_image = len(grid_crops(x[:1], side, stride, resize=False)[1])
    step = max(1, CROPS_PER_PASS // per_image)
    pooled, crops, name = [], [], layer
    for start in range(0, len(x), step):
        part = x[start:start + step]
        pieces, boxes = grid_crops(part, side, stride, resize=resize)
        report = None if progress is None else (
            lambda f, t, a=start, k=len(part): progress((a + f * k) / len(x), f"crops of image {a + 1}…: {t}"))
        data = activations(wb, pieces, name, progress=report)
        name = data.layer
        pooled.append(data.acts.mean(dim=(2, 3)))
        crops += [Crop(c.image + start, c.box) for c in boxes]
    assert name is not None
    return name, torch.cat(pooled), crops


def discover(model: ModelSpec | Workbench, x: torch.Tensor, target: int, *, layer: str | None = None, rank: int = 8,
             crop: float = 0.5, stride: float = 0.25, resize: bool = True, top_crops: int = 10, iterations: int = 500,
             seed: int = 0, progress: Progress | None = None, factorisation: str = "auto") -> Discovery:
    """Discover ``rank`` concepts of class ``target`` from normalised images ``x`` [N, 3, H, W] of that class.

    Crops are ``crop`` × the input side, every ``stride`` × the side. The factorisation is seeded (``seed``);
    ``factorisation``: ``nmf`` (negatives clipped), ``semi-nmf`` (signed concepts) or ``auto`` (semi-NMF when more
    than :data:`SIGNED_SHARE` of the activation mass is negative)."""
    require_images(len(x), MIN_IMAGES, "The set", "a stable concept factorisation")
    if factorisation not in FACTORISATIONS:
        raise ConceptError(f"Unknown factorisation {factorisation!r}; choose one of {', '.join(FACTORISATIONS)}.")
    wb = as_workbench(model)
    side = max(1, round(crop * min(x.shape[-2:])))
    name, pooled, crops = crop_activations(wb, x, side, max(1, round(stride * min(x.shape[-2:]))), resize, layer,
                                           None if progress is None else lambda f, t: progress(0.9 * f, t))
    neg = negative_share(pooled)
    signed = factorisation == "semi-nmf" or (factorisation == "auto" and neg > SIGNED_SHARE)
    nmf = factorise(pooled, rank, iterations=iterations, seed=seed, signed=signed)
    full = activations_and_gradients(wb, x, target, name,
                                     progress=None if progress is None else lambda f, t: progress(0.9 + 0.1 * f, t))
    assert full.grads is not None
    if not bool(full.grads.any()):
        raise ConceptError(f"The class score does not depend on the layer {name!r} (a ViT's last block reaches the "
                           "head only through the class token); choose an earlier layer.")
    u = coefficients(full.acts, nmf.concepts, signed=signed)  # [N, k, h, w]
    slope = torch.einsum("kc,nchw->nkhw", nmf.concepts, full.grads)
    per_image = (u * slope).sum(dim=(2, 3))  # [N, k]
    importance = per_image.mean(0)
    total = float(importance.abs().sum()) or 1.0
    order = torch.argsort(importance, descending=True).tolist()
    best = torch.argsort(nmf.coefficients, dim=0, descending=True)[:top_crops]
    concepts = tuple(Concept(k, nmf.concepts[k], float(importance[k]), float(importance[k]) / total,
                             tuple(crops[int(i)] for i in best[:, k])) for k in order)
    return Discovery(int(target), name, concepts, nmf.relative_error, image_coefficients=u.mean(dim=(2, 3))[:, order],
                     image_importance=per_image[:, order], signed=signed, negative_share=neg)


def concept_maps(model: ModelSpec | Workbench, discovery: Discovery, x: torch.Tensor) -> torch.Tensor:
    """Each concept's coefficient map on inputs ``x``, upsampled to the input size: [N, k, H, W] in the order of
    ``discovery.concepts`` (a token model's map is its patch grid's)."""
    data = activations(model, x, discovery.layer)
    u = coefficients(data.acts, discovery.directions, signed=discovery.signed)
    return F.interpolate(u, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)
