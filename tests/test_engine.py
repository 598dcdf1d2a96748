"""The batched engine: OOM back-off, progress and cancellation, and the gradient primitives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import LABELS, SIZE, assert_close_rel, random_image, random_input, tiny_spec
from torch import nn

import xai_core
from xai_core import Cancelled, ExplainerError, engine, get_explainer
from xai_core.hooks import has_hooks
from xai_core.result import TOP1


def _oom_above(limit: int, calls: list[tuple[int, int]]):
    def compute(start: int, stop: int) -> list[int]:
        calls.append((start, stop))
        if stop - start > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [i * i for i in range(start, stop)]

    return compute


def test_chunks_without_trouble():
    calls: list[tuple[int, int]] = []
    out = list(engine.chunks(10, _oom_above(100, calls), batch_size=4))
    assert [(a, b) for a, b, _ in out] == [(0, 4), (4, 8), (8, 10)]
    assert [v for _, _, r in out for v in r] == [i * i for i in range(10)]


def test_chunks_halve_the_batch_on_cuda_oom_and_keep_order():
    calls: list[tuple[int, int]] = []
    out = list(engine.chunks(21, _oom_above(3, calls), batch_size=16))
    sizes = [b - a for a, b in calls]
    assert sizes[:4] == [16, 8, 4, 2]  # halved until it fits
    assert all(s <= 2 for s in sizes[4:])  # and it stays at the size that fits
    assert [v for _, _, r in out for v in r] == [i * i for i in range(21)]
    assert out[0][0] == 0 and out[-1][1] == 21
    assert all(a[1] == b[0] for a, b in zip(out, out[1:], strict=False))


def test_chunks_treat_out_of_memory_runtime_errors_the_same():
    seen = []

    def compute(start, stop):
        seen.append(stop - start)
        if stop - start > 1:
            raise RuntimeError("CUDA error: out of memory")
        return start

    assert [r for _, _, r in engine.chunks(3, compute, batch_size=4)] == [0, 1, 2]
    assert seen[:3] == [3, 2, 1]


def test_chunks_give_up_cleanly_when_one_input_does_not_fit():
    calls: list[tuple[int, int]] = []
    with pytest.raises(ExplainerError, match="Out of memory even with one input per batch") as info:
        list(engine.chunks(5, _oom_above(0, calls), batch_size=4))
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert [b - a for a, b in calls] == [4, 2, 1]


def test_chunks_reraise_other_errors_at_once():
    calls = []

    def compute(start, stop):
        calls.append(stop - start)
        raise ValueError("a real bug")

    with pytest.raises(ValueError, match="a real bug"):
        list(engine.chunks(8, compute, batch_size=8))
    assert calls == [8]


def test_progress_reports_and_cancel_stops_the_run():
    reports: list[tuple[float, str]] = []
    out = list(engine.chunks(10, lambda a, b: b - a, batch_size=3, progress=lambda f, t: reports.append((f, t)),
                             desc="steps"))
    assert len(out) == 4
    assert [f for f, _ in reports] == pytest.approx([0.3, 0.6, 0.9, 1.0])
    assert reports[-1][1] == "steps 10/10"

    computed = []

    def cancel_after_two(fraction, _text):
        if fraction >= 0.4:
            raise Cancelled("Stopped by the user.")

    def compute(a, b):
        computed.append((a, b))
        return b - a

    with pytest.raises(Cancelled):
        list(engine.chunks(10, compute, batch_size=2, progress=cancel_after_two))
    assert computed == [(0, 2), (2, 4)]  # nothing computed after the cancel


def test_cancel_raised_inside_compute_is_not_mistaken_for_oom():
    def compute(a, b):
        raise Cancelled("Stopped by the user.")

    with pytest.raises(Cancelled):
        list(engine.chunks(4, compute, batch_size=4))


class OOMAbove(nn.Module):
    """Wraps a model and raises CUDA OOM for batches larger than ``limit`` (a fake small GPU)."""

    def __init__(self, inner: nn.Module, limit: int) -> None:
        super().__init__()
        self.inner = inner
        self.limit = limit
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(len(x))
        if len(x) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory.")
        return self.inner(x)


@pytest.mark.parametrize("method,params", [("integrated_gradients", {"steps": 12}),
                                           ("smoothgrad", {"samples": 10, "noise": 0.2})])
def test_many_pass_explainers_survive_oom(method, params):
    """IG steps and SmoothGrad samples go through the engine: a smaller batch gives the same map."""
    normal = tiny_spec(seed=3, device="cpu")
    small_gpu = xai_core.from_module(OOMAbove(tiny_spec(seed=3, device="cpu").module, limit=3), LABELS, input_size=SIZE,
                                     cam_layer="inner.act2", fc_layer="inner.fc")
    x = random_input(normal, 2, seed=1)
    target = torch.tensor([0, 4])
    expected = get_explainer(method)(normal, x, target, seed=2, **params)
    got = get_explainer(method)(small_gpu, x, target, seed=2, **params)
    assert max(small_gpu.module.sizes) > 3 and small_gpu.module.sizes[-1] <= 3
    assert_close_rel(got, expected, rel=1e-5)


@pytest.fixture
def mid() -> xai_core.ModelSpec:
    """The tiny CNN at 112×112: the engine's CPU batch there is 32 inputs, so runs take several batches."""
    model = tiny_spec(seed=1, device="cpu")
    return xai_core.from_module(model.module, LABELS, input_size=(112, 112), cam_layer="act2", fc_layer="fc",
                                device="cpu")


