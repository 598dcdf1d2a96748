"""Complexity of the map (sparseness, complexity), robustness (sensitivity-max) and Focus: exact values on constructed
maps and explainers, invariances, and the rerun kind end to end (the explainer re-run through the Workbench, other
images drawn from a pool, a NaN and a note where a map has no explainer or no other-class image exists)."""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest
import torch
from helpers import SIZE, UNIT, SmoothCNN, random_image, seeded

import xai_core
from xai_core import metrics
from xai_core.metrics import Rerun
from xai_core.metrics.focus import focus
from xai_core.request import ExplainRequest
from xai_core.workbench import Workbench

N = SIZE[0] * SIZE[1]
GINI, ENTROPY = metrics.get_metric("sparseness"), metrics.get_metric("complexity")


def test_sparseness_and_complexity_on_constructed_maps():
    one_hot, flat = np.zeros(SIZE), np.ones(SIZE)
    one_hot[3, 4] = 5.0
    # Every share gets Quantus's 1e-7: Σ (2i − n − 1) = 0 leaves (n − 1) over n (1 + n·1e-7).
    assert GINI.score(one_hot) == pytest.approx((N - 1) / (N * (1 + N * 1e-7)), rel=1e-9)
    assert GINI.score(flat) == pytest.approx(0, abs=1e-9)
    assert ENTROPY.score(one_hot) == pytest.approx(0, abs=1e-9) and ENTROPY.score(flat) == pytest.approx(math.log(N))
    half = np.zeros(SIZE)
    half[:, : SIZE[1] // 2] = 1.0
    assert GINI.score(half) == pytest.approx(0.5, abs=1e-6) and ENTROPY.score(half) == pytest.approx(math.log(N / 2))
    m = np.random.default_rng(0).standard_normal(SIZE)
    for f in (GINI, ENTROPY):  # |m| is what counts, at any scale
        assert f.score(-3 * m) == pytest.approx(f.score(m), rel=1e-9)


def test_map_metrics_read_the_map_at_the_models_input_size(planted):
    image = random_image(64, 48, seed=1)
    m = np.random.default_rng(2).random((64, 48)).astype(np.float32) ** 4
    r = metrics.evaluate(planted, image, {"m": m}, metrics=["sparseness", "complexity"])
    small = cv2.resize(m, (SIZE[1], SIZE[0]), interpolation=cv2.INTER_AREA)
    assert r.values["m"]["sparseness"] == pytest.approx(GINI.score(small), rel=1e-9)
    assert r.values["m"]["complexity"] == pytest.approx(ENTROPY.score(small), rel=1e-9)
    assert r.passes == 0 and r.seconds < 5  # no model pass at all


def rerun_of(explain, others: torch.Tensor) -> Rerun:
    return Rerun(explain, lambda k, seed: others[:k], 0)


def test_focus_is_the_share_on_the_image_tiles():
    spec = xai_core.from_module(SmoothCNN().eval(), [f"c{i}" for i in range(5)], input_size=SIZE, **UNIT)
    white = spec.normalise(torch.ones(1, 3, *SIZE))
    black = spec.normalise(torch.zeros(2, 3, *SIZE))
    brightness = lambda xs: spec.denormalise(xs).mean(1)  # noqa: E731 - an "explainer" that finds the white tiles
    assert focus(spec, white, torch.zeros(SIZE), rerun_of(brightness, black), mosaics=4, seed=0) == pytest.approx(1.0)
    assert focus(spec, white, torch.zeros(SIZE), rerun_of(lambda xs: 1 - brightness(xs), black),
                 mosaics=4, seed=0) == pytest.approx(0.0, abs=1e-9)
    assert focus(spec, white, torch.zeros(SIZE), rerun_of(lambda xs: torch.ones(len(xs), *SIZE), black),
                 mosaics=3, seed=0) == pytest.approx(0.5)
    nobody = rerun_of(brightness, black[:0])
    assert math.isnan(focus(spec, white, torch.zeros(SIZE), nobody, mosaics=2, seed=0))
    assert "no other image" in nobody.notes[0]


class ColourNet(torch.nn.Module):
    """A smooth random CNN plus a strong vote of the mean colour: solid colours land in different classes."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn = SmoothCNN()
        self.register_buffer("votes", torch.tensor([[4.0, 0, 0, -4, 0], [0, 4, 0, 0, -4], [0, 0, 4, -4, 4]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn(x) + 4 * (x.mean((2, 3)) - 0.5) @ self.votes


@pytest.fixture
def smooth() -> Workbench:
    seeded(3)
    return Workbench(xai_core.from_module(ColourNet().eval(), [f"c{i}" for i in range(5)], input_size=SIZE, **UNIT))


def test_rerun_metrics_end_to_end_through_the_workbench(smooth):
    image = random_image(*SIZE, seed=4)
    request = ExplainRequest.make("gradient", None, {}, 0)
    grad = smooth.explain(image, request).map
    pool = [np.full((*SIZE, 3), c, np.uint8) for c in itertools.product((0, 128, 255), repeat=3)]
    assert len({int(smooth.probabilities(im).argmax()) for im in pool}) > 2
    params = {"sensitivity_max": {"samples": 4}, "focus": {"mosaics": 2}}
    r = metrics.evaluate(smooth, image, {"g": grad, "edges": metrics.reference_maps(image)[metrics.EDGES]},
                         metrics=["sensitivity_max", "focus"], requests={"g": request}, pool=pool, params=params)
    assert 0 < r.values["g"]["sensitivity_max"] < 1 and 0 <= r.values["g"]["focus"] <= 1
    assert math.isnan(r.values["edges"]["sensitivity_max"]) and math.isnan(r.values["edges"]["focus"])
    assert r.notes == ["Sensitivity re-runs the explainer that made a map: not possible for edges (no value).",
                       "Focus re-runs the explainer that made a map: not possible for edges (no value)."]
    again = metrics.evaluate(smooth, image, {"g": grad}, metrics=["sensitivity_max", "focus"], requests={"g": request},
                             pool=pool, params=params)
    assert again.values["g"] == r.values["g"]  # seeded: the same perturbations and mosaics every time
    wider = metrics.evaluate(smooth, image, {"g": grad}, metrics=["sensitivity_max"], requests={"g": request},
                             params={"sensitivity_max": {"samples": 4, "radius": 0.2}})
    assert wider.values["g"]["sensitivity_max"] > r.values["g"]["sensitivity_max"]
    same_class = [im for im in pool if int(smooth.probabilities(im).argmax()) == r.target]
    alone = metrics.evaluate(smooth, image, {"g": grad}, metrics=["focus"], requests={"g": request}, pool=same_class)
    assert math.isnan(alone.values["g"]["focus"]) and "no other image" in alone.notes[0]
