"""Occlusion: slide a patch of 'absent' pixels over the image, batched through the engine."""

from __future__ import annotations

import torch

from .. import options
from ..engine import scores
from ..errors import ExplainerError
from ..models.spec import ModelSpec
from ..registry import Cost, ParamSpec, Progress, explainer
from ..result import ExplainerResult
from .common import NOTICE, cap_samples, reference_input


def positions(size: int, window: int, stride: int) -> list[int]:
    """Window offsets along one axis, as Captum: 1 + ceil((size - window) / stride) of them; the last
    window may be cut by the border, so every pixel is covered."""
    return [i * stride for i in range(1 + -(-(size - window) // stride))]


def window_count(size: tuple[int, int], window: int, stride: int) -> int:
    """How many window positions cover an input of ``size`` (h, w): the forward passes per sample."""
    return len(positions(size[0], window, stride)) * len(positions(size[1], window, stride))


@explainer(
    "occlusion", title="Occlusion", family="perturbation", signed=True,
    taxonomy=("local", "black-box", "post-hoc", "model-agnostic"),
    summary="How much the class score drops when a square patch is hidden, averaged over the patches "
            "covering each pixel.",
    reference="Zeiler & Fergus 2014, 'Visualizing and Understanding Convolutional Networks', ECCV. arXiv:1311.2901",
    cost=Cost(1, 0, count=lambda p, size: window_count(size, p["window"], p["stride"]),
              count_label="window positions"), diagnostics=(NOTICE,),
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

    def make(start: int, stop: int) -> torch.Tensor:  # one vectorised select per batch: no per-window Python
        idx = torch.arange(start, stop, device=x.device)
        k = idx % n
        hidden = rows[k // nx, :, None] & cols[k % nx, None, :]
        return torch.where(hidden[:, None], ref[idx // n], x[idx // n])

    drop = (base.repeat_interleave(n) - scores(model.module, len(x) * n, make, target.repeat_interleave(n),
                                               progress=progress, desc="windows")).view(len(x), ny, nx)
    # Windows are outer products of a row and a column indicator, so the per-pixel sum is R^T · drop · C.
    r, c = rows.float(), cols.float()
    total = torch.einsum("yh,byx,xw->bhw", r, drop, c)
    count = r.sum(0)[:, None] * c.sum(0)[None, :]
    return ExplainerResult(total / count.clamp_min(1), target)


def _indicators(size: int, window: int, stride: int, device: torch.device) -> torch.Tensor:
    """[windows, size] booleans: which pixels each window offset along one axis hides."""
    start = torch.tensor(positions(size, window, stride), device=device)[:, None]
    pix = torch.arange(size, device=device)[None, :]
    return (pix >= start) & (pix < start + window)