def test_cancelling_an_explanation(mid):
    assert engine.batch_size_for(torch.device("cpu"), 112 * 112) < 64
    image = random_image(112, 112)
    reports = []

    def progress(fraction, text):
        reports.append(fraction)
        raise Cancelled("Stopped by the user.")

    with pytest.raises(Cancelled):
        xai_core.explain(mid, image, "integrated_gradients", steps=64, progress=progress)
    assert len(reports) == 1 and reports[0] < 1
    assert not has_hooks(mid.module)
    # The model is usable again straight away (lock released, nothing left behind).
    e = xai_core.explain(mid, image, "integrated_gradients", steps=8)
    assert e.map.shape == (112, 112)
    assert np.isfinite(e.map).all()


def test_progress_of_an_explanation_reaches_one(mid):
    reports = []
    xai_core.explain(mid, random_image(60, 80), "smoothgrad", samples=80, progress=lambda f, t: reports.append((f, t)))
    fractions = [f for f, _ in reports]
    assert len(fractions) >= 2 and fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert all("noisy samples" in t for _, t in reports)


def test_batch_size_and_device_helpers():
    cpu = torch.device("cpu")
    assert engine.batch_size_for(cpu) == engine.CPU_BATCH
    assert engine.batch_size_for(cpu, 32 * 32) > engine.CPU_BATCH
    assert engine.batch_size_for(cpu, 10_000 * 10_000) == 1
    assert engine.batch_size_for(torch.device("cuda")) == engine.GPU_BATCH
    assert engine.device_label("cpu").startswith("CPU")
    assert isinstance(engine.default_device(), torch.device)
    with engine.autocast(cpu):
        assert torch.ones(2).dtype == torch.float32


def test_input_gradients_and_select():
    spec = tiny_spec(seed=0, device="cpu")
    x = random_input(spec, 2)
    target = torch.tensor([1, 2])
    grad, score, fwd = engine.input_gradients(spec.module, x, target)
    assert grad.shape == x.shape and not score.requires_grad
    assert torch.allclose(fwd.logits, engine.logits(spec.module, x)) and torch.equal(fwd.target, target)
    top1 = engine.input_gradients(spec.module, x, torch.tensor([TOP1, 2])).forward.target
    assert top1.tolist() == [int(fwd.logits[0].argmax()), 2]
    assert torch.allclose(score, engine.logits(spec.module, x)[[0, 1], [1, 2]])
    # Finite differences agree with the gradient.
    d = torch.zeros_like(x)
    d[0, 1, 5, 7] = 1e-2
    fd = (engine.select(spec.module(x + d), target) - engine.select(spec.module(x - d), target))[0] / 2e-2
    assert float(fd) == pytest.approx(float(grad[0, 1, 5, 7]), rel=2e-2, abs=1e-6)
    assert engine.logits(spec.module, x).is_inference()


def test_nan_scores_are_a_clear_error():
    class NaNNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.relu = nn.ReLU()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.flat = nn.Flatten()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(self.flat(self.pool(self.relu(self.conv(x))))) * float("nan")

    model = xai_core.from_module(NaNNet(), ["a", "b"], input_size=SIZE, cam_layer="relu", fc_layer="fc")
    with pytest.raises(ExplainerError, match="NaN or infinite scores"):
        get_explainer("gradient")(model, random_input(model), torch.tensor([0]))
    with pytest.raises(ExplainerError, match="NaN or infinite"):
        xai_core.explain(model, random_image(32, 32), "gradient", target=0)
    assert not has_hooks(model.module)
