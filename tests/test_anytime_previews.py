"""Free previews of the ladders (issue 23): Integrated Gradients and Occlusion stream coarse-to-fine maps from the
passes of the one-shot run itself (no extra pass), their previews are exact where their interpolation is, and the
final map is the one computed in order (the rule's order of steps, row-major windows)."""

from __future__ import annotations

import pytest
import torch
from helpers import LABELS, TinyCNN, assert_close_f32
from torch import nn

import xai_core as xc
from xai_core.engine import input_gradients
from xai_core.explainers import integrated_gradients as ig
from xai_core.explainers import occlusion as occ
from xai_core.explainers.common import reference_input

UNIT = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "device": "cpu"}
SIZE = 224  # engine batches of 8 on the CPU: several batches, so previews
LADDERS = {"integrated_gradients": {"steps": 40}, "occlusion": {"window": 32, "stride": 16}}


@pytest.fixture(scope="module")
def tiny() -> tuple[xc.ModelSpec, torch.Tensor]:
    torch.manual_seed(0)
    model = xc.from_module(TinyCNN(), LABELS, input_size=(SIZE, SIZE), cam_layer="act2", fc_layer="fc", device="cpu")
    return model, model.normalise(torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("method", list(LADDERS))
def test_previews_cost_no_extra_pass(tiny, method):
    model, x = tiny
    spec = xc.get_explainer(method)
    spec.run(model, x, torch.tensor([1]), **LADDERS[method])  # measures the pass time (for the time budget) once
    passes: list[int] = []
    hook = model.module.register_forward_pre_hook(lambda _, args: passes.append(len(args[0])))  # eager, no frozen graph
    try:
        spec.run(model, x, torch.tensor([1]), **LADDERS[method])
        one = sum(passes)
        passes.clear()
        steps = list(spec.stream(model, x, torch.tensor([1]), **LADDERS[method]))
    finally:
        hook.remove()
    assert len(steps) >= 3 and sum(passes) == one  # several previews, the one-shot's passes only
    assert all(0 < s.refinement.done < s.refinement.total for s in steps[:-1]) and steps[-1].refinement.complete


def test_integrated_gradients_equals_the_sum_in_the_rules_order(tiny):
    """The one-shot map computes its steps coarse to fine but sums them as a run in order does."""
    model, x = tiny
    t, steps = torch.tensor([1]), 20
    got = xc.get_explainer("integrated_gradients").attribute(model, x, t, steps=steps).values
    a, w = ig.nodes(steps, "gausslegendre")
    x0 = reference_input(model, x, "black", 0)
    grads = input_gradients(model.module, x0 + a.view(-1, 1, 1, 1) * (x - x0), t.expand(steps)).grad
    want = (x - x0) * (grads * w.view(-1, 1, 1, 1)).sum(0, keepdim=True)
    assert_close_f32(got, want, terms=steps)


class Quadratic(nn.Module):
    """logit = Σ v·x²: the gradient along a straight path is linear in α, so interpolating it between steps is exact."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("v", torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (self.v * x * x).flatten(1).sum(1)
        return torch.stack([z, -z], 1)


class Ramp(nn.Module):
    """logit = Σ w·x with w affine in the pixel's row and column: a window's score drop is affine in its offsets, so
    interpolating drops linearly between offsets is exact."""

    def __init__(self) -> None:
        super().__init__()
        i = torch.arange(SIZE, dtype=torch.float32) / SIZE
        self.register_buffer("w", (1 + i[:, None] + 2 * i[None, :]).expand(1, 3, SIZE, SIZE).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (self.w * x).flatten(1).sum(1)
        return torch.stack([z, -z], 1)


@pytest.mark.parametrize(("method", "module", "params"), [
    ("integrated_gradients", Quadratic, {"steps": 40, "rule": "riemann_trapezoid"}),
    ("occlusion", Ramp, {"window": 32, "stride": 16}),
])
def test_previews_are_exact_where_their_interpolation_is(method, module, params):
    model = xc.from_module(module(), ["a", "b"], input_size=(SIZE, SIZE), **UNIT)
    x = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3)) if method != "occlusion" else \
        torch.ones(1, 3, SIZE, SIZE)  # uniform pixels: a window's drop is the sum of w over it
    steps = list(xc.get_explainer(method).stream(model, x, torch.tensor([0]), **params))
    assert len(steps) >= 3
    final = steps[-1].maps
    # IG: per pixel, sums of 40 weighted gradients over 3 channels; Occlusion: a drop is the difference of two scores
    # (~4.5e5, sums over every pixel), whose round-off (an ulp of 4.5e5 is 0.03) it keeps: measured 0.05, tol 1.8.
    score = float(model.module(x)[0, 0])
    tol = {"terms": 3 * params["steps"]} if method != "occlusion" else {"magnitude": score}
    for s in steps[:-1]:
        assert_close_f32(s.maps, final, **tol)


def test_partial_weights_are_the_rule_interpolated():
    a, w = ig.nodes(50, "gausslegendre")
    order = ig.coarse_to_fine(a)
    assert sorted(order) == list(range(50)) and abs(float(a[order[0]]) - 0.5) < 0.05
    for k in (1, 2, 8, 24, 50):
        seen = torch.tensor(sorted(order[:k]))
        pw = ig.partial_weights(a, w, seen)
        assert len(pw) == k and (pw >= 0).all() and abs(float(pw.sum()) - float(w.sum())) < 1e-6
        # a gradient linear in α between the first and last seen step is integrated as the rule does
        g = 1 + 2 * a.double()
        inside = (a >= a[seen[0]]) & (a <= a[seen[-1]])
        if k > 1:
            assert abs(float((pw.double() * g[seen]).sum()) - float((w.double() * g)[inside].sum())
                       - float(w[~inside & (a < a[seen[0]])].double().sum() * g[seen[0]])
                       - float(w[~inside & (a > a[seen[-1]])].double().sum() * g[seen[-1]])) < 1e-6
    assert torch.allclose(ig.partial_weights(a, w, torch.arange(50)), w)


def test_occlusion_visits_every_window_once_the_short_batch_first():
    order, ladder = occ.visiting_order(27, 27, 8, torch.device("cpu"))
    assert sorted(order.tolist()) == list(range(729)) and order[:1].tolist() == [728]  # 729 = 91 · 8 + 1
    counts = [m for m, _, _ in ladder]
    assert counts == sorted(set(counts)) and counts[-1] == 729 and counts[0] == 1 + 24  # the corner is in every grid
    seen = set(order[: counts[1]].tolist())
    k, c = ladder[1][1:]
    assert {i * 27 + j for i in occ._every(27, k) for j in occ._every(27, c)} <= seen
