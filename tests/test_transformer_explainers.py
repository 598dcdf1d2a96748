"""Attention explainers (rollout, Chefer et al. 2021, LeGrad) on tiny random-init vision transformers built here:
LeGrad agrees with torchcam's reference implementation, rollout with the attention weights read independently,
and the planted properties hold (a class the head cannot see gets an all-zero map; rollout ignores the class)."""

from __future__ import annotations

import pytest
import torch
from conftest import DEVICE
from helpers import f32_tol, random_image
from torchvision.models import VisionTransformer

import xai_core
from xai_core import ExplainerError, ExplainRequest, Workbench, get_explainer
from xai_core.explainers.common import upsample
from xai_core.hooks import has_hooks
from xai_core.models.own import wrap

METHODS = ("attention_rollout", "chefer", "legrad")
timm = pytest.importorskip("timm")


def torchvision_vit(seed: int = 0, layers: int = 3) -> tuple[VisionTransformer, xai_core.ModelSpec]:
    torch.manual_seed(seed)
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=layers, num_heads=2, hidden_dim=16, mlp_dim=32,
                            num_classes=5).eval()
    torch.nn.init.normal_(vit.heads.head.weight, std=0.5)  # torchvision starts the head at zero: no gradient at all
    return vit, wrap(vit, id="tv_vit", title="tiny ViT", labels=list("abcde"), input_size=(32, 32), device=DEVICE)


def timm_vit(reg_tokens: int = 0) -> xai_core.ModelSpec:
    torch.manual_seed(1)
    m = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2, num_classes=3,
                          reg_tokens=reg_tokens)
    return wrap(m, id="timm_vit", title="tiny timm ViT", labels=list("abc"), input_size=(32, 32), device=DEVICE)


def _x(n: int, seed: int = 3) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)).to(DEVICE)


def test_the_layout_is_found_for_torchvision_and_timm_with_register_tokens():
    _, spec = torchvision_vit()
    lay = spec.tokens
    assert lay is not None and lay.kind == "mha" and lay.prefix == 1 and lay.grid == (4, 4) and len(lay.blocks) == 3
    assert lay.norms == ("encoder.ln",) and lay.head == "heads.head"
    reg = timm_vit(reg_tokens=4)
    assert reg.tokens is not None and reg.tokens.prefix == 5 and reg.tokens.kind == "timm"  # class + 4 registers dropped
    assert spec.as_grid(torch.zeros(2, 17, 16)).shape == (2, 16, 4, 4)


@pytest.mark.parametrize("layers", [0, 2])
def test_legrad_agrees_with_torchcam(layers):
    torchcam = pytest.importorskip("torchcam.methods")
    vit, spec = torchvision_vit()
    x, target = _x(3), torch.tensor([1, 3, 0])
    ours = get_explainer("legrad")(spec, x, target, layers=layers)
    blocks = list(vit.encoder.layers)[-layers:] if layers else list(vit.encoder.layers)
    with torchcam.LeGrad(vit, blocks) as extractor, torch.enable_grad():
        cams = extractor(target.tolist(), vit(x), normalized=False)[0]
    ref = upsample(cams.float(), (32, 32))
    assert float(ref.abs().max()) > 0
    assert float((ours - ref).abs().max()) <= f32_tol(float(ref.abs().max()), terms=16 * 5)
    assert not has_hooks(vit)


def test_rollout_of_one_layer_is_the_class_tokens_attention_read_independently():
    vit, spec = torchvision_vit(layers=1)
    x = _x(2)
    ours = get_explainer("attention_rollout")(spec, x, torch.tensor([0, 0]))
    block = vit.encoder.layers[0]
    with torch.no_grad():
        tokens = _tokens(vit, x)  # the encoder's input: class token + patches + position embedding
        _, att = block.self_attention(*(block.ln_1(tokens),) * 3, need_weights=True, average_attn_weights=True)
    want = upsample(0.5 * att[:, 0, 1:].reshape(2, 4, 4), (32, 32))  # ½ mean-head attention + ½ identity, row sums 1
    assert float((ours - want).abs().max()) <= f32_tol(float(want.abs().max()), terms=17)


