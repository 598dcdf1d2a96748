"""Any-time maps (xai_core.anytime): every refining explainer's streamed final is its one-shot result, bit for bit;
the stop rule stops a converging stream and not a noisy one; the uncertainty is zero where every sample agrees and
large where a planted random term rules; the Workbench, the reports and the batch runner carry it."""

from __future__ import annotations

import io
import os
import threading

import numpy as np
import pytest
import torch
from helpers import LABELS, TinyCNN, f32_tol
from PIL import Image
from torch import nn

import xai_core as xc
from xai_core import anytime, report
from xai_core.batch import open_run
from xai_core.batch.__main__ import main as batch_main
from xai_core.explainers.rise import smooth_masks
from xai_core.result import ExplainerResult, Refinement

REFINING = [s.id for s in xc.list_explainers() if s.refines]
PARAMS = {"rise": {"masks": 200}, "lime": {"samples": 120}, "kernel_shap": {"samples": 120},
          "smoothgrad": {"samples": 30, "noise": 0.3}, "integrated_gradients": {"steps": 40},
          "occlusion": {"window": 32, "stride": 16}, "scorecam": {}, "meaningful_perturbation": {"iterations": 40}}
TARGET = torch.tensor([1])
UNIT = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "device": "cpu"}
DEVICE = os.environ.get("XAI_TEST_DEVICE", "cpu")  # the bit-equality test runs on the GPU too (XAI_TEST_DEVICE=cuda)


@pytest.fixture(scope="module")
def big() -> tuple[xc.ModelSpec, torch.Tensor]:
    """The tiny CNN at 224 px: engine batches of 8 on the CPU, so every method refines several times."""
    torch.manual_seed(0)
    model = xc.from_module(TinyCNN(), LABELS, input_size=(224, 224), cam_layer="act2", fc_layer="fc", device=DEVICE)
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(1)).to(model.device)
    return model, model.normalise(x)


def test_the_refining_explainers_are_the_ones_the_issue_names():
    assert set(REFINING) == set(PARAMS)


@pytest.mark.parametrize("method", REFINING)
def test_streamed_final_is_the_one_shot_result_bit_for_bit(big, method):
    model, x = big
    spec = xc.get_explainer(method)
    one = spec.run(model, x, TARGET, seed=3, **PARAMS[method])
    steps = list(spec.stream(model, x, TARGET, seed=3, **PARAMS[method]))
    assert len(steps) >= 2 or model.device.type != "cpu", "no refinement before the final map"  # GPU: batches of 128
    last = steps[-1]
    assert torch.equal(last.maps, one.maps)  # same samples, same order, same batches: exactly
    assert last.refinement.complete and not last.refinement.stopped
    assert all(not s.refinement.complete for s in steps[:-1])
    assert [s.refinement.done for s in steps] == sorted({s.refinement.done for s in steps})
    assert set(last.diagnostics) == set(one.diagnostics)
    for k, v in one.diagnostics.items():
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(v, last.diagnostics[k], strict=True))
    if one.uncertainty is not None:  # a bootstrap's or Score-CAM's: the same as the one-shot's
        assert torch.equal(last.uncertainty, one.uncertainty)
    for s in steps[1:] if len(steps) > 1 else []:
        assert s.uncertainty is not None and s.uncertainty.shape == s.maps.shape
        assert torch.isfinite(s.uncertainty).all() and (s.uncertainty >= 0).all() and s.refinement.uncertainty
        assert s.refinement.stability is not None


def test_a_batch_of_two_yields_its_final_only_and_equals_the_one_shot(big):
    model, x = big
    x2 = torch.cat([x, x.flip(-1)])
    spec = xc.get_explainer("rise")
    steps = list(spec.stream(model, x2, torch.tensor([1, 2], device=model.device), masks=64))
    t = torch.tensor([1, 2], device=model.device)
    assert len(steps) == 1 and torch.equal(steps[0].maps, spec.run(model, x2, t, masks=64).maps)


def test_score_cam_uncertainty_is_zero_once_every_channel_is_in(big):
    model, x = big
    steps = list(xc.get_explainer("scorecam").stream(model, x, TARGET))
    assert float(steps[-1].uncertainty.abs().max()) == 0.0
    assert len(steps) == 1 or float(steps[0].uncertainty.max()) > 0


def _synthetic(maps: list[torch.Tensor]):
    for k, m in enumerate(maps):
        yield ExplainerResult(m[None], torch.tensor([0]), refinement=Refinement(k + 1, len(maps), f"{k + 1} parts"))


