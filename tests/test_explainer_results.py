"""Explainers return what they know as values: maps, resolved targets, the logits of their first forward on the
input itself, and only the diagnostics they declare, one per sample. Every function takes exactly its parameters:
a mistyped one is an error, never ignored."""

from __future__ import annotations

import re

import pytest
import torch
from helpers import random_image, random_input, tiny_spec
from torchvision.models import VisionTransformer

import xai_core
from xai_core import ExplainerError, ExplainRequest, RunOptions, Workbench, get_explainer, list_explainers, options
from xai_core.models.own import wrap
from xai_core.registry import ExplainerSpec
from xai_core.result import TOP1, Attribution, ExplainerResult

SPECS = list_explainers()
IDS = [s.id for s in SPECS]
# Small settings that keep every method quick on a 32×32 tiny CNN (still its own code path).
FAST = {"rise": {"masks": 50}, "lime": {"samples": 50}, "kernel_shap": {"samples": 50},
        "meaningful_perturbation": {"iterations": 10}, "integrated_gradients": {"steps": 4},
        "smoothgrad": {"samples": 2}, "occlusion": {"window": 8, "stride": 8}}


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_a_mistyped_parameter_is_an_error_naming_it(tiny, spec):
    x, t = random_input(tiny, 1), torch.tensor([0])
    with pytest.raises(ExplainerError, match=re.escape(f"{spec.title} has no parameter step;")):
        spec(tiny, x, t, step=5)
    with pytest.raises(ExplainerError, match="has no parameter extras"):
        spec.run(tiny, x, t, extras={})
    if spec.per_channel:
        with pytest.raises(ExplainerError, match="has no parameter step"):
            spec.attribute(tiny, x, t, step=5)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_result_carries_declared_diagnostics_and_its_first_forward(tiny, spec):
    if spec.why_not(tiny):
        pytest.skip(spec.why_not(tiny))
    x = random_input(tiny, 2, seed=7)
    params = FAST.get(spec.id, {})
    result = spec.run(tiny, x, torch.tensor([1, 3]), seed=1, **params)
    assert isinstance(result, ExplainerResult) and result.maps.shape == (2, *x.shape[-2:])
    assert result.target.tolist() == [1, 3]
    declared = {d.name for d in spec.diagnostics}
    assert set(result.diagnostics) <= declared
    assert all(len(v) == 2 for v in result.diagnostics.values())
    with torch.no_grad():
        z = tiny.module(x)
    if result.logits is not None:  # the logits of the explained input itself, not of a perturbed copy
        torch.testing.assert_close(result.logits, z, rtol=1e-4, atol=1e-5)
    if spec.reports_logits:  # and such a method decides the top-1 class from that very pass
        assert result.logits is not None
        top = spec.run(tiny, x, torch.tensor([TOP1, 3]), seed=1, **params)
        assert top.target.tolist() == [int(z[0].argmax()), 3]
        torch.testing.assert_close(top.maps[1], result.maps[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(spec(tiny, x, torch.tensor([1, 3]), seed=1, **params), result.maps)


class Counting(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_the_workbench_adds_a_forward_only_when_the_explainer_returned_no_logits(spec):
    tiny = tiny_spec(device="cpu")
    counting = xai_core.from_module(Counting(tiny.module), tiny.labels, input_size=tiny.input_size,
                                    cam_layer="inner.act2", fc_layer="inner.fc", device="cpu")
    if spec.why_not(counting):
        pytest.skip(spec.why_not(counting))
    opts = RunOptions(freeze=False, time_budget=600)  # the eager module, so that every forward is counted
    request = ExplainRequest.make(spec.id, 2, FAST.get(spec.id, {}), seed=1)
    x = counting.preprocess(random_image(32, 32, seed=4))
    with options.using(opts):
        spec.run(counting, x, torch.tensor([2]), seed=1, **request.kwargs)  # warm-up: times a pass for budgets
        counting.module.calls = 0
        result = spec.run(counting, x, torch.tensor([2]), seed=1, **request.kwargs)
    alone = counting.module.calls
    counting.module.calls = 0
    run = Workbench(counting, opts).explain_tensor(x, [2], request)
    assert counting.module.calls == alone + (result.logits is None), spec.id
    assert run.targets == [2] and set(run.diagnostics) == set(result.diagnostics)
    with torch.no_grad():
        expected = torch.softmax(tiny.module(x), 1)
    torch.testing.assert_close(run.probabilities, expected, rtol=1e-4, atol=1e-6)


def test_sign_is_spec_metadata_given_the_parameters():
    sg = get_explainer("smoothgrad")
    assert sg.signed_for({"reduction": "sum"}) and not sg.signed_for({"reduction": "max_abs"}) and not sg.signed_for()
    assert get_explainer("integrated_gradients").signed_for() and not get_explainer("gradcam").signed_for()
    image = random_image(32, 32, seed=2)
    e = xai_core.explain(tiny_spec(device="cpu"), image, "smoothgrad", samples=2, reduction="sum")
    assert e.signed and not xai_core.explain(tiny_spec(device="cpu"), image, "smoothgrad", samples=2).signed


def _spec(fn, **meta) -> ExplainerSpec:
    return ExplainerSpec(id="probe", title="Probe", fn=fn, family="test", summary="s", reference="r", **meta)


def test_registration_refuses_catch_alls_and_undeclared_parameters():
    def catch_all(model, x, target, **_):
        """Doc."""

    def undeclared(model, x, target, *, steps=3):
        """Doc."""

    def other_default(model, x, target, *, steps=3):
        """Doc."""

    with pytest.raises(ValueError, match=r"\*\*kwargs"):
        _spec(catch_all)
    with pytest.raises(ValueError, match="steps are declared or taken, not both"):
        _spec(undeclared)
    with pytest.raises(ValueError, match="default differs"):
        _spec(other_default, params=(xai_core.ParamSpec("steps", "int", 4, "Steps"),))


def test_an_undeclared_diagnostic_or_a_missing_first_forward_is_a_programming_error(tiny):
    def chatty(model, x, target):
        """Reports a value it never declared."""
        return ExplainerResult(torch.zeros(len(x), 4, 4), target, None, {"secret": [1] * len(x)})

    def short(model, x, target):
        """Reports one value for a batch of two."""
        return ExplainerResult(torch.zeros(len(x), 4, 4), target, None, {"secret": [1]})

    def silent(model, x, target):
        """Claims to report its first forward but returns no logits."""
        return ExplainerResult(torch.zeros(len(x), 4, 4), target)

    def per_channel(model, x, target):
        """Returns per-channel values where maps are expected."""
        return Attribution(torch.zeros_like(x), target)

    x, t = random_input(tiny, 2), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="undeclared diagnostics secret"):
        _spec(chatty).run(tiny, x, t)
    with pytest.raises(ValueError, match="secret need one value per input"):
        _spec(short, diagnostics=(xai_core.Diagnostic("secret", "Secret"),)).run(tiny, x, t)
    with pytest.raises(ValueError, match="returned no logits"):
        _spec(silent, reports_logits=True).run(tiny, x, t)
    with pytest.raises(ValueError, match="not an ExplainerResult"):
        _spec(per_channel).run(tiny, x, t)


@pytest.mark.parametrize("method", ["attention_rollout", "chefer", "legrad"])
def test_attention_methods_return_their_first_forward_and_resolve_top1(method):
    torch.manual_seed(0)
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
                            num_classes=5).eval()
    torch.nn.init.normal_(vit.heads.head.weight, std=0.5)
    spec = wrap(vit, id="tv_vit", title="tiny ViT", labels=list("abcde"), input_size=(32, 32), device="cpu")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        z = vit(x)
    result = get_explainer(method).run(spec, x, torch.tensor([TOP1, 4]))
    torch.testing.assert_close(result.logits, z, rtol=1e-4, atol=1e-5)
    assert result.target.tolist() == [int(z[0].argmax()), 4] and result.maps.shape == (2, 32, 32)