def _tokens(vit: VisionTransformer, x: torch.Tensor) -> torch.Tensor:
    t = vit._process_input(x)
    return torch.cat([vit.class_token.expand(len(x), -1, -1), t], dim=1) + vit.encoder.pos_embedding


def test_rollout_is_class_agnostic_and_a_flow():
    spec = timm_vit()
    x = _x(2)
    a = get_explainer("attention_rollout")(spec, x, torch.tensor([0, 1]))
    b = get_explainer("attention_rollout")(spec, x, torch.tensor([2, 2]))
    assert torch.equal(a, b) and (a >= 0).all()
    from xai_core.explainers.attention import attention_maps, checked
    from xai_core.explainers.rollout import rollout_of

    with torch.no_grad(), attention_maps(spec) as maps:
        spec.module(x)
        r = rollout_of(checked(maps, spec))
    assert torch.allclose(r.sum(-1), torch.ones(2, r.shape[-1], device=r.device), atol=1e-5)  # each row a distribution


@pytest.mark.parametrize("method", ["chefer", "legrad"])
def test_a_class_the_head_cannot_see_gets_an_all_zero_map(method):
    vit, spec = torchvision_vit()
    with torch.no_grad():
        vit.heads.head.weight[2] = 0  # class 2's logit is its bias alone: no attention can matter to it
    x = _x(2)
    blind = get_explainer(method)(spec, x, torch.tensor([2, 2]))
    seen = get_explainer(method)(spec, x, torch.tensor([1, 1]))
    assert float(blind.abs().max()) == 0.0 and float(seen.abs().max()) > 0
    assert (seen >= 0).all()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("build", ["torchvision", "timm", "hf"])
def test_batched_equals_unbatched_and_nothing_is_left_behind(method, build):
    if build == "hf":
        transformers = pytest.importorskip("transformers")
        cfg = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=32, num_labels=3)
        torch.manual_seed(0)
        hf = transformers.AutoModelForImageClassification.from_config(cfg, attn_implementation="eager")
        from xai_core.models.hf import HFClassifier

        spec = wrap(HFClassifier(hf), id="hf", title="tiny HF ViT", labels=list("abc"), input_size=(32, 32),
                    device=DEVICE)
    else:
        spec = torchvision_vit()[1] if build == "torchvision" else timm_vit()
    before = {k: v.clone() for k, v in spec.module.state_dict().items()}
    fused = [m.fused_attn for m in spec.module.modules() if hasattr(m, "fused_attn")]
    x, target = _x(3), torch.tensor([0, 1, 2])
    e = get_explainer(method)
    both = e(spec, x, target)
    for i in range(3):
        one = e(spec, x[i:i + 1], target[i:i + 1])[0]
        assert float((one - both[i]).abs().max()) <= f32_tol(float(both.abs().max()) + 1e-30, terms=64)
    assert torch.isfinite(both).all() and float(both.abs().max()) > 0
    assert not has_hooks(spec.module)
    assert all(torch.equal(v, before[k]) for k, v in spec.module.state_dict().items())
    assert fused == [m.fused_attn for m in spec.module.modules() if hasattr(m, "fused_attn")]


@pytest.mark.parametrize("method", METHODS)
def test_the_workbench_explains_with_one_forward_and_the_top1_class(method):
    _, spec = torchvision_vit()
    calls = []
    spec.module.register_forward_hook(lambda *_: calls.append(1))
    image = random_image(40, 50, seed=2)
    wb = Workbench(spec)
    top = int(wb.probabilities(image).argmax())
    calls.clear()
    e = wb.explain(image, ExplainRequest.make(method))
    assert e.target == top and e.map.shape == (40, 50) and len(calls) == 1


def test_attention_methods_refuse_a_cnn_with_the_capability_sentence(tiny):
    for method in METHODS:
        why = get_explainer(method).why_not(tiny)
        assert why and "vision transformer" in why
        with pytest.raises(ExplainerError, match="global self-attention"):
            get_explainer(method)(tiny, torch.zeros(1, 3, 32, 32), torch.tensor([0]))
