"""The frozen-graph fast path: used on CPU by default, maps equal to eager, and eager wherever it cannot be trusted."""

from __future__ import annotations

import pytest
import torch
from helpers import random_input

from xai_core import RunOptions, fastpath, get_explainer, options
from xai_core.hooks import capture


@pytest.fixture(autouse=True)
def _cpu_only(tiny):
    if tiny.device.type != "cpu":
        pytest.skip("the frozen graph is a CPU path (XAI_TEST_DEVICE is not cpu)")


def _eager(fn):
    with options.using(RunOptions(freeze=False)):
        return fn()


def test_frozen_graph_is_built_verified_and_gives_the_eager_maps(tiny):
    x = random_input(tiny, 2, seed=1)
    t = torch.tensor([0, 2])
    assert fastpath.frozen(tiny.module, x) is not None
    for method, p in (("occlusion", {"window": 8, "stride": 4}), ("rise", {"masks": 64, "cells": 4}),
                      ("lime", {"samples": 64, "segmentation": "grid", "n_segments": 16}), ("scorecam", {})):
        fast = get_explainer(method)(tiny, x, t, **p)
        slow = _eager(lambda method=method, p=p: get_explainer(method)(tiny, x, t, **p))
        torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5, msg=method)


def test_frozen_graph_on_the_bundled_model_matches_eager(lite0, chelsea_x):
    if chelsea_x.device.type != "cpu":
        return
    xb = chelsea_x.expand(3, -1, -1, -1).contiguous(memory_format=torch.channels_last)
    graph = fastpath.frozen(lite0.module, xb)
    assert graph is not None
    with torch.inference_mode():
        torch.testing.assert_close(graph(xb), lite0.module(xb), rtol=1e-4, atol=1e-4)


def test_no_frozen_graph_with_hooks_after_weight_changes_or_for_untraceable_models(tiny):
    x = random_input(tiny, 2)
    with capture(tiny.module.act2):
        assert fastpath.frozen(tiny.module, x) is None
    before = fastpath.frozen(tiny.module, x)
    with torch.no_grad():
        tiny.module.fc.bias.add_(1.0)  # in place: the cached graph would be stale
    after = fastpath.frozen(tiny.module, x)
    assert before is not None and after is not None and after is not before
    with torch.inference_mode():
        torch.testing.assert_close(after(x), tiny.module(x))

    class DataDependent(torch.nn.Module):  # a trace records one branch: verification must catch it
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return z.flatten(1)[:, :3] * (2.0 if float(z.mean()) > 0 else -1.0)

    m = DataDependent().eval()
    z = torch.randn(4, 3, 8, 8)
    z[0] = z[0].abs() + 1.0  # the trace sees batch rows 0-1 (positive mean); the check sees all 4
    z[2:] = -z[2:].abs() - 5.0
    assert fastpath.frozen(m, z) is None
