"""Per-explainer property tests on small models whose correct answer is known by construction."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from captum.attr import GuidedBackprop as CaptumGuidedBackprop
from helpers import (
    FAN_IN,
    LABELS,
    MLP,
    PATCH_COLS,
    PATCH_ROWS,
    SIZE,
    HiddenHeadCNN,
    ReLU6Net,
    SmoothCNN,
    assert_clean_error,
    assert_close_f32,
    random_image,
    random_input,
    seeded,
)
from torch import nn

import xai_core
from xai_core import ExplainerError, get_explainer, list_explainers
from xai_core.engine import select
from xai_core.explainers.common import reference_input as baseline_for
from xai_core.explainers.integrated_gradients import nodes

# --------------------------------------------------------------------------------------------
# Integrated Gradients: completeness


@pytest.fixture(scope="module")
def smooth() -> xai_core.ModelSpec:
    """A smooth but clearly non-linear model: 2 integration steps are visibly wrong on it."""
    seeded(0)
    module = SmoothCNN()
    with torch.no_grad():
        module.conv1.weight.mul_(6)
        module.conv2.weight.mul_(4)
        module.fc.weight.mul_(4)
    return xai_core.from_module(module, LABELS, input_size=SIZE, cam_layer="act2", fc_layer="fc", device="cpu")


def _score(model: xai_core.ModelSpec, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return select(model.module(x), target)


def _completeness_gap(model, x, target, baseline_input, attr) -> torch.Tensor:
    delta = _score(model, x, target) - _score(model, baseline_input, target)
    assert (delta.abs() > 0.05).all(), "score difference too small for a meaningful relative check"
    return (attr.sum(dim=(1, 2, 3)) - delta).abs() / delta.abs()


def test_ig_baselines_are_what_they_claim(smooth):
    x = random_input(smooth, 2, seed=1)
    black = baseline_for(smooth, x, "black", 0)
    assert torch.allclose(smooth.denormalise(black), torch.zeros_like(x), atol=1e-6)
    blurred01 = smooth.denormalise(baseline_for(smooth, x, "blurred", 0))
    x01 = smooth.denormalise(x)
    # A blur keeps the mean colour but removes high-frequency detail.
    assert torch.allclose(blurred01.mean(dim=(2, 3)), x01.mean(dim=(2, 3)), atol=0.05)
    tv = lambda t: (t[..., 1:, :] - t[..., :-1, :]).abs().mean() + (t[..., :, 1:] - t[..., :, :-1]).abs().mean()  # noqa: E731
    assert tv(blurred01) < 0.5 * tv(x01)
    a, b = baseline_for(smooth, x, "noise", 3), baseline_for(smooth, x, "noise", 3)
    assert torch.equal(a, b) and not torch.equal(a, baseline_for(smooth, x, "noise", 4))


@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_trapezoid", "riemann_middle"])
def test_ig_quadrature_weights_sum_to_one(rule):
    for steps in (2, 7, 50):
        alphas, weights = nodes(steps, rule)
        assert alphas.shape == weights.shape == (steps,)
        assert float(weights.sum()) == pytest.approx(1.0, abs=1e-6)
        assert float(alphas.min()) >= 0 and float(alphas.max()) <= 1


@pytest.mark.parametrize("baseline", ["black", "blurred"])
@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_trapezoid"])
def test_ig_completeness_within_one_percent(smooth, baseline, rule):
    x = random_input(smooth, 2, seed=1)
    target = torch.tensor([1, 3])
    spec = get_explainer("integrated_gradients")
    result = spec.attribute(smooth, x, target, steps=64, baseline=baseline, rule=rule)
    attr = result.values
    x0 = baseline_for(smooth, x, baseline, 0)
    gap = _completeness_gap(smooth, x, target, x0, attr)
    assert (gap < 0.01).all(), f"completeness gap {gap.tolist()}"
    assert np.allclose(result.diagnostics["completeness_gap"], gap.numpy(), atol=1e-4)
    # The check is not vacuous: with 2 steps the trapezoid rule misses by far more than 1 %.
    coarse = spec.attribute(smooth, x, target, steps=2, baseline=baseline, rule="riemann_trapezoid").values
    assert (_completeness_gap(smooth, x, target, x0, coarse) > 0.01).any()


@pytest.mark.parametrize("baseline", ["black", "blurred"])
def test_explain_reports_ig_completeness_gap(smooth, baseline):
    image = random_image(40, 56, seed=2)
    x = smooth.preprocess(image)
    x0 = baseline_for(smooth, x, baseline, 0)
    with torch.no_grad():  # the class whose score moves most along the path: a well-conditioned ratio
        cls = int((smooth.module(x) - smooth.module(x0)).abs().argmax())
    e = xai_core.explain(smooth, image, "integrated_gradients", target=cls, steps=64, baseline=baseline)
    assert e.target == cls
    target = torch.tensor([cls])
    attr = get_explainer("integrated_gradients").attribute(smooth, x, target, steps=64, baseline=baseline).values
    mine = _completeness_gap(smooth, x, target, baseline_for(smooth, x, baseline, 0), attr)
    assert isinstance(e.value("completeness_gap"), float)
    assert e.value("completeness_gap") == pytest.approx(float(mine[0]), abs=1e-4)
    assert e.value("completeness_gap") < 0.01
    assert e.diagnostics["completeness_gap"].text.startswith("completeness gap ")
    delta = _score(smooth, x, target) - _score(smooth, baseline_for(smooth, x, baseline, 0), target)
    assert e.value("score_difference") == pytest.approx(float(delta[0]), rel=1e-4, abs=1e-6)
    assert e.map.shape == image.shape[:2] and e.signed


# --------------------------------------------------------------------------------------------
# Planted patch: the model sees only one patch, so every map must peak inside it


# Perturbation methods see the patch through windows, masks or superpixels: settings that fit a 32×32
# input, and the margin (px) one window / grid cell adds around the patch.
PERTURBATION: dict[str, tuple[dict, int]] = {
    "occlusion": ({"window": 4, "stride": 2}, 4),
    "rise": ({"masks": 1500, "cells": 6}, 6),
    "lime": ({"segmentation": "grid", "n_segments": 64, "samples": 600}, 4),
    "kernel_shap": ({"segmentation": "grid", "n_segments": 64, "samples": 600}, 4),
    "scorecam": ({}, 1),
    "meaningful_perturbation": ({"grid": 28}, 0),  # ~1 px cells at 32×32 (its default of 14 is sized for 224)
    "xrai": ({}, 5),  # whole regions: its top one is a segment dilated by a 5 px disk (measured: the patch + 3 px)
}


@pytest.mark.parametrize("spec", list_explainers(), ids=lambda s: s.id)
def test_every_explainer_finds_the_planted_patch(planted, spec):
    x = random_input(planted, 2, seed=5)
    if spec.why_not(planted):  # attention methods: a CNN has no attention (tests/test_transformer_explainers.py)
        with pytest.raises(ExplainerError):
            spec(planted, x, torch.zeros(2, dtype=torch.long))
        return
    params, blur = PERTURBATION.get(spec.id, ({}, 0))
    if blur:  # probability-based: explain the class whose probability rises with the patch (see test_blackbox)
        with torch.no_grad():
            target = planted.module(x).argmax(1)
        assert (target == 1).all()
    else:
        target = torch.zeros(2, dtype=torch.long)
    maps = spec(planted, x, target, seed=0, **params)
    assert maps.shape == (2, *SIZE)
    margin = 2 + blur  # conv3x3 receptive field + bilinear CAM upsampling (+ one window / cell / mask cell)
    r0, r1 = PATCH_ROWS.start - margin, PATCH_ROWS.stop - 1 + margin
    c0, c1 = PATCH_COLS.start - margin, PATCH_COLS.stop - 1 + margin
    for m in maps:
        assert float(m.abs().max()) > 0, f"{spec.id} gave an all-zero map"
        r, c = divmod(int(m.argmax()), SIZE[1])
        assert r0 <= r <= r1 and c0 <= c <= c1, f"{spec.id}: peak at ({r}, {c}), patch rows {PATCH_ROWS} cols {PATCH_COLS}"
        # Nothing far from the patch gets any attribution: the model cannot see it. (RISE's masks are smooth
        # random fields, so pixels far away still collect noise: it only has to peak in the patch; the
        # regressions of LIME / KernelSHAP leave round-off of the order of 1e-7 on cells the model ignores.)
        if spec.id != "rise":
            outside = m.clone()
            outside[max(r0, 0): r1 + 1, max(c0, 0): c1 + 1] = 0
            tol = 1e-2 if spec.id in ("lime", "kernel_shap") else 1e-6  # ~1e-3 seen: float32 weighted regressions
            assert float(outside.abs().max()) <= tol * float(m.abs().max())


def test_planted_patch_model_really_ignores_everything_else(planted):
    x = random_input(planted, 1, seed=5)
    y = x.clone()
    y[..., :2, :] = 5.0  # change pixels far from the patch
    y[..., :, :12] = -3.0
    assert torch.allclose(planted.module(x), planted.module(y))
    z = x.clone()
    z[..., 6, 22] += 1.0
    assert not torch.allclose(planted.module(x), planted.module(z))


# --------------------------------------------------------------------------------------------
# CAM == Grad-CAM (up to scale) on a GAP-linear head


class SameResCNN(nn.Module):
    """conv -> ReLU -> conv -> ReLU at full resolution -> GAP -> linear (no upsampling involved)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.pool(self.features(x))))


