"""Agreement with the reference implementations (test-only oracles): Captum and pytorch-grad-cam.

Where both define a method the same way the maps must agree exactly (allclose) or, where the
oracle post-processes (pytorch-grad-cam min-max normalises and cv2-resizes), in rank (Spearman ≥ 0.99).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from captum.attr import GuidedBackprop, InputXGradient, IntegratedGradients, Saliency
from helpers import SIZE, assert_close_rel, minmax, random_input, spearman, tiny_spec
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import xai_core
from xai_core import get_explainer
from xai_core.explainers.common import reference_input as baseline_for
from xai_core.hooks import has_hooks

TARGET = torch.tensor([1, 3, 0])


def _tiny(inplace: bool = False) -> xai_core.ModelSpec:
    """The tiny CNN with a larger head: gradients at the CAM layer are ~1e-2 rather than ~1e-4.

    Grad-CAM++ divides by 2g² + ΣA·g³ plus a small absolute epsilon (1e-7 here, 1e-6 in
    pytorch-grad-cam); with gradients of ~1e-4 the epsilon dominates and the two implementations
    (and the closed form) drift apart. With realistic gradient sizes both are the closed form.
    """
    spec = tiny_spec(seed=4, inplace=inplace, device="cpu")
    spec.module.fc.weight.data.mul_(40.0)
    return spec


@pytest.fixture(scope="module")
def model() -> xai_core.ModelSpec:
    return _tiny()


@pytest.fixture(scope="module")
def x(model) -> torch.Tensor:
    return random_input(model, 3, seed=8)


def _captum(algo, module, x, **kw) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = algo(module).attribute(x.clone(), **kw)
    assert not has_hooks(module)
    return out.detach()


def _grad_cam_oracle(cls, module, layer, x, target) -> np.ndarray:
    """pytorch-grad-cam's map; the input requires grad because our model's weights are frozen."""
    with cls(model=module, target_layers=[layer]) as cam:
        out = cam(input_tensor=x.clone().requires_grad_(True), targets=[ClassifierOutputTarget(int(t)) for t in target])
    assert not has_hooks(module)
    return out


# --------------------------------------------------------------------------------------------
# gradient family vs Captum, on the tiny model


def test_gradient_matches_captum_saliency(model, x):
    ours = get_explainer("gradient")(model, x, TARGET)
    ref = _captum(Saliency, model.module, x, target=TARGET, abs=True).amax(dim=1)
    assert_close_rel(ours, ref, rel=1e-6)


def test_input_x_gradient_matches_captum(model, x):
    ours = get_explainer("input_x_gradient")(model, x, TARGET)
    ref = _captum(InputXGradient, model.module, x, target=TARGET).sum(dim=1)
    assert_close_rel(ours, ref, rel=1e-5)
    assert_close_rel(get_explainer("input_x_gradient").attribute(model, x, TARGET).values,
                     _captum(InputXGradient, model.module, x, target=TARGET), rel=1e-5)


@pytest.mark.parametrize("baseline", ["black", "blurred"])
@pytest.mark.parametrize("rule,steps", [("gausslegendre", 20), ("riemann_trapezoid", 24)])
def test_integrated_gradients_matches_captum(model, x, baseline, rule, steps):
    ours = get_explainer("integrated_gradients").attribute(model, x, TARGET, steps=steps, baseline=baseline, rule=rule).values
    x0 = baseline_for(model, x, baseline, 0)
    ref = _captum(IntegratedGradients, model.module, x, target=TARGET, baselines=x0, n_steps=steps, method=rule)
    if rule == "riemann_trapezoid":
        # Captum's trapezoid weights are 1/n with halved ends: they sum to (n-1)/n, not 1 (ours sum to 1,
        # the textbook trapezoid rule). Same nodes, so the results differ by exactly that factor.
        ref = ref * steps / (steps - 1)
    assert_close_rel(ours, ref, rel=1e-5)
    assert_close_rel(get_explainer("integrated_gradients")(model, x, TARGET, steps=steps, baseline=baseline, rule=rule),
                     ref.sum(dim=1), rel=1e-5)


@pytest.mark.parametrize("inplace", [False, True], ids=["relu", "relu_inplace"])
def test_guided_backprop_matches_captum_on_relu(x, inplace):
    ours_model = _tiny(inplace=inplace)
    ours = get_explainer("guided_backprop").attribute(ours_model, x, TARGET).values
    ref = _captum(GuidedBackprop, ours_model.module, x, target=TARGET)
    assert_close_rel(ours, ref, rel=1e-5)
    # Same weights without inplace: the same answer (inplace activations change nothing).
    assert_close_rel(ours, _captum(GuidedBackprop, _tiny(inplace=False).module, x, target=TARGET), rel=1e-5)
    plain = get_explainer("gradient").attribute(ours_model, x, TARGET).values
    assert not torch.allclose(ours, plain, rtol=1e-3, atol=1e-6), "guided rule had no effect"
    assert_close_rel(get_explainer("guided_backprop")(ours_model, x, TARGET), ref.abs().amax(1), rel=1e-5)


# --------------------------------------------------------------------------------------------
# CAM family vs pytorch-grad-cam, on the tiny model


@pytest.mark.parametrize("method,oracle", [("gradcam", GradCAM), ("gradcam_pp", GradCAMPlusPlus)])
def test_cam_methods_match_pytorch_grad_cam(model, x, method, oracle):
    ours = get_explainer(method)(model, x, TARGET)
    ref = _grad_cam_oracle(oracle, model.module, model.module.act2, x, TARGET)
    assert ref.shape == ours.shape
    for o, r in zip(ours, ref, strict=True):
        assert float(o.max()) > 0
        assert spearman(o, r) >= 0.99
        assert np.allclose(minmax(o), r, atol=0.02)


@pytest.mark.parametrize("method,oracle", [("gradcam", GradCAM), ("gradcam_pp", GradCAMPlusPlus)])
def test_cam_methods_match_pytorch_grad_cam_at_layer_resolution(method, oracle):
    """With the model's input size set to the layer's resolution no resize is involved: exact agreement."""
    base = _tiny()
    layer_res = xai_core.from_module(base.module, base.labels, input_size=(SIZE[0] // 2, SIZE[1] // 2),
                                     cam_layer="act2", fc_layer="fc", device="cpu")
    x = random_input(base, 3, seed=8)
    ours = get_explainer(method)(layer_res, x, TARGET)
    with oracle(model=base.module, target_layers=[base.module.act2]) as cam:
        cam(input_tensor=x.clone().requires_grad_(True), targets=[ClassifierOutputTarget(int(t)) for t in TARGET])
        # The raw per-layer map before scaling/resizing: reproduce its (documented) pipeline in numpy.
        acts = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy()
        raw = cam.get_cam_image(x, base.module.act2, [ClassifierOutputTarget(int(t)) for t in TARGET], acts, grads)
    # Grad-CAM: exact. Grad-CAM++: the epsilons differ (1e-7 vs 1e-6 added to ~1e-4 denominators).
    assert_close_rel(ours, torch.from_numpy(np.maximum(raw, 0)), rel=1e-4 if method == "gradcam" else 1e-2)


# --------------------------------------------------------------------------------------------
# the real bundled EfficientNet-Lite0


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["_conv_head", "_bn1"])
def test_gradcam_on_bundled_model_matches_pytorch_grad_cam(lite0, chelsea_x, layer):
    target = torch.tensor([285])  # Egyptian cat
    ours = get_explainer("gradcam")(lite0, chelsea_x, target, layer=layer)
    ref = _grad_cam_oracle(GradCAM, lite0.module, lite0.module.get_submodule(layer), chelsea_x, target)
    assert ours.shape == (1, 224, 224) and torch.isfinite(ours).all() and float(ours.max()) > 0
    assert spearman(ours[0], ref[0]) >= 0.99
    assert np.allclose(minmax(ours[0]), ref[0], atol=0.03)


@pytest.mark.slow
def test_gradcam_pp_on_bundled_model_matches_pytorch_grad_cam(lite0, chelsea_x):
    target = torch.tensor([285])
    ours = get_explainer("gradcam_pp")(lite0, chelsea_x, target, layer="_conv_head")
    ref = _grad_cam_oracle(GradCAMPlusPlus, lite0.module, lite0.module._conv_head, chelsea_x, target)
    assert spearman(ours[0], ref[0]) >= 0.99


@pytest.mark.slow
def test_gradcam_default_layer_on_bundled_model_is_the_last_feature_map(lite0, chelsea_x):
    """The default CAM layer (`_swish`) is also called on the stem; the head call is the one used."""
    target = torch.tensor([285])
    default = get_explainer("gradcam")(lite0, chelsea_x, target)
    feats = lite0.module.extract_features(chelsea_x)
    assert feats.shape[-2:] == (7, 7)
    # Grad-CAM on the head's ReLU6 output, computed by hand.
    with torch.enable_grad():
        f = feats.detach().requires_grad_(True)
        pooled = torch.nn.functional.adaptive_avg_pool2d(f, 1).flatten(1)
        score = lite0.module._fc(pooled)[0, 285]
        (g,) = torch.autograd.grad(score, f)
    ref = torch.relu((g.mean(dim=(2, 3), keepdim=True) * f).sum(1))
    ref = torch.nn.functional.interpolate(ref[:, None], size=(224, 224), mode="bilinear", align_corners=False)[:, 0]
    assert_close_rel(default, ref, rel=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_trapezoid"])
def test_integrated_gradients_on_bundled_model_matches_captum(lite0, chelsea_x, rule):
    steps = 8
    target = torch.tensor([285])
    spec = get_explainer("integrated_gradients")
    result = spec.attribute(lite0, chelsea_x, target, steps=steps, baseline="black", rule=rule)
    ours = result.values
    x0 = baseline_for(lite0, chelsea_x, "black", 0)
    ref = _captum(IntegratedGradients, lite0.module, chelsea_x, target=target, baselines=x0, n_steps=steps, method=rule,
                  internal_batch_size=steps)
    if rule == "riemann_trapezoid":
        ref = ref * steps / (steps - 1)
    assert spearman(ours.sum(1), ref.sum(1)) >= 0.99
    # Equal up to float32 rounding of the path points (torch vs numpy linspace), which can flip a
    # ReLU6 kink for a handful of pixels: tiny in norm, below 1 % of the peak everywhere.
    assert float((ours - ref).norm() / ref.norm()) < 1e-3
    assert_close_rel(ours, ref, rel=1e-2)
    assert np.isfinite(result.diagnostics["completeness_gap"][0])
