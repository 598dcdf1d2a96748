"""Meaningful Perturbation: the smallest smooth blur-deletion mask that destroys the class score; refined by
iterations."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .. import anytime
from ..engine import class_probabilities, logits_of, select
from ..errors import ExplainerError
from ..models.spec import ModelSpec
from ..registry import Cost, Diagnostic, ParamSpec, Progress, explainer
from ..result import ExplainerResult, Refinement
from .common import NOTICE, blur, cap_samples

TV_BETA = 3.0  # exponent of the total-variation term (the paper's β)
BLUR_SIGMA = 10 / 224  # the paper's σ0 = 10 px at 224 px, as a fraction of the shorter side
NOISE = 0.03  # std of the pixel noise added to the perturbed image at each iteration (in [0, 1] units)


def _total_variation(m: torch.Tensor) -> torch.Tensor:
    """Mean |∇m|^β over the coarse mask ``[B, 1, g, g]``, per image."""
    rows = (m[..., 1:, :] - m[..., :-1, :]).abs().pow(TV_BETA).mean(dim=(1, 2, 3))
    cols = (m[..., :, 1:] - m[..., :, :-1]).abs().pow(TV_BETA).mean(dim=(1, 2, 3))
    return rows + cols


def _shifted(mask: torch.Tensor, dy: int, dx: int, pad: int) -> torch.Tensor:
    """``mask`` [B, 1, H, W] moved by (dy, dx) pixels, edges replicated (no wrap-around)."""
    if pad == 0:
        return mask
    h, w = mask.shape[-2:]
    padded = F.pad(mask, (pad, pad, pad, pad), mode="replicate")
    return padded[..., pad - dy: pad - dy + h, pad - dx: pad - dx + w]


def meaningful_perturbation_steps(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, iterations: int = 300,
                                  grid: int = 14, lr: float = 0.1, l1: float = 0.05, tv: float = 0.2, jitter: int = 4,
                                  progress: Progress | None = None, seed: int = 0,
                                  previews: bool = False) -> Iterator[ExplainerResult]:
    """Deletion saliency 1 − m of a learnt keep-mask m (Fong & Vedaldi 2017, ICCV, arXiv:1704.03296).

    Minimises λ1·mean|1 − m| + λ2·TV(m)^β + p_c(x·m + blur(x)·(1 − m)) over m ∈ [0, 1] on a coarse grid
    with projected Adam, starting from m = 1 (keep everything). Every step jitters the mask by a random
    shift and adds small pixel noise (one seeded generator; every image of a batch sees the same draws,
    and each image's loss depends on its own mask only, so batching does not change a map).
    Diagnostics: 'mask' (m at input size), 'perturbed' (uint8 RGB), 'probability_before' / '_after' (from one
    extra forward of x and the perturbed image, whose logits of x the result carries). With ``previews`` and one
    input, the deletion map of the mask so far comes at iterations on :func:`anytime.schedule`; uncertainty: the change
    since the previous refinement (:data:`anytime.CHANGE`).
    """
    capped = cap_samples(model, x, iterations, passes_per_sample=3.0, minimum=10, what="iterations")
    iterations = capped.count
    size = (int(x.shape[-2]), int(x.shape[-1]))
    shift = int(jitter * min(size) / 224)  # the paper's pixels at 224 px, scaled down to this input
    gen = torch.Generator().manual_seed(seed)
    with torch.inference_mode(False), torch.enable_grad():
        x01 = model.denormalise(x.detach().clone())
        b01 = model.denormalise(blur(model, x.detach().clone(), BLUR_SIGMA))
        m = torch.ones((len(x), 1, grid, grid), device=x.device, requires_grad=True)
        opt = torch.optim.Adam([m], lr=lr, fused=x.device.type in ("cpu", "cuda"))

    def score(p01: torch.Tensor) -> torch.Tensor:
        z = model.module(model.normalise(p01).contiguous(memory_format=torch.channels_last)).float()
        return select(class_probabilities(z), target)

    bounds = anytime.schedule(iterations, 10) if previews and len(x) == 1 else [iterations]
    kind = anytime.CHANGE if len(bounds) > 1 else ""
    start = 0
    for stop in bounds:
        with torch.inference_mode(False), torch.enable_grad():  # never across a yield: grad mode is the thread's
            for it in range(start, stop):
                dy, dx = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=gen))
                noise = (NOISE * torch.randn((1, 3, *size), generator=gen)).to(x.device)
                up = _shifted(bilinear(m, size), dy, dx, shift)
                prob = score(x01 * up + b01 * (1 - up) + noise)
                if it == 0 and not torch.isfinite(prob).all():
                    raise ExplainerError("The model returned NaN or infinite scores for this input; "
                                         "check the checkpoint (it may have diverged) or the image.")
                loss = l1 * (1 - m).abs().mean(dim=(1, 2, 3)) + tv * _total_variation(m) + prob
                (m.grad,) = torch.autograd.grad(loss.sum(), m)
                opt.step()
                with torch.no_grad():
                    m.clamp_(0.0, 1.0)
                if progress is not None and ((it + 1) % 10 == 0 or it + 1 == iterations):
                    progress((it + 1) / iterations, f"mask optimisation {it + 1}/{iterations}")
        start = stop
        if stop < iterations:
            yield ExplainerResult((1 - bilinear(m.detach(), size)[:, 0]).float(), target, None,
                                  capped.diagnostics(len(x)), refinement=Refinement(
                                      stop, iterations, f"{stop:,} of {iterations:,} iterations", kind))
    keep = bilinear(m.detach(), size)
    perturbed = x01.detach() * keep + b01.detach() * (1 - keep)
    z = logits_of(model.module, torch.cat([x, model.normalise(perturbed)]), desc="before and after")
    probs = select(class_probabilities(z), torch.cat([target, target]))
    img = (perturbed.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    yield ExplainerResult((1 - keep[:, 0]).float(), target, z[: len(x)], {
        **capped.diagnostics(len(x)), "mask": [k.astype(np.float32) for k in keep[:, 0].cpu().numpy()],
        "perturbed": list(img), "probability_before": probs[: len(x)].tolist(),
        "probability_after": probs[len(x):].tolist()},
        refinement=Refinement(iterations, iterations, f"{iterations:,} of {iterations:,} iterations", kind))


@explainer(
    "meaningful_perturbation", title="Meaningful Perturbation", family="perturbation",
    taxonomy=("local", "white-box", "post-hoc", "model-agnostic"), signed=False, stochastic=True,
    summary="Learns the smallest, smoothest region whose blurring destroys the class score; "
            "the map is how strongly each pixel is deleted.",
    reference="Fong & Vedaldi 2017, 'Interpretable Explanations of Black Boxes by Meaningful Perturbation', ICCV. "
              "arXiv:1704.03296",
    cost=Cost(1, 1, per="iterations"), steps=meaningful_perturbation_steps,
    diagnostics=(
        NOTICE,
        Diagnostic("probability_before", "p before deletion", fmt="p {:.2f} before deletion"),
        Diagnostic("probability_after", "p after deletion", fmt="p {:.2f} after deletion"),
        Diagnostic("mask", "keep-mask (white = kept)", show="image"),
        Diagnostic("perturbed", "what the model saw", show="image"),
    ),
    params=(
        ParamSpec("iterations", "int", 300, "Iterations", "Adam steps of the mask optimisation.", 10, 2000, 10),
        ParamSpec("grid", "int", 14, "Mask grid", "The mask is learnt on a grid × grid lattice and upsampled "
                  "bilinearly; coarser grids give blobbier, more robust masks (the paper: 28; 14 gave a smooth mask "
                  "over the cat's face here where 28 followed the fur's stripes).", 4, 112, 1),
        ParamSpec("lr", "float", 0.1, "Learning rate", "Adam step size on the mask values.", 0.001, 1.0, 0.01),
        ParamSpec("l1", "float", 0.05, "Area weight λ1", "Penalty on the mean deleted area: larger gives "
                  "smaller masks.", 0.0, 1.0, 0.01),
        ParamSpec("tv", "float", 0.2, "Smoothness weight λ2", "Penalty on the mask's total variation "
                  "(|∇m|³): larger gives smoother masks with fewer artifacts.", 0.0, 5.0, 0.05),
        ParamSpec("jitter", "int", 4, "Jitter (px at 224)", "Each step shifts the mask against the image by up to "
                  "this many pixels (scaled to the input size), so it cannot exploit pixel-exact artifacts.", 0, 16, 1),
    ),
)
def meaningful_perturbation(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, iterations: int = 300,
                            grid: int = 14, lr: float = 0.1, l1: float = 0.05, tv: float = 0.2, jitter: int = 4,
                            progress: Progress | None = None, seed: int = 0) -> ExplainerResult:
    """Deletion saliency 1 − m of a learnt keep-mask m (Fong & Vedaldi 2017, ICCV, arXiv:1704.03296): the last of
    :func:`meaningful_perturbation_steps`."""
    return anytime.last(meaningful_perturbation_steps(model, x, target, iterations=iterations, grid=grid, lr=lr, l1=l1,
                                                      tv=tv, jitter=jitter, progress=progress, seed=seed))


def bilinear(m: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.interpolate(m, size, mode="bilinear", align_corners=False)`` as two matrix products.

    Same values, but its backward is deterministic on CUDA (interpolate's backward accumulates with
    atomic adds, and 300 Adam steps turned that round-off into maps differing by 1e-2 between runs).
    """
    rows = F.interpolate(torch.eye(m.shape[-2], device=m.device)[:, None], size=size[0], mode="linear",
                         align_corners=False)[:, 0]  # [grid_h, H]
    cols = F.interpolate(torch.eye(m.shape[-1], device=m.device)[:, None], size=size[1], mode="linear",
                         align_corners=False)[:, 0]  # [grid_w, W]
    return rows.T @ m @ cols
