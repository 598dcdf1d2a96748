"""Occlusion: slide a patch of 'absent' pixels over the image, batched through the engine; coarse-to-fine previews."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .. import anytime, options
from ..engine import batch_size_for, scores
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


def grids(ny: int, nx: int) -> list[tuple[int, int]]:
    """Coarse-to-fine grids of window offsets, (every k-th row, every l-th column) each with the last: every 8th, 4th
    and 2nd offset (where that leaves at least 3 along each axis), columns refined before rows, ending with (1, 1)."""
    levels = [k for k in (8, 4, 2) if min(len(_every(ny, k)), len(_every(nx, k))) >= 3 and k < min(ny, nx)] + [1]
    out = [(levels[0], levels[0])]
    for a, b in zip(levels[:-1], levels[1:], strict=True):
        out += [(a, b), (b, b)]
    return out


def visiting_order(ny: int, nx: int, unit: int, device: torch.device) -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
    """The windows (row-major indices) in the order they are scored in batches of ``unit``: first the last
    ``count % unit`` (the short batch of a row-major run, scored alone as there), then each of :func:`grids`' new
    windows in turn, row-major; and per grid ``(windows scored when it is complete, k, l)``."""
    seen = torch.zeros(ny * nx, dtype=torch.bool)
    seen[ny * nx - ny * nx % unit:] = True
    order, done = [seen.nonzero().flatten()], []
    seen = seen.view(ny, nx)
    for k, m in grids(ny, nx):
        grid = torch.zeros(ny, nx, dtype=torch.bool)
        grid[torch.tensor(_every(ny, k))[:, None], torch.tensor(_every(nx, m))[None, :]] = True
        new = (grid & ~seen).flatten().nonzero().flatten()
        seen |= grid
        order.append(new)
        done.append((int(seen.sum()), k, m))
    return torch.cat(order).to(device), done


def _to_map(rows: torch.Tensor, cols: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """Maps [B, H, W] from the score drops [B, rows, cols]: averaged over the windows covering each pixel. Windows are
    outer products of a row and a column indicator, so the per-pixel sum is R^T · drop · C."""
    r, c = rows.float(), cols.float()
    total = torch.einsum("yh,byx,xw->bhw", r, drop, c)
    count = r.sum(0)[:, None] * c.sum(0)[None, :]
    return total / count.clamp_min(1)


def occlusion_steps(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, *, window: int = 16, stride: int = 8,
                    baseline: str = "black", progress: Progress | None = None,
                    previews: bool = False) -> Iterator[ExplainerResult]:
    """Occlusion (Zeiler & Fergus 2014, arXiv:1311.2901) coarse to fine. One input scores its windows in
    :func:`visiting_order`: every 8th offset along each axis, then every 4th, 2nd, all (one axis at a time); with
    ``previews``, at the first engine-batch boundary after each grid is complete, the score drops on that grid,
    interpolated linearly to the other offsets, give a preview at no extra pass. The final map is computed from all
    the windows' drops as a row-major run does: the one-shot map, bit-equal to a row-major run's wherever a window's
    score depends on its batch's size but not on which windows share it (every batch keeps its size). Several inputs:
    row-major, no previews. Uncertainty: the change since the previous refinement (:data:`anytime.CHANGE`)."""
    h, w = x.shape[-2:]
    if window > min(h, w) or stride > window:
        raise ExplainerError(f"The window ({window} px) must fit the {w}×{h} input and the stride ({stride}) must "
                             "not exceed the window.")
    ref = reference_input(model, x, baseline)
    rows, cols = _indicators(h, window, stride, x.device), _indicators(w, window, stride, x.device)
    ny, nx = len(rows), len(cols)
    n = ny * nx
    if cap_samples(model, x, n, what="windows").count < n:
        raise ExplainerError(f"{n} windows do not fit the {options.current().time_budget:.0f} s time budget; raise "
                             "the budget or use "
                             "a larger stride.")
    base = scores(model.module, len(x), lambda a, b: x[a:b], target)
    unit = batch_size_for(x.device, h * w)
    order, ladder = torch.arange(len(x) * n, device=x.device), list[tuple[int, int, int]]()
    short = n % unit if len(x) == 1 else 0  # a row-major run's short batch, scored first here
    if len(x) == 1:
        order, ladder = visiting_order(ny, nx, unit, x.device)
    stops = {short + -(-(m - short) // unit) * unit for m, _, _ in ladder[:-1]} if previews else set()
    bounds = sorted({short} - {0} | {b for b in stops if b < n} | {len(x) * n})
    kind = anytime.CHANGE if len(bounds) > 1 else ""
    drop = torch.empty(len(x) * n, device=x.device)

    def make(start: int, stop: int) -> torch.Tensor:  # one vectorised select per batch: no per-window Python
        idx = order[start:stop]
        k = idx % n
        hidden = rows[k // nx, :, None] & cols[k % nx, None, :]
        return torch.where(hidden[:, None], ref[idx // n], x[idx // n])

    for _, stop, s in refining.scored(model.module, make, target.repeat_interleave(n), bounds, unit,
                                      probabilities=False, progress=progress, what="windows"):
        drop[order[stop - len(s): stop]] = base.repeat_interleave(n)[order[stop - len(s): stop]] - s
        if stop < len(x) * n and stop in stops:
            _, k, c = max(g for g in ladder if g[0] <= stop)
            iy, ix = _every(ny, k), _every(nx, c)
            m = len(iy) * len(ix)
            coarse = drop.view(1, ny, nx)[:, iy][:, :, ix]
            est = torch.einsum("yi,bij,xj->byx", _interpolation(iy, ny, x.device), coarse,
                               _interpolation(ix, nx, x.device))
            yield ExplainerResult(_to_map(rows, cols, est), target, refinement=Refinement(
                m, n, f"{m:,} of {n:,} windows on a coarse grid, the others interpolated", kind))
    yield ExplainerResult(_to_map(rows, cols, drop.view(len(x), ny, nx)), target,
                          refinement=Refinement(n, n, f"{n:,} of {n:,} windows", kind))


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
