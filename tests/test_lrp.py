"""LRP through Zennit: conservation on a bias-free network, automatic BatchNorm folding, a clear refusal for
models it cannot canonize, and the lab CNN's relevance on the watermark."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import xai_core
from xai_core import ExplainerError, get_explainer, lab


def test_epsilon_rule_conserves_the_logit_on_a_bias_free_relu_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16, bias=False), nn.ReLU(), nn.Linear(16, 3, bias=False))
    spec = xai_core.from_module(net, ["a", "b", "c"], input_size=(8, 8), device="cpu")
    x = torch.rand(2, 3, 8, 8)
    target = torch.tensor([0, 2])
    rel = get_explainer("lrp")(spec, x, target, composite="epsilon_plus")
    with torch.no_grad():
        logits = net(x)[torch.arange(2), target]
    torch.testing.assert_close(rel.sum(dim=(1, 2)), logits, rtol=1e-3, atol=1e-5)


def test_batchnorm_is_folded_on_the_bundled_model_and_parameters_are_restored(lite0, chelsea):
    before = {k: v.clone() for k, v in lite0.module.state_dict().items()}
    e = xai_core.explain(lite0, chelsea, "lrp")
    assert np.isfinite(e.map).all() and np.abs(e.map).max() > 0
    assert all(torch.equal(before[k], v) for k, v in lite0.module.state_dict().items())


def test_a_batchnorm_after_a_relu_is_refused_with_a_clear_message():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(4, 2))
    spec = xai_core.from_module(net, ["a", "b"], input_size=(8, 8), device="cpu")
    with pytest.raises(ExplainerError, match="LRP cannot canonize"):
        get_explainer("lrp")(spec, torch.rand(1, 3, 8, 8), torch.tensor([0]))


def test_lrp_finds_the_watermark_on_the_lab_model():
    model = xai_core.load_model("lab_horse_cnn", device="cpu")
    d = lab.make_dataset(40, seed=3, horse_fraction=1.0, tag_fraction=1.0)
    maps = lab.maps_for(model, d.images, "lrp")
    r = lab.pointing_on_tag_and_object(maps, d)
    # measured on 80 horses: 97% of the positive relevance in the tag box (13% of the image), 1% on the horse
    assert r["on the tag"] > 0.8 and r["mass on the tag"] > 0.5 > 0.1 > r["mass on the object"]


def test_resnet_residual_additions_are_canonized_so_relevance_is_conserved():
    """torchvision ResNet-18 with zero biases (BN β and running mean 0, fc bias 0): with Zennit's block canonizers the
    pixel relevance sums to the logit (without them it was ×256 off: each '+' passed relevance to both inputs)."""
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=3)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.zero_()
            m.running_mean.zero_()
            m.running_var.uniform_(0.5, 2.0)
    net.fc.bias.data.zero_()
    spec = xai_core.from_module(net, ["a", "b", "c"], input_size=(64, 64), device="cpu")
    x, target = torch.rand(2, 3, 64, 64), torch.tensor([0, 2])
    result = get_explainer("lrp").run(spec, x, target, composite="epsilon_plus")
    rel = result.maps
    with torch.no_grad():
        logits = net(x)[torch.arange(2), target]
    torch.testing.assert_close(rel.sum(dim=(1, 2)), logits, rtol=1e-3, atol=1e-5)
    assert result.diagnostics["relevance_kept"] == pytest.approx([1.0, 1.0], rel=1e-3)
    torch.testing.assert_close(result.logits[torch.arange(2), target], logits, rtol=1e-4, atol=1e-5)
    assert sum(1 for m in net.modules() if hasattr(m, "canonizer_sum")) == 0  # the blocks are restored afterwards


def test_layernorm_models_are_refused_with_alternatives():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.LayerNorm(4 * 8 * 8), nn.Linear(4 * 8 * 8, 2))
    spec = xai_core.from_module(net, ["a", "b"], input_size=(8, 8), device="cpu")
    with pytest.raises(ExplainerError, match="LRP has no rule here for LayerNorm.*Integrated Gradients"):
        get_explainer("lrp")(spec, torch.rand(1, 3, 8, 8), torch.tensor([0]))
