"""Meaningful Perturbation (Fong & Vedaldi 2017): a learnt blur-deletion mask, on tiny offline models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import PATCH_COLS, PATCH_ROWS, SIZE, random_input

import xai_core
from xai_core import Cancelled, RunOptions, get_explainer, options
from xai_core.explainers import common
from xai_core.hooks import has_hooks

MP = get_explainer("meaningful_perturbation")
FAST = {"grid": 8, "iterations": 60}


def _bright_patch(model: xai_core.ModelSpec) -> torch.Tensor:
    """A dim image with a bright planted patch: blurring the patch spreads its light where the model is blind."""
    x01 = 0.1 + 0.1 * torch.rand((1, 3, *SIZE), generator=torch.Generator().manual_seed(0))
    x01[..., PATCH_ROWS, PATCH_COLS] += 0.7
    return model.normalise(x01)


def test_metadata():
    assert MP.title == "Meaningful Perturbation" and MP.family == "perturbation"
    assert MP.taxonomy == ("local", "white-box", "post-hoc", "model-agnostic")
    assert MP.stochastic and not MP.signed and "1704.03296" in MP.reference and "1704.03296" in MP.fn.__doc__
    assert {"iterations", "grid", "lr", "l1", "tv"} <= set(MP.defaults())
    assert MP.cost.per == "iterations" and MP.passes({"iterations": 10}) == 20  # one forward + one backward each


def test_deletes_the_planted_patch_and_lowers_the_probability(planted):
    x = _bright_patch(planted)
    with torch.no_grad():
        target = planted.module(x).argmax(1)
    before = [p.detach().clone() for p in planted.module.parameters()]
    result = MP.run(planted, x, target, grid=14, iterations=60)
    maps, diagnostics = result.maps, result.diagnostics
    assert maps.shape == (1, *SIZE) and maps.dtype == torch.float32
    r, c = divmod(int(maps[0].argmax()), SIZE[1])
    assert PATCH_ROWS.start <= r < PATCH_ROWS.stop and PATCH_COLS.start <= c < PATCH_COLS.stop, (r, c)
    assert float(maps[0].max()) > 0.5
    far = torch.cat([maps[0, :, :12].flatten(), maps[0, 20:].flatten()])  # pixels ≥ 8 px from the patch are kept
    assert float(far.max()) < 0.01 * float(maps[0].max())
    assert diagnostics["probability_after"][0] < diagnostics["probability_before"][0] - 0.005
    # The logits returned are those of the explained input itself.
    assert torch.allclose(result.logits, planted.module(x).detach(), atol=1e-5)
    # Diagnostics: the keep-mask is 1 − map, the perturbed image is an RGB uint8 picture.
    mask, img = diagnostics["mask"][0], diagnostics["perturbed"][0]
    assert mask.dtype == np.float32 and mask.shape == SIZE and 0 <= mask.min() and mask.max() <= 1
    assert np.allclose(mask, 1 - maps[0].numpy(), atol=1e-6)
    assert img.dtype == np.uint8 and img.shape == (*SIZE, 3)
    # Hygiene: no hooks, no parameter changed or given a gradient.
    assert not has_hooks(planted.module)
    assert all(torch.equal(a, b) and b.grad is None and not b.requires_grad
               for a, b in zip(before, planted.module.parameters(), strict=True))


def test_deterministic_and_batched_equals_unbatched(tiny):
    x, target = random_input(tiny, 3, seed=2), torch.tensor([0, 3, 1])
    maps = MP(tiny, x, target, seed=4, **FAST)
    assert float(maps.abs().max()) > 0
    assert torch.equal(MP(tiny, x, target, seed=4, **FAST), maps)
    assert not torch.equal(MP(tiny, x, target, seed=5, **FAST), maps)
    singles = torch.cat([MP(tiny, x[i: i + 1], target[i: i + 1], seed=4, **FAST) for i in range(3)])
    # The map is 1 - m with m near 1: round-off of one float32 ulp at 1.0 (6e-8) is the floor of the tolerance.
    assert float((singles - maps).abs().max()) <= 1e-5 * float(maps.abs().max()) + 2.4e-7


def test_time_budget_caps_the_iterations(tiny, monkeypatch):
    monkeypatch.setattr(common, "seconds_per_pass", lambda module, x: 0.01)  # 30 ms per image-iteration
    calls: list[tuple[float, str]] = []
    with options.using(RunOptions(time_budget=1.0)):
        got = MP.run(tiny, random_input(tiny), torch.tensor([0]), grid=8, iterations=300,
                     progress=lambda f, text: calls.append((f, text))).diagnostics
    assert "capped from 300 to 33" in got["notice"][0]
    assert calls[-1] == (1.0, "mask optimisation 33/33") and len(calls) == 4  # every 10 and the last
    with options.using(RunOptions(time_budget=1.0)):
        got = MP.run(tiny, random_input(tiny), torch.tensor([0]), iterations=20).diagnostics
    assert "notice" not in got


def test_cancel_stops_cleanly_and_inference_mode_callers_work(tiny):
    def cancel(fraction: float, text: str) -> None:
        raise Cancelled("Stopped.")

    x, target = random_input(tiny), torch.tensor([2])
    with pytest.raises(Cancelled):
        MP(tiny, x, target, progress=cancel, **FAST)
    assert not has_hooks(tiny.module) and all(p.grad is None for p in tiny.module.parameters())
    with torch.inference_mode():
        inside = MP(tiny, x, target, **FAST)
    assert torch.equal(inside, MP(tiny, x, target, **FAST))


def test_nan_scores_are_a_clear_error(tiny):
    with pytest.raises(xai_core.ExplainerError, match="NaN or infinite scores"):
        MP(tiny, torch.full((1, 3, *SIZE), float("nan")), torch.tensor([0]), **FAST)
