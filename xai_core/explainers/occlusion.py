"""Occlusion: slide a patch of 'absent' pixels over the image, batched through the engine; coarse-to-fine previews."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .. import anytime, options
from ..engine import scores
from ..errors import ExplainerError
from ..models.spec import ModelSpec
from ..registry import Cost, ParamSpec, Progress, explainer
from ..result import ExplainerResult, Refinement
from . import refining
from .common import NOTICE, cap_samples, reference_input


def positions(size: int, window: int, stride: int) -> list[int]:
    """Window offsets along one axis, as Captum: 1 + ceil((size - window) / stride) of them; the last
    window may be cut by the border, so every pixel is covered."""
    return [i * stride for i in range(1 + -(-(size - window) // stride))]


def window_count(size: tuple[int, int], window: int, stride: int) -> int:
    """How many window positions cover an input of ``size`` (h, w): the forward passes per sample."""
    return len(positions(size[0], window, stride)) * len(positions(size[1], window, stride))


def _every(count: int, k: int) -> list[int]:
    """Every ``k``-th of ``count`` window offsets along an axis, and the last one."""
    idx = list(range(0, count, k))
    return idx if idx[-1] == count - 1 else [*idx, count - 1]


def _interpolation(idx: list[int], count: int, device: torch.device) -> torch.Tensor:
    """``[count, len(idx)]``: linear interpolation from the offsets ``idx`` (0 first, count − 1 last) to all of them."""
    out = torch.zeros(count, len(idx), device=device)
    for j, (a, b) in enumerate(zip(idx[:-1], idx[1:], strict=True)):
        t = torch.arange(b - a + 1, device=device) / (b - a)
        out[a: b + 1, j], out[a: b + 1, j + 1] = 1 - t, t
    return out


def _occlude(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, ref: torch.Tensor, base: torch.Tensor,
             window: int, stride: int, progress: Progress | None, every: int = 1) -> torch.Tensor:
    """Maps [B, H, W]: base − score with each window hidden (``ref`` pixels), averaged over the windows per pixel.
    ``every`` > 1 scores every such window offset along each axis (and the last) and interpolates the score drops
    linearly to the others: a coarse preview of the same map."""
    h, w = x.shape[-2:]
    rows, cols = _indicators(h, window, stride, x.device), _indicators(w, window, stride, x.device)
    ry, rx = (rows, cols) if every == 1 else (rows[_every(len(rows), every)], cols[_every(len(cols), every)])
    ny, nx = len(ry), len(rx)
    n = ny * nx

    def make(start: int, stop: int) -> torch.Tensor:  # one vectorised select per batch: no per-window Python
        idx = torch.arange(start, stop, device=x.device)
        k = idx % n
        hidden = ry[k // nx, :, None] & rx[k % nx, None, :]
        return torch.where(hidden[:, None], ref[idx // n], x[idx // n])

    drop = (base.repeat_interleave(n) - scores(model.module, len(x) * n, make, target.repeat_interleave(n),
                                               progress=progress, desc="windows")).view(len(x), ny, nx)
    if every > 1:
        iy = _interpolation(_every(len(rows), every), len(rows), x.device)
        ix = _interpolation(_every(len(cols), every), len(cols), x.device)
        drop = torch.einsum("yi,bij,xj->byx", iy, drop, ix)
    # Windows are outer products of a row and a column indicator, so the per-pixel sum is R^T · drop · C.
    r, c = rows.float(), cols.float()
    total = torch.einsum("yh,byx,xw->bhw", r, drop, c)
    count = r.sum(0)[:, None] * c.sum(0)[None, :]
    return total / count.clamp_min(1)


def occlusion_steps(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, window: int = 16, stride: int = 8,
                    baseline: str = "black", progress: Progress | None = None,
                    previews: bool = False) -> Iterator[ExplainerResult]:
    """Occlusion (Zeiler & Fergus 2014, arXiv:1311.2901) coarse to fine: with ``previews`` and one input, separate runs
    on every 8th, 4th and 2nd window offset along each axis (where that leaves at least 3), their score drops
    interpolated linearly to the other offsets, come first; then the run itself (the one-shot map, computed as if
    alone). Uncertainty: the change since the previous run (:data:`anytime.CHANGE`)."""
    h, w = x.shape[-2:]
    if window > min(h, w) or stride > window:
        raise ExplainerError(f"The window ({window} px) must fit the {w}×{h} input and the stride ({stride}) must "
                             "not exceed the window.")
    ref = reference_input(model, x, baseline)
    ny, nx = len(positions(h, window, stride)), len(positions(w, window, stride))
    n = ny * nx
    if cap_samples(model, x, n, what="windows").count < n:
        raise ExplainerError(f"{n} windows do not fit the {options.current().time_budget:.0f} s time budget; raise "
                             "the budget or use "
                             "a larger stride.")
    base = scores(model.module, len(x), lambda a, b: x[a:b], target)
    levels = [k for k in (8, 4, 2) if min(len(_every(ny, k)), len(_every(nx, k))) >= 3 and k < min(ny, nx)
              ] if previews and len(x) == 1 else []
    kind = anytime.CHANGE if levels else ""
    counts = [len(_every(ny, k)) * len(_every(nx, k)) for k in levels]
    work, done = sum(counts) + n, 0
    for k, m in zip(levels, counts, strict=True):
        maps = _occlude(model, x, target, ref, base, window, stride,
                        refining.portion(progress, done, m, work, "coarse preview: "), every=k)
        yield ExplainerResult(maps, target, refinement=Refinement(
            m, n, f"a preview: {m:,} of {n:,} windows, the others interpolated", kind))
        done += m
    maps = _occlude(model, x, target, ref, base, window, stride, refining.portion(progress, done, n, work))
    yield ExplainerResult(maps, target, refinement=Refinement(n, n, f"{n:,} of {n:,} windows", kind))


@explainer(
    "occlusion", title="Occlusion", family="perturbation", signed=True,
    taxonomy=("local", "black-box", "post-hoc", "model-agnostic"),
    summary="How much the class score drops when a square patch is hidden, averaged over the patches "
            "covering each pixel.",
    reference="Zeiler & Fergus 2014, 'Visualizing and Understanding Convolutional Networks', ECCV. arXiv:1311.2901",
    cost=Cost(1, 0, count=lambda p, size: window_count(size, p["window"], p["stride"]),
              count_label="window positions"), diagnostics=(NOTICE,), steps=occlusion_steps,
    params=(
        ParamSpec("window", "int", 16, "Window (px)", "Side of the hidden square, in model-input pixels.", 2, 112, 1),
        ParamSpec("stride", "int", 8, "Stride (px)", "Step between windows; smaller is finer and slower.", 1, 112, 1),
        ParamSpec("baseline", "choice", "black", "Hidden pixels become",
                  "What replaces the hidden patch.", choices=("black", "mean", "blurred")),
    ),
)
def occlusion(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, window: int = 16, stride: int = 8,
              baseline: str = "black", progress: Progress | None = None) -> ExplainerResult:
    """Score(x) − score(x with the window hidden), averaged per pixel (Zeiler & Fergus 2014, arXiv:1311.2901).

    Equals Captum's Occlusion with ``sliding_window_shapes=(3, window, window)``, ``strides=(3, stride, stride)``
    and the same baseline tensor.
    """
    return anytime.last(occlusion_steps(model, x, target, window=window, stride=stride, baseline=baseline,
                                        progress=progress))


def _indicators(size: int, window: int, stride: int, device: torch.device) -> torch.Tensor:
    """[windows, size] booleans: which pixels each window offset along one axis hides."""
    start = torch.tensor(positions(size, window, stride), device=device)[:, None]
    pix = torch.arange(size, device=device)[None, :]
    return (pix >= start) & (pix < start + window)
