"""Contracts every registered explainer keeps: shape/dtype, no hooks or parameter changes left behind,
determinism, batched == unbatched, and explain() at the image's own size."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from helpers import SIZE, f32_tol, random_image, random_input, tiny_spec

import xai_core
from xai_core import ExplainerError, get_explainer, list_explainers
from xai_core.hooks import has_hooks

SPECS = list_explainers()
# Every registered explainer with its defaults, plus the parameter choices that take other code paths.
CASES: list[tuple[str, dict[str, Any]]] = [(s.id, {}) for s in SPECS] + [
    ("integrated_gradients", {"baseline": "blurred", "rule": "riemann_middle", "steps": 9}),
    ("integrated_gradients", {"baseline": "noise", "rule": "riemann_trapezoid", "steps": 9}),
    ("smoothgrad", {"base": "integrated_gradients", "samples": 3, "mode": "variance", "reduction": "sum"}),
    ("smoothgrad", {"base": "guided_backprop", "samples": 4, "mode": "squared", "reduction": "l2"}),
    ("gradcam", {"layer": "act1"}),
    ("gradcam_pp", {"layer": "conv2"}),
    ("guided_gradcam", {"layer": "act1", "reduction": "sum_abs"}),
    ("gradient", {"reduction": "l2"}),
]
# Methods whose map is computed from values larger than the map itself: the size of those values.
OPERANDS = {"meaningful_perturbation": 1.0}
IDS = [f"{m}-{'-'.join(f'{k}={v}' for k, v in p.items())}" if p else m for m, p in CASES]


def test_registry_is_complete_and_documented():
    ids = [s.id for s in SPECS]
    assert ids == list(dict.fromkeys(ids)), "duplicate ids"
    expected = {"gradient", "input_x_gradient", "integrated_gradients", "smoothgrad", "guided_backprop", "cam",
                "gradcam", "gradcam_pp", "guided_gradcam"}
    assert expected <= set(ids)
    for s in SPECS:
        assert s.title and s.summary and s.reference and s.fn.__doc__
        assert get_explainer(s.id) is s
        for p in s.params:
            assert p.validate(p.default) == p.default
    assert get_explainer("smoothgrad").stochastic
    assert get_explainer("integrated_gradients").signed and get_explainer("cam").signed
    assert not get_explainer("gradcam").signed


def test_unknown_explainer_and_bad_params_are_clear_errors(tiny):
    with pytest.raises(ExplainerError, match="Unknown explainer 'nope'; available: .*gradcam"):
        get_explainer("nope")
    x, t = random_input(tiny), torch.tensor([0])
    with pytest.raises(ExplainerError, match="has no parameter colour"):
        get_explainer("gradient")(tiny, x, t, colour=1)
    with pytest.raises(ExplainerError, match="Steps must be between 2 and 512; got 1"):
        get_explainer("integrated_gradients")(tiny, x, t, steps=1)
    with pytest.raises(ExplainerError, match="Baseline must be one of black, blurred, noise"):
        get_explainer("integrated_gradients")(tiny, x, t, baseline="white")
    with pytest.raises(ExplainerError, match="is not a valid int"):
        get_explainer("smoothgrad")(tiny, x, t, samples="many")
    with pytest.raises(ExplainerError, match="Class 7 does not exist"):
        xai_core.explain(tiny, random_image(32, 32), "gradient", target=7)
    with pytest.raises(ExplainerError, match="RGB uint8"):
        xai_core.explain(tiny, random_image(32, 32).astype(np.float32), "gradient")
    assert not has_hooks(tiny.module)


def _global_hooks() -> int:
    """Module hooks registered for *all* modules (torch.nn.modules.module.register_module_forward_hook & co)."""
    import torch.nn.modules.module as mm

    names = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks", "_global_backward_pre_hooks")
    return sum(len(getattr(mm, n, {})) for n in names)


def _snapshot(module: torch.nn.Module) -> dict[str, tuple[torch.Tensor, bool]]:
    return {k: (v.detach().clone(), v.requires_grad) for k, v in [*module.named_parameters(), *module.named_buffers()]}


@pytest.mark.parametrize("method,params", CASES, ids=IDS)
def test_explainer_contract(tiny, method, params):
    spec = get_explainer(method)
    x = random_input(tiny, 3, seed=21)
    x_before = x.clone()
    target = torch.tensor([0, 2, 4])
    before = _snapshot(tiny.module)
    if spec.why_not(tiny):  # a method for other architectures (attention on a CNN): a typed refusal, nothing left
        with pytest.raises(ExplainerError, match="needs"):
            spec(tiny, x, target, seed=5, **params)
        assert not has_hooks(tiny.module) and all(torch.equal(v[0], before[k][0]) for k, v in _snapshot(tiny.module).items())
        return

    maps = spec(tiny, x, target, seed=5, **params)

    assert isinstance(maps, torch.Tensor)
    assert maps.shape == (3, *SIZE) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all() and float(maps.abs().max()) > 0
    # Hygiene: no hooks, no parameter or buffer changed, no gradient stored, inputs untouched.
    assert not has_hooks(tiny.module) and not _global_hooks()
    after = _snapshot(tiny.module)
    assert after.keys() == before.keys()
    for k, (v, req) in before.items():
        assert torch.equal(after[k][0], v) and after[k][1] == req, k
    assert all(p.grad is None for p in tiny.module.parameters())
    assert not tiny.module.training
    assert torch.equal(x, x_before) and not x.requires_grad
    # Determinism: same seed, same map.
    assert torch.equal(spec(tiny, x, target, seed=5, **params), maps)
    # Batched == unbatched, to float32 resolution: kernels may add in another order for another batch size (and
    # another CPU's vector width). The values added up are as large as the map, except where the map is a
    # difference from 1 (Meaningful Perturbation's 1 − m, m ∈ [0, 1]: m's round-off at 1.0 is 6e-8 whatever the
    # map's scale, which failed a tolerance of 1e-5 × a map of 2.5e-3 on AVX-512).
    singles = torch.cat([spec(tiny, x[i: i + 1], target[i: i + 1], seed=5, **params) for i in range(3)])
    scale = float(maps.abs().max())
    magnitude = max(scale, OPERANDS.get(method, 0.0))
    assert float((singles - maps).abs().max()) <= f32_tol(magnitude)
    # Samples are explained for their own target: a different target gives a different map (CAM methods on
    # this model could coincide only by accident).
    assert not torch.equal(spec(tiny, x, torch.tensor([1, 1, 1]), seed=5, **params), maps)


@pytest.mark.parametrize("method,params", CASES, ids=IDS)
def test_explain_on_a_non_square_image(tiny, method, params):
    image = random_image(45, 70, seed=3)
    if get_explainer(method).why_not(tiny):  # attention methods on a CNN: refused with the capability sentence
        with pytest.raises(ExplainerError, match=get_explainer(method).why_not(tiny)[:20]):
            xai_core.explain(tiny, image, method, seed=1, **params)
        return
    e = xai_core.explain(tiny, image, method, seed=1, **params)
    assert isinstance(e, xai_core.Explanation)
    assert e.map.shape == (45, 70) and e.map.dtype == np.float32 and np.isfinite(e.map).all()
    assert e.method == method and e.title == get_explainer(method).title
    probs = xai_core.probabilities(tiny, image)
    assert e.target == int(np.argmax(probs)) and e.probability == pytest.approx(float(probs.max()), rel=1e-5)
    assert e.class_name == tiny.labels[e.target]
    assert e.params == get_explainer(method).resolve(params)
    assert e.signed == (get_explainer(method).signed or e.params.get("reduction") == "sum")
    assert e.seconds >= 0
    assert not has_hooks(tiny.module)


def test_explain_with_the_explicit_target_and_seed_is_deterministic(tiny):
    image = random_image(40, 33, seed=4)
    a = xai_core.explain(tiny, image, "smoothgrad", target=3, seed=9, samples=6)
    b = xai_core.explain(tiny, image, "smoothgrad", target=3, seed=9, samples=6)
    c = xai_core.explain(tiny, image, "smoothgrad", target=3, seed=10, samples=6)
    assert a.target == 3 and np.array_equal(a.map, b.map) and not np.array_equal(a.map, c.map)


def test_hooks_are_removed_when_an_explainer_raises():
    class Boom(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    spec = tiny_spec(seed=0, device="cpu")
    spec.module.add_module("after", Boom())
    original = spec.module.forward
    spec.module.forward = lambda x: spec.module.after(original(x))  # type: ignore[method-assign]
    x, t = random_input(spec), torch.tensor([0])
    for method in ("gradient", "guided_backprop", "cam", "gradcam", "gradcam_pp", "guided_gradcam"):
        with pytest.raises(RuntimeError, match="boom"):
            get_explainer(method)(spec, x, t)
        assert not has_hooks(spec.module), method


def test_predict_and_probabilities(tiny):
    image = random_image(50, 20, seed=1)
    probs = xai_core.probabilities(tiny, image)
    assert probs.shape == (tiny.num_classes,) and probs.sum() == pytest.approx(1.0, abs=1e-5)
    preds = xai_core.predict(tiny, image, k=3)
    assert [p.index for p in preds] == list(np.argsort(-probs)[:3])
    assert all(p.label == tiny.labels[p.index] for p in preds)
    assert preds[0].probability >= preds[1].probability >= preds[2].probability
