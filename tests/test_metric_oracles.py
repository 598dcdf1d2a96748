"""Agreement of the newer faithfulness metrics with their reference implementations (test-only dependencies), driven
with the same inputs, subsets, perturbations and masks: ROAD (pytorch-grad-cam, Quantus), faithfulness correlation
(Quantus), infidelity (Captum), Average Drop / Increase (torchcam) and PIC (PAIR saliency); sensitivity-max,
sparseness, complexity and Focus are in test_metric_oracles_robustness.py. Every test builds small random-init
models; nothing is downloaded.

Tolerances: the oracles run the eager module, our metrics the engine's frozen graph (checked against eager to 1e-4
relative, usually ~1e-7); probabilities are compared to 1e-5 absolute unless stated.
"""

from __future__ import annotations

import contextlib
import itertools

import numpy as np
import pytest
import quantus
import torch
from captum.metrics import infidelity as captum_infidelity
from helpers import PATCH_COLS, PATCH_ROWS, UNIT, SmoothCNN, TinyCNN, random_image, seeded
from pytorch_grad_cam.metrics.perturbation_confidence import (
    PerturbationConfidenceMetric,
    RemoveLeastRelevantFirst,
    RemoveMostRelevantFirst,
)
from pytorch_grad_cam.metrics.road import NoisyLinearImputer
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from saliency.metrics import pic as pair_pic
from torchcam.methods.core import _CAM
from torchcam.metrics import ClassificationMetric

import xai_core
from xai_core import metrics
from xai_core.metrics.bokeh import THRESHOLDS, bokeh_set
from xai_core.metrics.faithfulness_correlation import draw_subsets
from xai_core.metrics.infidelity import pixel_noise
from xai_core.metrics.road import road_morf

ODD = (20, 50)  # 1000 pixels, not square: 10% is exactly 100 pixels and height ≠ width is exercised
LABELS = [f"c{i}" for i in range(5)]


@pytest.fixture(autouse=True)
def _trapz_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    if not hasattr(np, "trapz"):  # NumPy ≥ 2.4: PAIR's pic.py still calls the removed name
        monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)


def spec_of(module: torch.nn.Module, size: tuple[int, int] = ODD) -> xai_core.ModelSpec:
    return xai_core.from_module(module.eval(), LABELS[:5], input_size=size, **UNIT)