def test_stop_rule_stops_a_converging_stream_and_not_a_noisy_one():
    gen = torch.Generator().manual_seed(0)
    i, j = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    signal = torch.exp(-((i - 0.3) ** 2 + j ** 2) * 3)
    noise = torch.randn(2 ** 14, 32, 32, generator=gen)
    converging = [signal + noise[: 2 ** k].mean(0) for k in range(15)]  # cumulative means: noise shrinks as 2^(-k/2)
    rule = anytime.StopRule()
    out = list(anytime.refine(_synthetic(converging), rule))
    last = out[-1]
    assert last.refinement.stopped and not last.refinement.complete and len(out) < len(converging)
    assert anytime.rank_correlation(last.maps[0], signal) > 0.9  # it stopped on a map that had converged
    noisy = [torch.randn(32, 32, generator=gen) for _ in range(15)]  # nothing to converge to
    out = list(anytime.refine(_synthetic(noisy), rule))
    assert len(out) == 15 and out[-1].refinement.complete and not any(r.refinement.stopped for r in out)
    assert all(r.refinement.stability is not None and r.refinement.stability < rule.threshold for r in out[1:])


class LeftThird(nn.Module):
    """Class 0 is sure when the left third of the image is bright: RISE converges to a left-to-right ramp."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 30 * (x[:, :, :, :12].mean((1, 2, 3)) - 0.5)
        return torch.stack([z, -z], 1)


class Coin(nn.Module):
    """Scores that ignore the image: RISE's map never converges."""

    def __init__(self) -> None:
        super().__init__()
        self.gen = torch.Generator().manual_seed(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.randn(len(x), 2, generator=self.gen)


def test_rise_stops_early_on_a_converging_toy_and_runs_on_a_noisy_one():
    x = torch.ones(1, 3, 32, 32)
    for module, stops in ((LeftThird(), True), (Coin(), False)):
        model = xc.from_module(module, ["a", "b"], input_size=(32, 32), **UNIT)
        out = list(xc.get_explainer("rise").stream(model, x, torch.tensor([0]), masks=4000, stop=anytime.StopRule()))
        assert bool(out[-1].refinement.stopped) is stops and (out[-1].refinement.done < 4000) is stops
        assert "stopped early at" in out[-1].refinement.stopped or not stops


class PlantedQuadratic(nn.Module):
    """logit = Σ w·x + 5·x[0, 3, 20]²: the gradient is w everywhere but at one pixel, where it follows the noise."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("w", torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x * self.w).sum((1, 2, 3)) + 5 * x[:, 0, 3, 20] ** 2
        return torch.stack([z, -z], 1)


def test_smoothgrad_uncertainty_is_zero_where_samples_agree_and_large_at_a_planted_random_pixel():
    model = xc.from_module(PlantedQuadratic(), ["a", "b"], input_size=(16, 24), **UNIT)
    x = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(5))  # SmoothGrad scales σ by its range
    r = xc.get_explainer("smoothgrad").run(model, x, torch.tensor([0]), samples=40, noise=0.5, reduction="sum")
    u = r.uncertainty[0]
    others = torch.ones_like(u, dtype=torch.bool)
    others[3, 20] = False
    assert float(u[others].max()) <= f32_tol(3.0, terms=40)  # every noisy sample has the same gradient there
    assert float(u[3, 20]) > 0.1  # 5·2·σ·range/√n ≈ 0.8: the planted pixel's gradient is noise-driven


class CellSum(nn.Module):
    """logit = Σ_j v_j · mean of cell j (a 2×2 grid) [+ a random term times cell 3's mean]: LIME's surrogate with α = 0
    fits the noise-free model exactly."""

    def __init__(self, noisy: bool) -> None:
        super().__init__()
        self.noisy, self.gen = noisy, torch.Generator().manual_seed(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cells = x.mean(1).unflatten(1, (2, 8)).unflatten(3, (2, 8)).mean((2, 4)).flatten(1)  # [B, 4]
        z = cells @ torch.tensor([1.0, -2.0, 3.0, 0.5])
        if self.noisy:
            z = z + 4 * torch.randn(len(x), generator=self.gen) * cells[:, 3]
        return torch.stack([z, -z], 1)


def test_lime_uncertainty_is_zero_for_an_exact_surrogate_and_not_for_noisy_scores():
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 0.5 + 0.5
    kw = {"samples": 300, "segmentation": "grid", "n_segments": 4, "reference": "black", "score": "logit", "alpha": 0.0}
    exact = xc.get_explainer("lime").run(xc.from_module(CellSum(False), ["a", "b"], input_size=(16, 16), **UNIT), x,
                                         torch.tensor([0]), **kw)
    assert float(exact.uncertainty.max()) < 1e-6
    noisy = xc.get_explainer("lime").run(xc.from_module(CellSum(True), ["a", "b"], input_size=(16, 16), **UNIT), x,
                                         torch.tensor([0]), **kw)
    # A random term in the scores widens every coefficient's bootstrap (it is in the residuals of every sample that
    # keeps cell 3), by orders of magnitude over the exact fit's round-off.
    assert float(noisy.uncertainty.min()) > 0.05


def test_rise_bootstrap_matches_the_standard_error_of_its_mean():
    """For a mean, the bootstrap's standard error tends to std / √n: 16 replicates agree on average within 15%."""
    torch.manual_seed(0)
    model = xc.from_module(TinyCNN(), LABELS, input_size=(32, 32), cam_layer="act2", fc_layer="fc", device="cpu")
    x = model.normalise(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4)))
    n, p = 800, 0.5
    r = xc.get_explainer("rise").run(model, x, TARGET, masks=n, p=p)
    gen = torch.Generator().manual_seed(0)  # the masks RISE drew (see rise_steps)
    grids = (torch.rand((n, 7, 7), generator=gen) < p).float()
    shifts = torch.stack([torch.randint(0, 5, (n,), generator=gen), torch.randint(0, 5, (n,), generator=gen)], 1)
    masks = smooth_masks(grids, shifts, (32, 32))[:, 0]
    black = model.normalise(torch.zeros_like(x))
    probe = torch.softmax(model.module(x * masks[:, None] + black * (1 - masks[:, None])), 1)[:, 1].detach()
    terms = probe[:, None, None] * masks / p
    assert torch.allclose(terms.mean(0), r.maps[0], atol=1e-5)  # the same masks and scores as the explainer's
    analytic = terms.std(0) / n ** 0.5
    ratio = float(r.uncertainty[0].mean() / analytic.mean())
    assert 0.85 < ratio < 1.15, ratio


