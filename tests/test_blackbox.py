"""Occlusion, RISE and Score-CAM: oracles, planted patch, budgets, cancellation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import Occlusion
from helpers import PATCH_COLS, PATCH_ROWS, random_input, tiny_spec

import xai_core
from xai_core import Cancelled, ExplainerError, ExplainRequest, RunOptions, get_explainer, options
from xai_core.explainers.common import reference_input


@pytest.mark.parametrize("baseline", ["black", "mean", "blurred"])
@pytest.mark.parametrize("window,stride", [(4, 2), (8, 8), (6, 3)])
def test_occlusion_equals_captum_exactly(tiny, baseline, window, stride):
    x = random_input(tiny, 2, seed=1)
    target = torch.tensor([0, 3])
    ours = get_explainer("occlusion")(tiny, x, target, window=window, stride=stride, baseline=baseline)
    ref = reference_input(tiny, x, baseline)
    theirs = Occlusion(tiny.module).attribute(x.contiguous(), sliding_window_shapes=(3, window, window),
                                              strides=(3, stride, stride), baselines=ref.contiguous(),
                                              target=target)
    torch.testing.assert_close(ours, theirs[:, 0], rtol=1e-4, atol=1e-5)
    assert torch.equal(theirs[:, 0], theirs[:, 2])


def _in_patch(m: torch.Tensor, margin: int = 1) -> bool:
    r, c = divmod(int(m.flatten().argmax()), m.shape[-1])
    return (PATCH_ROWS.start - margin <= r < PATCH_ROWS.stop + margin
            and PATCH_COLS.start - margin <= c < PATCH_COLS.stop + margin)


@pytest.mark.parametrize("method,params", [
    ("occlusion", {"window": 4, "stride": 2}),
    ("rise", {"masks": 1500, "cells": 6}),
    ("scorecam", {}),
])
def test_black_box_maps_peak_in_the_planted_patch(planted, method, params):
    x = random_input(planted, 3, seed=2)
    # Probability-based methods need a class whose *probability* rises with the patch; with softmax over
    # classes that all see it, that is the predicted class (class 0's probability falls when it shows).
    with torch.no_grad():
        target = planted.module(x).argmax(1)
    assert (target == 1).all()
    maps = get_explainer(method)(planted, x, target, seed=0, **params)
    assert all(_in_patch(m, margin=2) for m in maps), method


def _scorecam_reference(spec, x, target):
    """The authors' loop: one masked forward per channel, softmax score, weighted sum, ReLU."""
    feats = {}
    h = spec.submodule(None).register_forward_hook(lambda m, i, o: feats.setdefault("a", o.detach()))
    with torch.no_grad():
        spec.module(x)
    h.remove()
    acts = feats["a"]
    cam = torch.zeros(x.shape[-2:])
    for k in range(acts.shape[1]):
        up = torch.nn.functional.interpolate(acts[:, k:k + 1], size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
        if up.max() == up.min():
            continue
        norm = (up - up.min()) / (up.max() - up.min())
        with torch.no_grad():
            score = torch.softmax(spec.module(x * norm), dim=1)[0, target]
        cam += score * up
    return torch.relu(cam)


def test_scorecam_matches_the_authors_algorithm(tiny):
    x = random_input(tiny, 1, seed=4)
    ours = get_explainer("scorecam")(tiny, x, torch.tensor([2]))[0]
    torch.testing.assert_close(ours, _scorecam_reference(tiny, x, 2), rtol=1e-4, atol=1e-6)


def test_scorecam_channel_subset_uses_the_most_active(tiny):
    x = random_input(tiny, 2, seed=4)
    full = get_explainer("scorecam")(tiny, x, torch.tensor([1, 2]))
    top = get_explainer("scorecam")(tiny, x, torch.tensor([1, 2]), channels=8)
    assert top.shape == full.shape and torch.isfinite(top).all() and not torch.equal(top, full)


def test_rise_is_the_probability_weighted_mask_average(tiny):
    from xai_core.explainers.rise import smooth_masks

    x = random_input(tiny, 1, seed=3)
    n, cells, p = 64, 4, 0.5
    ours = get_explainer("rise")(tiny, x, torch.tensor([1]), masks=n, cells=cells, p=p, seed=9)[0]
    gen = torch.Generator().manual_seed(9)
    grids = (torch.rand((n, cells, cells), generator=gen) < p).float()
    shifts = torch.stack([torch.randint(0, 8, (n,), generator=gen), torch.randint(0, 8, (n,), generator=gen)], 1)
    m = smooth_masks(grids, shifts, (32, 32))
    black = reference_input(tiny, x, "black")
    with torch.no_grad():
        prob = torch.softmax(tiny.module(x * m + black * (1 - m)), dim=1)[:, 1]
    torch.testing.assert_close(ours, (prob.view(-1, 1, 1) * m[:, 0]).sum(0) / (n * p), rtol=1e-4, atol=1e-6)
    assert 0 <= float(m.min()) and float(m.max()) <= 1 + 1e-6


def test_time_budget_caps_and_says_so(tiny, monkeypatch):
    from xai_core import engine

    monkeypatch.setattr(engine, "seconds_per_pass", lambda module, example: 0.01)
    monkeypatch.setattr("xai_core.explainers.common.seconds_per_pass", lambda module, example: 0.01)
    x = random_input(tiny, 1)
    with options.using(RunOptions(time_budget=5.0)):
        got = get_explainer("rise").run(tiny, x, torch.tensor([0]), masks=4000).diagnostics
    assert got["masks_used"] == [500] and "capped from 4000 to 500" in got["notice"][0]
    with pytest.raises(ExplainerError, match="time budget"), options.using(RunOptions(time_budget=1.0)):
        get_explainer("occlusion")(tiny, x, torch.tensor([0]), window=2, stride=1)
    # The budget is the session's: the Workbench passes its RunOptions down, and the map says it was capped.
    image = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    e = xai_core.Workbench(tiny, RunOptions(time_budget=5.0)).explain(image, ExplainRequest.make("rise", params={"masks": 4000}))
    assert "capped" in e.value("notice") and e.value("masks_used") == 500
    assert e.diagnostics["notice"].spec.show == "notice"
    assert options.current() == RunOptions()  # restored after the call


def test_a_progress_callback_can_stop_rise_between_batches():
    tiny = tiny_spec(device="cpu")  # CPU batches of 8: a GPU would score all 4000 masks in one batch
    calls = []

    def progress(fraction: float, text: str) -> None:
        calls.append(fraction)
        if len(calls) == 2:
            raise Cancelled("stopped by the user")

    with pytest.raises(Cancelled):
        get_explainer("rise")(tiny, random_input(tiny, 1), torch.tensor([0]), masks=4000, progress=progress)
    assert len(calls) == 2 and calls[-1] < 1


def test_black_box_maps_on_the_bundled_model(lite0, chelsea_x):
    """A real-model smoke test with small settings: finite maps that are not constant."""
    for method, params in [("rise", {"masks": 64}), ("scorecam", {"channels": 32}),
                           ("occlusion", {"window": 56, "stride": 56})]:
        m = get_explainer(method)(lite0, chelsea_x, torch.tensor([285]), **params)
        assert m.shape == (1, 224, 224) and torch.isfinite(m).all() and float(m.std()) > 0, method
