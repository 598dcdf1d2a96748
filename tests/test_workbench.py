"""The Workbench pipeline, requests as values, and run options that belong to a session, not the process."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from helpers import random_image, tiny_spec

import xai_core
from xai_core import ExplainerError, ExplainRequest, RunOptions, Workbench, XaiError, get_explainer, list_explainers, options
from xai_core.hooks import has_hooks


class Counting(torch.nn.Module):
    """Wraps a module and counts its forward calls (the Python module, so the frozen graph must be off)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)


def counting_spec() -> xai_core.ModelSpec:
    tiny = tiny_spec(device="cpu")
    return xai_core.from_module(Counting(tiny.module), tiny.labels, input_size=tiny.input_size, cam_layer="inner.act2",
                                fc_layer="inner.fc", device="cpu")


@pytest.mark.parametrize("target", [None, 3])
def test_gradcam_costs_one_forward_and_reports_the_class_from_it(target):
    spec = counting_spec()
    wb = Workbench(spec, RunOptions(freeze=False))
    image = random_image(40, 30, seed=2)
    e = wb.explain(image, ExplainRequest.make("gradcam", target))
    assert spec.module.calls == 1  # no separate forward for the target or the probability
    probs = wb.probabilities(image)
    assert e.target == (int(probs.argmax()) if target is None else target)
    assert e.probability == pytest.approx(float(probs[e.target]), rel=1e-5)


def test_every_explainer_that_says_it_reports_logits_does_and_costs_no_extra_forward():
    image = random_image(32, 32, seed=5)
    reporting = [s for s in list_explainers() if s.reports_logits]
    assert {"gradcam", "gradient", "lrp", "guided_backprop", "cam"} <= {s.id for s in reporting}
    for s in list_explainers():
        spec = counting_spec()
        if s.why_not(spec):  # attention methods: not for this CNN (their own tests count their passes)
            continue
        wb = Workbench(spec, RunOptions(freeze=False))
        plain = Workbench(tiny_spec(device="cpu"))
        e = wb.explain(image, ExplainRequest.make(s.id, params={"masks": 50} if s.id == "rise" else {}))
        assert e.target == int(plain.probabilities(image).argmax()), s.id
        if s.reports_logits and not (s.cost.per or s.cost.count):  # a fixed number of passes: exactly those
            assert spec.module.calls == s.cost.forward, s.id
        assert not has_hooks(spec.module)


def test_requests_are_normalised_values():
    a = ExplainRequest.make("integrated_gradients")
    b = ExplainRequest.make("integrated_gradients", None, {"steps": 50.0, "baseline": "black"}, 0)
    assert a == b and a.key == b.key and hash(a) == hash(b)
    assert ExplainRequest.make("smoothgrad", params={"noise": 0.15}).key == \
        ExplainRequest.make("smoothgrad", params={"noise": np.float64(0.15)}).key
    assert ExplainRequest.make("smoothgrad", params={"noise": 1}).key == ExplainRequest.make("smoothgrad", params={
        "noise": 1.0}).key
    assert a.key != ExplainRequest.make("integrated_gradients", 2).key != a.with_target(3).key
    assert a.key != ExplainRequest.make("integrated_gradients", seed=1).key
    assert '"steps",50]' in a.key and '{"f":"0.15"}' in ExplainRequest.make("smoothgrad").key
    with pytest.raises(ExplainerError, match="Steps must be between"):
        ExplainRequest.make("integrated_gradients", params={"steps": 1})
    with pytest.raises(ExplainerError, match="not a valid int"):
        ExplainRequest.make("integrated_gradients", params={"steps": 2.5})
    with pytest.raises(ExplainerError, match="class index"):
        ExplainRequest.make("gradcam", -1)
    with pytest.raises(ExplainerError, match="seed"):
        ExplainRequest.make("gradcam", seed=-3)
    with pytest.raises(ExplainerError, match="Unknown explainer"):
        ExplainRequest.make("nope")
    with pytest.raises(AttributeError):
        a.seed = 3  # type: ignore[misc]