def test_workbench_stream_gives_explanations_at_image_size_and_releases_the_lock_when_closed():
    model = xc.from_module(TinyCNN(), LABELS, input_size=(32, 32), cam_layer="act2", fc_layer="fc", device="cpu")
    wb = xc.Workbench(model)
    image = np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    request = xc.ExplainRequest.make("rise", 1, {"masks": 1200}, seed=2)
    out = list(wb.explain_stream(image, request))
    assert len(out) >= 3 and all(e.map.shape == e.uncertainty.shape == (40, 56) for e in out)
    assert [e.refinement.text for e in out][-1] == "1,200 of 1,200 masks"
    assert np.array_equal(out[-1].map, wb.explain(image, request).map)
    with anytime.closed(wb.explain_stream(image, request)) as stream:
        first = next(iter(stream))
    assert first.refinement.done < 1200
    got = []

    def other_session() -> None:
        got.append(model.lock.acquire(timeout=5))
        if got[-1]:
            model.lock.release()

    t = threading.Thread(target=other_session)
    t.start()
    t.join()
    assert got == [True]  # closing the stream released the model's lock
    assert list(wb.explain_stream(image, "gradcam"))[0].refinement is None  # a method that does not refine: one map


def test_steps_must_take_the_explainers_own_arguments_plus_previews():
    def fn(model, x, target, *, n: int = 1) -> None:
        """Doc (a reference)."""

    def steps(model, x, target, *, m: int = 1, previews: bool = False):
        yield None

    with pytest.raises(ValueError, match="steps take"):
        xc.ExplainerSpec("bad_steps", "Bad", fn, "x", "s", "r", params=(xc.ParamSpec("n", "int", 1, "N", "n"),),
                         steps=steps)


def test_npz_and_report_carry_the_uncertainty():
    m, u = np.ones((4, 6), np.float32), np.full((4, 6), 0.25, np.float32)
    z = np.load(io.BytesIO(report.maps_npz({"RISE": m, "Grad-CAM": m}, {}, {"RISE": u, "Grad-CAM": None})))
    assert np.array_equal(z["RISE__uncertainty"], u) and "Grad-CAM__uncertainty" not in z.files
    e = xc.Explanation("rise", "RISE", m, 1, "c1", 0.5, 0.1, False, uncertainty=u,
                       refinement=Refinement(400, 2000, "400 of 2,000 masks", anytime.bootstrap_text("masks"),
                                             "stopped early at 400 of 2,000 masks: stable"))
    image = np.zeros((4, 6, 3), np.uint8)
    data = report.explanation_report(xc.from_module(TinyCNN(), LABELS, input_size=(32, 32), device="cpu"), image,
                                     "img", [e])
    assert [p.title for p in data.pictures] == ["Input: img", "RISE", "RISE: uncertainty"]
    assert "bootstrap over the masks" in data.pictures[-1].caption
    assert data.settings["refinement"] == {"RISE": "stopped early at 400 of 2,000 masks: stable"}


def test_a_batch_run_writes_the_uncertainty_of_refining_explainers_beside_their_maps(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "imgs" / "horse").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(tmp_path / "imgs" / "horse" / f"{i}.png")
    out = tmp_path / "run"
    assert batch_main([str(tmp_path / "imgs"), "--out", str(out), "--model", "lab_horse_cnn", "--explainer",
                       "rise:masks=50", "--explainer", "gradient", "--metric", "deletion:steps=4", "--batch-size", "2",
                       "--no-progress"]) == 0
    table = open_run(out).table
    with np.load(out / "maps" / "shard-00000.npz") as z:
        for _, row in table.iterrows():
            assert (f"u{row['map_index']}" in z.files) is (row["explainer"] == "rise")
            if row["explainer"] == "rise":
                u = z[f"u{row['map_index']}"]
                assert u.shape == z[str(row["map_index"])].shape and (u >= 0).all() and u.max() > 0