def test_cam_equals_gradcam_up_to_scale():
    seeded(1)
    model = xai_core.from_module(SameResCNN(), LABELS[:4], input_size=SIZE, cam_layer="features.3", fc_layer="fc")
    x = random_input(model, 3, seed=1)
    for cls in range(4):
        target = torch.full((3,), cls)
        cam = get_explainer("cam")(model, x, target)
        grad_cam = get_explainer("gradcam")(model, x, target)
        assert float(cam.min()) < 0 < float(cam.max()), "CAM should be signed on this model"
        # Grad-CAM's weights are w_c / (h*w): relu(CAM) = (h*w) * Grad-CAM exactly.
        # (the weights are means over the h×w feature map: up to h·w terms each)
        assert_close_f32(torch.relu(cam), grad_cam * (SIZE[0] * SIZE[1]), terms=SIZE[0] * SIZE[1])
        # ... and with the scale estimated from the data (least squares), for good measure.
        r = torch.relu(cam).flatten()
        g = grad_cam.flatten()
        k = float((r @ g) / (g @ g))
        assert_close_f32(r, k * g, terms=SIZE[0] * SIZE[1] * 2)  # one more dot product over the map for k


def test_cam_is_exactly_the_weighted_feature_maps(tiny):
    x = random_input(tiny, 2, seed=3)
    target = torch.tensor([0, 4])
    feats = tiny.module.act2(tiny.module.conv2(tiny.module.act1(tiny.module.conv1(x))))
    w = tiny.module.fc.weight[target]
    ref = torch.einsum("bc,bchw->bhw", w, feats)
    ref = torch.nn.functional.interpolate(ref[:, None], size=SIZE, mode="bilinear", align_corners=False)[:, 0]
    assert_close_f32(get_explainer("cam")(tiny, x, target), ref)