def test_explanations_carry_declared_typed_diagnostics(tiny):
    image = random_image(32, 32, seed=1)
    e = Workbench(tiny).explain(image, ExplainRequest.make("integrated_gradients", params={"steps": 8}))
    gap = e.diagnostics["completeness_gap"]
    assert gap.spec is get_explainer("integrated_gradients").diagnostic("completeness_gap")
    assert isinstance(gap.value, float) and gap.text == f"completeness gap {gap.value:.1%}"
    assert [d.spec.name for d in e.shown("caption")] == ["completeness_gap"]
    assert e.request == ExplainRequest.make("integrated_gradients", params={"steps": 8})
    for s in list_explainers():  # names are unique and every way of showing is one the UI knows
        assert all(d.show in ("caption", "notice", "image", "segments", "data") for d in s.diagnostics)
        assert all(s.diagnostic(d.weights) for d in s.diagnostics if d.show == "segments")


def test_costs_are_data():
    assert get_explainer("rise").passes({"masks": 500}) == 500
    assert get_explainer("integrated_gradients").passes({"steps": 10}) == 20
    assert get_explainer("occlusion").passes({"window": 16, "stride": 8}, (32, 32)) == 9
    assert get_explainer("smoothgrad").passes({"samples": 4, "base": "integrated_gradients", "base_steps": 5}) == 40
    assert get_explainer("scorecam").passes() == float("inf") and get_explainer("scorecam").passes({"channels": 7}) == 7
    assert get_explainer("gradcam").cost.text() == "1 forward + partial backward"
    cheap = {s.id for s in list_explainers(max_passes=2)}
    assert {"gradcam", "gradient", "lrp", "cam"} <= cheap and not {"rise", "integrated_gradients"} & cheap


def test_run_options_are_values_and_validated():
    assert RunOptions() == RunOptions(False, True, False, 60.0) and hash(RunOptions()) == hash(RunOptions())
    assert RunOptions(time_budget=5).time_budget == 5.0
    with pytest.raises(XaiError, match="time budget"):
        RunOptions(time_budget=0)
    assert RunOptions(bf16=True).result_key != RunOptions().result_key == RunOptions(compile=True).result_key


def test_workbenches_share_the_models_lock_and_keep_their_options(tiny):
    a = Workbench(tiny, RunOptions(time_budget=5))
    b = a.with_options(RunOptions(compile=True))
    assert a.lock is b.lock is tiny.lock and a.model is b.model
    assert a.options.time_budget == 5 and b.options.compile and not a.options.compile
    with pytest.raises(ExplainerError, match="ModelSpec"):
        Workbench("efficientnet_lite0")  # type: ignore[arg-type]


class Recording(torch.nn.Module):
    """Records the run options current in every forward pass, per calling thread."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.seen: list[tuple[str, RunOptions]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((threading.current_thread().name, options.current()))
        return self.inner(x)


def test_two_sessions_on_one_model_each_see_their_own_options_during_a_run():
    tiny = tiny_spec(device="cpu")
    spec = xai_core.from_module(Recording(tiny.module), tiny.labels, input_size=tiny.input_size, device="cpu")
    mine = {"fast": RunOptions(freeze=False, time_budget=1.0), "slow": RunOptions(freeze=False, time_budget=99.0)}
    image = random_image(32, 32, seed=3)
    errors: list[BaseException] = []
    inherited: list[RunOptions] = []

    def session(name: str) -> None:
        try:
            wb = Workbench(spec, mine[name])
            for _ in range(10):
                wb.predict(image)
                wb.explain(image, ExplainRequest.make("occlusion", params={"window": 8, "stride": 8}))
                if name == "fast":  # a thread started during a run starts with the defaults, not this session's
                    def child() -> None:
                        inherited.append(options.current())
                    with wb.session():
                        t = threading.Thread(target=child)
                        t.start()
                        t.join()
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=session, args=(n,), name=n) for n in mine]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert {n for n, _ in spec.module.seen} == set(mine)
    assert all(opts == mine[n] for n, opts in spec.module.seen)
    assert inherited and all(o == RunOptions() for o in inherited)
    assert options.current() == RunOptions()  # nothing leaked into this thread either
