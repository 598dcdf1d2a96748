"""Score-CAM: feature maps weighted by the class probability of the image masked by each of them; refined by
channel batches."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .. import anytime
from ..engine import batch_size_for
from ..errors import ExplainerError
from ..hooks import capture
from ..models.spec import ModelSpec
from ..registry import Cost, ParamSpec, Progress, explainer
from ..result import ExplainerResult, Refinement, first_forward
from . import refining
from .common import LAYER, NOTICE, cap_samples, upsample

UNCERTAINTY = ("standard error of the partial sum over the channels scored so far as an estimate of the full sum "
               "(a sample without replacement: zero once every channel is in)")


def scorecam_steps(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, layer: str = "", channels: int = 0,
                   progress: Progress | None = None, previews: bool = False) -> Iterator[ExplainerResult]:
    """Score-CAM (Wang et al. 2020, arXiv:1910.01279) by channel batches: with ``previews`` and one input, the sum over
    the channels scored so far scaled to all of them, at each refinement; the full sum last (the one-shot map).
    Uncertainty: :data:`UNCERTAINTY`, per pixel of the layer's grid, upsampled."""
    with torch.inference_mode(), capture(model.submodule(layer)) as rec:
        fwd = first_forward(model.module(x), target)
        if rec.activation is None:
            raise ExplainerError(f"The layer {layer or model.cam_layer!r} is not used on the way to the output; "
                                 "choose another layer.")
        acts = model.as_grid(rec.activation).float().clone()
    k = acts.shape[1]
    order = torch.arange(k, device=x.device).expand(len(x), k)
    if 0 < channels < k:
        order = acts.mean(dim=(2, 3)).topk(channels, dim=1).indices
        k = channels
    capped = cap_samples(model, x, k, what="channels")
    kept = capped.count
    if kept < k:
        order = order[:, :kept] if channels else acts.mean(dim=(2, 3)).topk(kept, dim=1).indices
        k = kept
    size = (int(x.shape[-2]), int(x.shape[-1]))

    def mask(b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        m = upsample(acts[b, c], size)
        lo, hi = m.flatten(1).amin(1).view(-1, 1, 1), m.flatten(1).amax(1).view(-1, 1, 1)
        return torch.where(hi > lo, (m - lo) / (hi - lo).clamp_min(1e-12), torch.zeros_like(m))

    def make(start: int, stop: int) -> torch.Tensor:
        idx = torch.arange(start, stop, device=x.device)
        b = idx // k
        return (x[b] * mask(b, order[b, idx % k]).unsqueeze(1)).contiguous(memory_format=torch.channels_last)

    unit = batch_size_for(x.device, size[0] * size[1])
    bounds = anytime.schedule(len(x) * k, unit) if previews and len(x) == 1 else [len(x) * k]
    prob = torch.empty(len(x) * k, device=x.device)
    flat = acts.flatten(2)
    const = flat.amax(2) <= flat.amin(2)
    picked = acts.gather(1, order.view(len(x), k, 1, 1).expand(-1, -1, *acts.shape[2:]))
    for _, stop, s in refining.scored(model.module, make, fwd.target.repeat_interleave(k), bounds, unit,
                                     probabilities=True, progress=progress, what="channels"):
        prob[stop - len(s): stop] = s
        done = stop if len(x) == 1 else k
        weights = torch.where(const.gather(1, order), torch.zeros_like(prob.view(len(x), k)), prob.view(len(x), k))
        if done == k:
            cam = torch.einsum("bk,bkhw->bhw", weights, picked)
        else:
            cam = torch.einsum("bk,bkhw->bhw", weights[:, :done], picked[:, :done]) * (k / done)
        terms = weights[:, :done, None, None] * picked[:, :done]
        se = k * ((1 - done / k) * terms.var(1, correction=1) / done).sqrt() if done > 1 else torch.zeros_like(cam)
        yield ExplainerResult(upsample(torch.relu(cam), size), fwd.target, fwd.logits, capped.diagnostics(len(x)),
                              upsample(se, size), Refinement(done, k, f"{done:,} of {k:,} channels", UNCERTAINTY))


@explainer(
    "scorecam", title="Score-CAM", family="CAM",
    taxonomy=("local", "white-box", "post-hoc", "model-specific"),
    summary="Each feature map of a layer, used as a mask on the image, is weighted by how confident the model "
            "stays on the masked image; no gradients.",
    reference="Wang et al. 2020, 'Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks', "
              "CVPR workshops. arXiv:1910.01279",
    cost=Cost(1, 0, per="channels", unknown="channels of the layer"), diagnostics=(NOTICE,), reports_logits=True,
    steps=scorecam_steps,
    params=(LAYER, ParamSpec("channels", "int", 0, "Channels (0 = all)", "Use only the most active channels "
                             "(by mean activation) to go faster.", 0, 4096, 1)),
)
def scorecam(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, layer: str = "", channels: int = 0,
             progress: Progress | None = None) -> ExplainerResult:
    """ReLU(Σ_k softmax(f(x ⊙ norm(up(A_k))))_c · A_k) (Wang et al. 2020, arXiv:1910.01279).

    As in the authors' code: each upsampled map is min-max normalised to [0, 1] and multiplies the
    (normalised) input; constant maps get weight 0. Masks are built batch by batch from the
    activations, so K full-size masks never sit in memory together.
    """
    return anytime.last(scorecam_steps(model, x, target, layer=layer, channels=channels, progress=progress))
