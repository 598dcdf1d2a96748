"""Reference images of concepts by relevance maximisation (Achtibat et al., 'From attribution maps to
human-understandable explanations through Concept Relevance Propagation', Nature Machine Intelligence 2023).

A channel's reference images are the images of a set in which it is most *relevant* for a class: the largest
relevance at ``layer`` summed over positions (by default as a share ``R_c / Σ_c |R_c|`` of the image's relevance,
zennit-crp's ``abs_norm``) — not the images that *activate* it most, which activation maximisation picks
(``mode="activation"``, the contrast the paper draws). Each reference comes with a crop, as zennit-crp's reference
crops: the concept's most relevant (or most active) position is explained alone — LRP started at the layer from that
single activation — and the crop is the bounding box of its heatmap after a Gaussian blur, where it exceeds
``crop_threshold`` × its peak: the part of the receptive field the concept responds to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..engine import chunks
from ..hooks import capture
from ..models.spec import ModelSpec
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .craft import Crop
from .crp import concept_weights, lrp_batch, prepare, relevance_pass, targets_for
from .errors import ConceptError

MODES = ("relevance", "activation")


@dataclass(frozen=True)
class References:
    """Reference images of one ``concept`` (channel): indices into the set, best first, their ``scores`` and crops."""

    concept: int
    images: tuple[int, ...]
    scores: tuple[float, ...]
    crops: tuple[Crop, ...]


@dataclass(frozen=True)
class RelMax:
    """Reference images of concepts of ``layer`` for class ``target``, ranked by ``mode`` (relevance or activation)."""

    target: int
    layer: str
    mode: str
    references: tuple[References, ...]

    def of(self, concept: int) -> References:
        """The references of channel ``concept``."""
        for r in self.references:
            if r.concept == concept:
                return r
        raise ConceptError(f"Channel {concept} was not among the concepts of this analysis.")


def crop_box(heatmap: torch.Tensor, threshold: float, blur: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), end exclusive, around the pixels of ``heatmap`` [H, W] whose Gaussian-blurred value
    (``blur`` px kernel; 0 = none) exceeds ``threshold`` × its peak; the whole image when none does."""
    from torchvision.transforms.functional import gaussian_blur

    h, w = heatmap.shape
    k = min(blur, 2 * min(h, w) - 1)
    k -= 1 - k % 2  # odd
    smooth = gaussian_blur(heatmap[None].float(), kernel_size=k)[0] if k > 1 else heatmap.float()
    rows, cols = torch.where(smooth / (smooth.max() + 1e-10) > threshold)
    if not len(rows):
        return 0, 0, w, h
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def relevance_maximisation(model: ModelSpec | Workbench, x: torch.Tensor, target: int, layer: str | None = None,
                           concepts: Sequence[int] | None = None, *, top: int = 8, mode: str = "relevance",
                           normalise: bool = True, composite: str = "epsilon_plus_flat", crop_threshold: float = 0.1,
                           blur: int = 19, progress: Progress | None = None) -> RelMax:
    """The ``top`` reference images (indices into normalised inputs ``x`` [N, 3, H, W], any set) of each channel in
    ``concepts`` (all channels when None) of ``layer`` for class ``target``, with their crops; ``normalise`` divides
    each image's scores by Σ_c |score_c|."""
    if mode not in MODES:
        raise ConceptError(f"Unknown maximisation mode {mode!r}; choose 'relevance' or 'activation'.")
    if top < 1 or not 0 <= crop_threshold < 1:
        raise ConceptError("Ask for at least one reference image, with a crop threshold in [0, 1).")
    wb = as_workbench(model)
    with wb.session() as spec:
        name, module, comp, shape = prepare(spec, x, layer, composite)
        if isinstance(concepts, torch.Tensor) and concepts.is_floating_point():
            raise ConceptError("Relevance maximisation ranks channels: give channel indices, not directions.")
        chans = list(range(shape[1])) if concepts is None else concept_weights(concepts, shape[1], name).argmax(1).tolist()
        t, dev = targets_for(spec, target, len(x)), spec.device
        if int(t[0]) < 0:
            raise ConceptError("Relevance maximisation needs a class, not the predicted class of each image.")
        batch = lrp_batch(spec, x)

        def score(begin: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
            xb = x[begin:stop].to(dev)
            if mode == "relevance":
                p = relevance_pass(spec, comp, module, xb, t[begin:stop].to(dev))
                assert p.relevance is not None
                values = p.relevance.float()
            else:
                with torch.inference_mode(), capture(module) as rec:
                    spec.module(xb)
                assert rec.activation is not None
                values = rec.activation.float()
            flat = values.reshape(len(xb), values.shape[1], -1)
            return flat.sum(-1).cpu(), flat.argmax(-1).cpu()

        parts = [p for _s, _e, p in chunks(len(x), score, batch_size=batch, progress=progress, desc=f"{mode} scores")]
        scores, where = torch.cat([s for s, _p in parts]), torch.cat([p for _s, p in parts])
        if normalise:
            scores = scores / (scores.abs().sum(1, keepdim=True) + 1e-10)
        best = {c: torch.argsort(scores[:, c], descending=True, stable=True)[:top].tolist() for c in chans}
        picks = [(c, i) for c in chans for i in best[c]]

        def crops(begin: int, stop: int) -> list[tuple[int, int, int, int]]:
            rows = picks[begin:stop]
            imgs = torch.tensor([i for _c, i in rows])

            def neuron(act: torch.Tensor) -> torch.Tensor:  # the activation of one position of one channel per row
                mask = torch.zeros_like(act).reshape(len(act), act.shape[1], -1)
                for r, (c, i) in enumerate(rows):
                    mask[r, c, where[i, c]] = 1.0
                return act * mask.view_as(act)

            p = relevance_pass(spec, comp, module, x[imgs].to(dev), t[imgs].to(dev), start=neuron)
            return [crop_box(h, crop_threshold, blur) for h in p.heatmap.cpu()]

        boxes = [b for _s, _e, part in chunks(len(picks), crops, batch_size=batch, progress=progress, desc="crops")
                 for b in part]
    refs, at = [], 0
    for c in chans:
        n = len(best[c])
        refs.append(References(c, tuple(best[c]), tuple(float(scores[i, c]) for i in best[c]),
                               tuple(Crop(i, b) for i, b in zip(best[c], boxes[at:at + n], strict=True))))
        at += n
    return RelMax(int(t[0]), name, mode, tuple(refs))