# --------------------------------------------------------------------------------------------
# SmoothGrad


@pytest.mark.parametrize("base,reduction", [("gradient", "max_abs"), ("input_x_gradient", "sum"),
                                            ("guided_backprop", "l2"), ("integrated_gradients", "sum")])
def test_smoothgrad_without_noise_is_its_base(tiny, base, reduction):
    x = random_input(tiny, 2, seed=7)
    target = torch.tensor([1, 2])
    samples = 3 if base == "integrated_gradients" else 5
    smooth = get_explainer("smoothgrad")(tiny, x, target, base=base, samples=samples, noise=0.0, mode="mean",
                                         reduction=reduction, seed=3, base_steps=24)
    extra = {"steps": 24} if base == "integrated_gradients" else {}
    plain = get_explainer(base)(tiny, x, target, reduction=reduction, **extra)
    # The mean of `samples` equal maps, and for IG an accumulation over its 24 steps.
    assert_close_f32(smooth, plain, terms=FAN_IN * samples * int(extra.get("steps", 1)))


def test_smoothgrad_seed_controls_the_noise(tiny):
    x = random_input(tiny, 2, seed=7)
    target = torch.tensor([1, 2])
    sg = get_explainer("smoothgrad")
    a = sg(tiny, x, target, samples=8, noise=0.2, seed=11)
    b = sg(tiny, x, target, samples=8, noise=0.2, seed=11)
    c = sg(tiny, x, target, samples=8, noise=0.2, seed=12)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c, rtol=1e-3, atol=1e-6)
    plain = get_explainer("gradient")(tiny, x, target)
    assert not torch.allclose(a, plain, rtol=1e-3, atol=1e-6), "noise 0.2 should change the map"