def level_map(seed: int, size: tuple[int, int] = ODD, levels: int = 20) -> np.ndarray:
    """Every value on exactly 1/levels of the pixels: each removal percentage is a union of whole levels, so a
    percentile threshold (grad-cam) and a pixel count (ours, Quantus) remove the same pixels."""
    n = size[0] * size[1]
    return (np.random.default_rng(seed).permutation(n) // (n // levels)).reshape(size).astype(np.float32) / (levels - 1)


class Grey(torch.nn.Module):
    """A 3-channel model fed one grey channel: Quantus's ROAD indexes pixels of a broadcast C×H×W map as if it were
    H×W, which only works with one channel."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.expand(-1, 3, -1, -1))


def test_road_agrees_with_pytorch_grad_cam_and_quantus():
    seeded(1)
    spec = spec_of(TinyCNN(width=8))
    image = np.repeat(random_image(*ODD, seed=2)[..., :1], 3, axis=2)  # grey, for Quantus's one channel
    maps = {f"m{i}": level_map(i) for i in range(3)}
    r = metrics.evaluate(spec, image, maps, metrics=["road_morf", "road_lerf"],
                         params={m: {"steps": 9, "noise": 0.0} for m in ("road_morf", "road_lerf")})
    x = spec.preprocess(image)
    target = [ClassifierOutputSoftmaxTarget(r.target)]
    p0 = float(torch.softmax(spec.module(x), 1)[0, r.target])
    for name, m in maps.items():
        for mid, remove in (("road_morf", RemoveMostRelevantFirst), ("road_lerf", RemoveLeastRelevantFirst)):
            ours = r.curves[(name, mid)]
            # grad-cam's ROADMostRelevantFirst(p) is this with noise 0.01 from torch's global generator; p = kept %.
            theirs = [float(PerturbationConfidenceMetric(remove(round(100 * (1 - f)), NoisyLinearImputer(noise=0.0)))(
                x, m[None], target, spec.module)[0]) for f in ours.xs]
            np.testing.assert_allclose(ours.probs - p0, theirs, atol=1e-5)
            assert r.values[name][mid] == pytest.approx(float(np.mean(theirs)) + p0, abs=1e-5)
        # Quantus returns whether the class is still top-1 at each percentage (its accuracy before the batch mean).
        q = quantus.ROAD(noise=0.0, percentages=list(range(10, 100, 10)), abs=False, normalise=False,
                         disable_warnings=True, return_aggregate=False)
        acc = []
        for p in range(10, 100, 10):
            q.percentages = [p]
            q(model=Grey(spec.module).eval(), x_batch=x[:, :1].numpy(), y_batch=np.array([r.target]),
              a_batch=m[None, None], device="cpu")
            acc.append(float(q.evaluation_scores[p]))
        probe = road_morf(spec, x, torch.from_numpy(m), steps=9, noise=0.0, seed=0)
        top1 = spec.module(probe.make(0, probe.count)).argmax(1).numpy() == r.target
        assert acc == top1.astype(float).tolist()


def test_road_noise_is_seeded_and_only_on_imputed_pixels():
    spec = spec_of(TinyCNN(width=8))
    x = spec.preprocess(random_image(*ODD, seed=4))
    m = torch.from_numpy(level_map(5))
    clean = road_morf(spec, x, m, steps=4, noise=0.0, seed=3).make(0, 4)
    noisy = road_morf(spec, x, m, steps=4, noise=0.05, seed=3)
    a, b = noisy.make(0, 4), noisy.make(2, 4)
    assert torch.equal(a[2:], b)  # a batch never changes an input
    diff = (a - clean).numpy()
    for k, f in enumerate((0.2, 0.4, 0.6, 0.8)):
        changed = (np.abs(diff[k]) > 0).any(0)
        assert changed.sum() == round(f * 1000)
        assert diff[k][:, changed].std() == pytest.approx(0.05, rel=0.15)


def test_faithfulness_correlation_agrees_with_quantus_on_the_same_subsets(monkeypatch):
    seeded(3)
    spec = spec_of(TinyCNN(width=8))
    image = random_image(*ODD, seed=6)
    maps = {"a": level_map(7), "b": np.random.default_rng(8).standard_normal(ODD).astype(np.float32)}
    runs, size = 40, 60
    r = metrics.evaluate(spec, image, maps, metrics=["faithfulness_correlation"],
                         params={"faithfulness_correlation": {"subsets": runs, "subset_size": size, "baseline": "black"}})
    subsets = draw_subsets(1000, runs, size, seed=0)
    n = 1000
    calls = itertools.count()
    # Quantus draws one subset of C×H×W values per run and image: give it ours, every channel of each pixel.

    def ours(*_args, **_kwargs) -> np.ndarray:
        run = next(calls) // len(maps)  # Quantus draws for every image of the batch in turn, run by run
        return np.concatenate([subsets[run] + c * n for c in range(3)])

    monkeypatch.setattr(np.random, "choice", ours)
    x = spec.preprocess(image).numpy().repeat(len(maps), 0)
    q = quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=3 * size, perturb_baseline=0.0, abs=False,
                                        normalise=False, return_aggregate=False, disable_warnings=True)(
        model=spec.module, x_batch=x, y_batch=np.full(len(maps), r.target), a_batch=np.stack(list(maps.values()))[:, None],
        softmax=False, device="cpu")
    np.testing.assert_allclose([r.values[k]["faithfulness_correlation"] for k in maps], q, atol=1e-5)


def test_infidelity_agrees_with_captum_on_the_same_perturbations():
    seeded(4)
    spec = spec_of(SmoothCNN(), (32, 32))
    image = random_image(32, 32, seed=9)
    maps = {"a": np.random.default_rng(1).random((32, 32), dtype=np.float32), "b": level_map(2, (32, 32), 16)}
    n, sigma = 24, 0.05
    r = metrics.evaluate(spec, image, maps, metrics=["infidelity"],
                         params={"infidelity": {"perturbations": n, "noise": sigma}})
    x = spec.preprocess(image)
    noise = torch.stack([pixel_noise(spec, x, k, 0, "gaussian", sigma) for k in range(n)])
    for name, m in maps.items():
        theirs = captum_infidelity(spec.module, lambda inp: (noise, inp - noise), x,
                                   torch.from_numpy(m).expand(1, 3, 32, 32), target=r.target, n_perturb_samples=n,
                                   normalize=True)
        assert r.values[name]["infidelity"] == pytest.approx(float(theirs), rel=1e-4)


class Given:
    """A torchcam CAM extractor that returns a given map (normalised by torchcam's own ``_normalize``)."""

    def __init__(self, model: torch.nn.Module, cam: np.ndarray) -> None:
        self.model, self.cam = model, torch.from_numpy(cam)[None]

    def __call__(self, class_idx, scores=None, normalized=True, **_):
        return [_CAM._normalize(self.cam.clone())]

    def fuse_cams(self, cams):
        return cams[0]

    def _hooks_off(self):
        return contextlib.nullcontext()


def test_average_drop_and_increase_agree_with_torchcam():
    seeded(6)
    spec = spec_of(TinyCNN(width=8), (32, 32))
    drops, ups, theirs_drop, theirs_up = [], [], [], []
    for i in range(6):
        image = random_image(32, 32, seed=20 + i)
        m = np.random.default_rng(i).standard_normal((32, 32)).astype(np.float32)
        r = metrics.evaluate(spec, image, {"m": m}, metrics=["average_drop", "confidence_increase"])
        drops.append(r.values["m"]["average_drop"])
        ups.append(r.values["m"]["confidence_increase"])
        tc = ClassificationMetric(Given(spec.module, m), lambda z: torch.softmax(z, -1))
        tc.update(spec.preprocess(image), class_idx=r.target)
        theirs_drop.append(tc.summary()["avg_drop"])
        theirs_up.append(tc.summary()["conf_increase"])
    np.testing.assert_allclose(drops, theirs_drop, atol=1e-6)
    assert ups == theirs_up and 0 < np.mean(drops) < 1


class PatchBrightness(torch.nn.Module):
    """Class 0 when the planted patch is white (its mean above 0.95), else class 1: a blurred image loses the class."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z0 = 40 * (x[:, :, PATCH_ROWS, PATCH_COLS].mean((1, 2, 3)) - 0.95)
        return torch.stack([z0, torch.zeros_like(z0), torch.full_like(z0, -1.0)], 1)


def test_pic_agrees_with_pair_saliency():
    spec = spec_of(PatchBrightness(), (32, 32))
    image = random_image(32, 32, seed=11) // 2
    image[PATCH_ROWS, PATCH_COLS] = 255
    oracle = np.zeros((32, 32), np.float32)
    oracle[PATCH_ROWS, PATCH_COLS] = 1.0
    maps = {"oracle": oracle + np.random.default_rng(0).random((32, 32), dtype=np.float32) * 1e-3,
            "random": np.random.default_rng(1).random((32, 32), dtype=np.float32)}
    r = metrics.evaluate(spec, image, maps, metrics=["sic", "aic"])
    assert r.target == 0 and r.passes == 1 + 2 * (2 + len(THRESHOLDS))  # SIC and AIC share their inputs

    def probability(images: np.ndarray) -> list[float]:
        x = spec.normalise(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255)
        return torch.softmax(spec.module(x), 1)[:, 0].tolist()

    def correct(images: np.ndarray) -> list[float]:
        x = spec.normalise(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255)
        return (spec.module(x).argmax(1) == 0).float().tolist()

    for name, m in maps.items():
        mask = bokeh_set(image, m.astype(np.float64), 0).random_mask  # our seeded 1%, given to PAIR
        for mid, pred in (("sic", probability), ("aic", correct)):
            theirs = pair_pic.compute_pic_metric(image, m, mask, pred, THRESHOLDS, min_pred_value=0.0)
            assert r.values[name][mid] == pytest.approx(theirs.auc, abs=1e-5), (name, mid)
    assert r.values["oracle"]["sic"] > r.values["random"]["sic"] + 0.3
    assert r.values["oracle"]["aic"] > r.values["random"]["aic"] + 0.3
    flat = np.full((32, 32, 3), 128, np.uint8)  # nothing to blur: PAIR refuses the image, we give NaN and say why
    with pytest.raises(pair_pic.ComputePicMetricError):
        pair_pic.compute_pic_metric(flat, maps["random"], mask, probability, THRESHOLDS, min_pred_value=0.0)
    refused = metrics.evaluate(spec, flat, {"random": maps["random"]}, metrics=["sic"])
    assert np.isnan(refused.values["random"]["sic"]) and "compresses no better" in refused.notes[0]