def test_smoothgrad_modes(tiny):
    x = random_input(tiny, 1, seed=7)
    target = torch.tensor([3])
    sg = get_explainer("smoothgrad")
    kw = {"samples": 6, "noise": 0.3, "seed": 1, "reduction": "sum"}
    mean = sg(tiny, x, target, mode="mean", **kw)
    squared = sg(tiny, x, target, mode="squared", **kw)
    var = sg(tiny, x, target, mode="variance", **kw)
    assert (squared >= 0).all() and (var >= -1e-12).all()
    # Per channel E[a^2] >= E[a]^2, so summed over channels squared >= variance.
    assert (squared + 1e-9 >= var).all()
    assert not torch.allclose(mean, squared)
    # VarGrad is exactly E[a²] - E[a]², channel by channel: Σ_c Var_c = Σ_c E[a_c²] - ‖E[a]‖².
    mean_l2 = sg(tiny, x, target, mode="mean", **{**kw, "reduction": "l2"})
    # A difference of two sums of squares: the round-off is that of the operands (squared's size), over 6 samples.
    assert_close_f32(var, squared - mean_l2**2, terms=FAN_IN * 6, magnitude=float(squared.abs().max()))
    assert float(var.abs().max()) > 1e-3 * float(squared.abs().max())  # a real spread, not ~0
    # One sample has no spread; without noise, SmoothGrad² is the squared gradient.
    assert float(sg(tiny, x, target, mode="variance", **{**kw, "samples": 1}).abs().max()) == 0
    sq0 = sg(tiny, x, target, mode="squared", **{**kw, "noise": 0.0})
    assert_close_f32(sq0, get_explainer("gradient")(tiny, x, target, reduction="l2") ** 2, terms=FAN_IN * 6)


# --------------------------------------------------------------------------------------------
# Guided Backprop through ReLU6


class _GuidedReLU6(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(0, 6)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return torch.relu(grad) * ((x > 0) & (x < 6)).to(grad.dtype)


class _GuidedReLU6Module(nn.Module):
    def forward(self, x):
        return _GuidedReLU6.apply(x)


def _reference_guided(module: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    ref = copy.deepcopy(module)
    for name, m in list(ref.named_modules()):
        if isinstance(m, nn.ReLU6):
            parent, _, attr = name.rpartition(".")
            setattr(ref.get_submodule(parent) if parent else ref, attr, _GuidedReLU6Module())
    xi = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(select(ref(xi), target).sum(), xi)
    return grad


@pytest.fixture(scope="module")
def relu6_model() -> xai_core.ModelSpec:
    seeded(2)
    return xai_core.from_module(ReLU6Net(), LABELS, input_size=SIZE, cam_layer="act2", fc_layer="fc")


def test_relu6_model_saturates(relu6_model):
    """Guard: the comparison below only means something if some activations exceed 6."""
    x = random_input(relu6_model, 2, seed=4)
    m = relu6_model.module
    pre1 = m.conv1(x)
    pre2 = m.conv2(m.act1(pre1))
    assert (pre1 > 6).any() and (pre2 > 6).any() and (pre1 < 0).any()


def test_guided_backprop_handles_relu6(relu6_model):
    x = random_input(relu6_model, 2, seed=4)
    target = torch.tensor([0, 3])
    ours = get_explainer("guided_backprop").attribute(relu6_model, x, target).values
    plain = get_explainer("gradient").attribute(relu6_model, x, target).values
    reference = _reference_guided(relu6_model.module, x, target)
    assert not torch.allclose(ours, plain, rtol=1e-3, atol=1e-6)
    assert_close_f32(ours, reference)
    # The reduced map is the reduction of that attribution.
    assert_close_f32(get_explainer("guided_backprop")(relu6_model, x, target), reference.abs().amax(1))


def test_captum_guided_backprop_ignores_relu6(relu6_model):
    """Why we wrote our own: Captum only overrides nn.ReLU, so on ReLU6 it returns the plain gradient."""
    x = random_input(relu6_model, 2, seed=4)
    target = torch.tensor([0, 3])
    plain = get_explainer("gradient").attribute(relu6_model, x, target).values
    with pytest.warns(UserWarning):
        captum = CaptumGuidedBackprop(relu6_model.module).attribute(x.clone(), target=target)
    assert_close_f32(captum, plain)
    assert not torch.allclose(captum, _reference_guided(relu6_model.module, x, target), rtol=1e-3, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Clear errors where a method is undefined


def test_cam_refuses_a_hidden_mlp_head():
    seeded(0)
    module = HiddenHeadCNN()
    for fc in ("head.3", None):
        model = xai_core.from_module(module, LABELS, input_size=SIZE, cam_layer="relu", fc_layer=fc)
        x = random_input(model, 1)
        with pytest.raises(ExplainerError) as info:
            get_explainer("cam")(model, x, torch.tensor([0]))
        msg = assert_clean_error(info.value)
        assert "global average pooling" in msg and "Grad-CAM" in msg
        # Grad-CAM is defined there and works.
        assert torch.isfinite(get_explainer("gradcam")(model, x, torch.tensor([0]))).all()


def test_cam_refuses_torchvision_mobilenet_v3():
    from xai_core.models import zoo

    seeded(0)
    module = zoo.build("mobilenet_v3_large", 10)
    x_size = (64, 64)
    for fc in (None, "classifier.3"):
        model = xai_core.from_module(module, [str(i) for i in range(10)], input_size=x_size, cam_layer="features",
                                     fc_layer=fc, title="MobileNetV3")
        x = model.normalise(torch.rand(1, 3, *x_size))
        with pytest.raises(ExplainerError, match="MobileNetV3 is not built that way"):
            get_explainer("cam")(model, x, torch.tensor([1]))


def test_cam_family_without_any_conv_layer():
    seeded(0)
    model = xai_core.from_module(MLP(), LABELS, input_size=SIZE, title="Tiny MLP")
    assert model.cam_layer is None
    x = random_input(model, 2)
    target = torch.tensor([0, 1])
    for method in ("gradcam", "gradcam_pp", "guided_gradcam", "cam"):
        with pytest.raises(ExplainerError) as info:
            get_explainer(method)(model, x, target)
        assert_clean_error(info.value)
    with pytest.raises(ExplainerError, match="Use a gradient method"):
        xai_core.explain(model, random_image(32, 32), "gradcam")
    g = get_explainer("gradient")(model, x, target)
    assert g.shape == (2, *SIZE) and torch.isfinite(g).all() and g.abs().max() > 0


def test_layer_errors_are_clear(tiny):
    x = random_input(tiny, 1)
    with pytest.raises(ExplainerError, match="no layer named 'nope'"):
        get_explainer("gradcam")(tiny, x, torch.tensor([0]), layer="nope")
    with pytest.raises(ExplainerError, match="feature map"):
        get_explainer("gradcam")(tiny, x, torch.tensor([0]), layer="flat")


def test_guided_backprop_without_activation_modules():
    class FunctionalNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))

    seeded(0)
    model = xai_core.from_module(FunctionalNet(), LABELS[:3], input_size=SIZE)
    with pytest.raises(ExplainerError, match="activations as modules"):
        get_explainer("guided_backprop")(model, random_input(model), torch.tensor([0]))

