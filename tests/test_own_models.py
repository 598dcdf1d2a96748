"""Own models through ``load_own_model``: timm, Hugging Face, ONNX and torchvision state dicts, all built random-init in
the test (nothing downloaded). Each predicts like the module it came from, every explainer the capability matrix
allows gives a finite map, and Grad-CAM of the ONNX conversion equals Grad-CAM of the original."""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
import zipfile

import pytest
import torch
import torchvision
from conftest import DEVICE
from helpers import EPS32, spearman
from safetensors.torch import save as save_safetensors

import xai_core
from xai_core import ModelLoadError, get_explainer
from xai_core.capability import capabilities
from xai_core.hooks import has_hooks

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")
pytest.importorskip("onnx2torch")

# Small settings for the costly methods: the point here is "it runs and is finite on this architecture".
CHEAP = {"integrated_gradients": {"steps": 4}, "kernel_shap": {"samples": 50, "n_segments": 8},
         "lime": {"samples": 50, "n_segments": 8}, "meaningful_perturbation": {"iterations": 10, "grid": 4},
         "occlusion": {"window": 16, "stride": 16}, "rise": {"masks": 50, "cells": 4},
         "smoothgrad": {"base_steps": 2, "samples": 2}, "scorecam": {"channels": 8}}


def _tol(logits: torch.Tensor, terms: int) -> float:
    """float32 drift of logits computed by two kernels in another order: 8·eps32·|logit|max·√terms."""
    return 8 * EPS32 * float(logits.abs().max().clamp_min(1)) * terms ** 0.5


def _same_predictions(spec: xai_core.ModelSpec, original: torch.nn.Module, terms: int, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, *spec.input_size, generator=g)
    with torch.no_grad():
        want = original.eval()(x)
        got = spec.module(x.to(spec.device).contiguous(memory_format=torch.channels_last)).cpu()
    assert got.shape == want.shape
    assert float((got - want).abs().max()) <= _tol(want, terms)


def _every_applicable_explainer(spec: xai_core.ModelSpec) -> list[str]:
    x = torch.randn(1, 3, *spec.input_size, generator=torch.Generator().manual_seed(1)).to(spec.device)
    ran = []
    for cap in capabilities(spec):
        e = get_explainer(cap.id)
        if not cap.applies:
            assert cap.why and cap.why.endswith(".")
            continue
        m = e(spec, x, torch.tensor([1]), **CHEAP.get(cap.id, {}))
        assert m.shape == (1, *spec.input_size) and torch.isfinite(m).all(), cap.id
        ran.append(cap.id)
    assert not has_hooks(spec.module)
    return ran


def _timm_spec(name: str, **kw):
    torch.manual_seed(0)
    m = timm.create_model(name, pretrained=False, num_classes=4, **kw).eval()
    spec = xai_core.load_own_model(save_safetensors(m.state_dict()), "weights.safetensors", architecture=f"timm/{name}",
                                   device=DEVICE)
    return m, spec


def test_timm_resnet18_loads_with_timms_preprocessing_and_every_cnn_method_runs():
    m, spec = _timm_spec("resnet18")
    cfg = m.pretrained_cfg
    assert spec.num_classes == 4 and spec.labels[0] == "class 0"  # class count read from the file's classifier
    assert spec.input_size == tuple(cfg["input_size"][1:]) and spec.mean == tuple(cfg["mean"])
    assert spec.interpolation == cfg["interpolation"] == "bicubic"
    assert (spec.cam_layer, spec.fc_layer, spec.tokens) == ("layer4", "fc", None)
    _same_predictions(spec, m, terms=9 * 512)
    spec.input_size = (64, 64)  # a ResNet takes any size: explain at 64×64 to keep the test fast
    ran = _every_applicable_explainer(spec)
    assert {"cam", "gradcam", "lrp", "integrated_gradients", "occlusion"} <= set(ran)
    assert not {"attention_rollout", "chefer", "legrad"} & set(ran)


def test_timm_vit_tiny_gets_its_token_grid_and_attention_methods():
    m, spec = _timm_spec("vit_tiny_patch16_224")
    assert spec.tokens is not None and spec.tokens.prefix == 1 and spec.tokens.grid == (14, 14)
    assert spec.tokens.kind == "timm" and len(spec.tokens.blocks) == 12 and spec.cam_layer == "blocks.11.norm1"
    assert spec.mean == (0.5, 0.5, 0.5)
    _same_predictions(spec, m, terms=4 * 192)
    caps = {c.id: c for c in capabilities(spec)}
    assert "LayerNorm" in caps["lrp"].why and "GAP" not in caps["cam"].why and not caps["cam"].applies
    ran = _every_applicable_explainer(spec)
    assert {"attention_rollout", "chefer", "legrad", "gradcam"} <= set(ran)
    assert all(blk.attn.fused_attn == m.blocks[0].attn.fused_attn for blk in spec.module.blocks)  # switch restored


def test_timm_channel_last_swin_and_convnext_get_their_layout():
    _, swin = _timm_spec("swin_tiny_patch4_window7_224")
    assert type(swin.reshape).__name__ == "ChannelsLast" and swin.tokens is None
    assert "windowed" in capabilities(swin)[[c.id for c in capabilities(swin)].index("legrad")].why
    _, convnext = _timm_spec("convnext_atto")
    assert convnext.cam_layer == "stages" and convnext.reshape is None


def _hf_vit(**over):
    cfg = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64, num_labels=3, id2label={0: "cat", 1: "dog", 2: "eel"},
                                 label2id={"cat": 0, "dog": 1, "eel": 2}, **over)
    torch.manual_seed(0)
    return transformers.AutoModelForImageClassification.from_config(cfg, attn_implementation="eager").eval()


def hf_zip(model, processor: dict | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    """``model.save_pretrained`` into a folder, zipped as a user would (one top folder)."""
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(d)
        if processor is not None:
            with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
                json.dump(processor, f)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name in sorted(os.listdir(d)):
                z.write(os.path.join(d, name), f"my_vit/{name}")
            for name, data in (extra or {}).items():
                z.writestr(f"my_vit/{name}", data)
        return buf.getvalue()


def test_hugging_face_vit_from_a_config_loads_with_labels_and_preprocessing():
    model = _hf_vit()
    data = hf_zip(model, {"image_mean": [0.5, 0.4, 0.3], "image_std": [0.2, 0.2, 0.2], "size": {"height": 32, "width": 32},
                          "resample": 3})
    spec = xai_core.load_own_model(data, "my_vit.zip", device=DEVICE)
    assert spec.labels == ["cat", "dog", "eel"] and spec.input_size == (32, 32)
    assert spec.mean == (0.5, 0.4, 0.3) and spec.std == (0.2, 0.2, 0.2) and spec.interpolation == "bicubic"
    assert spec.tokens is not None and spec.tokens.kind == "hf" and spec.tokens.grid == (4, 4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 32, 32, generator=g)
    with torch.no_grad():
        want = model(pixel_values=x).logits
        got = spec.module(x.to(spec.device)).cpu()
    assert float((got - want).abs().max()) <= _tol(want, 64)
    assert {"attention_rollout", "chefer", "legrad", "gradcam"} <= set(_every_applicable_explainer(spec))
    top = xai_core.Workbench(spec).predict(torch.zeros(40, 40, 3, dtype=torch.uint8).numpy(), k=3)
    assert sorted(p.label for p in top) == ["cat", "dog", "eel"]


def test_hugging_face_without_a_processor_config_states_its_defaults():
    spec = xai_core.load_own_model(hf_zip(_hf_vit()), "my_vit.zip")
    assert spec.input_size == (32, 32) and "ImageNet mean/std assumed" in spec.provenance


def _onnx_bytes(module: torch.nn.Module, size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.zeros(1, 3, *size),), buf, dynamo=False, input_names=["image"],
                          output_names=["logits"], opset_version=17)
    return buf.getvalue()


def test_onnx_export_of_a_torchvision_model_is_differentiable_and_matches_the_original():
    torch.manual_seed(0)
    original = torchvision.models.resnet18(num_classes=5).eval()
    spec = xai_core.load_own_model(_onnx_bytes(original, (64, 64)), "resnet18.onnx", device=DEVICE)
    assert spec.input_size == (64, 64) and spec.num_classes == 5  # from the graph
    assert spec.mean == xai_core.models.spec.IMAGENET_MEAN and "onnx2torch" in spec.provenance
    _same_predictions(spec, original, terms=9 * 512)
    ran = _every_applicable_explainer(spec)
    assert {"gradient", "integrated_gradients", "gradcam", "cam", "lrp"} <= set(ran)  # white-box methods too
    buf = io.BytesIO()
    torch.save(original.state_dict(), buf)
    same = xai_core.load_own_model(buf.getvalue(), "resnet18.pth", architecture="resnet18", num_classes=5, device=DEVICE)
    same.input_size = (64, 64)  # torchvision's default is 224; the export fixed 64
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(4)).to(spec.device)
    t = torch.tensor([0, 2, 4])
    a, b = get_explainer("gradcam")(spec, x, t), get_explainer("gradcam")(same, x, t)
    for i in range(3):
        assert spearman(a[i], b[i]) >= 0.99


def test_onnx_options_override_the_defaults_and_labels_must_fit():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 2))
    data = _onnx_bytes(net, (32, 32))
    spec = xai_core.load_own_model(data, "n.onnx", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), labels=["no", "yes"])
    assert spec.std == (0.25, 0.25, 0.25) and spec.labels == ["no", "yes"]
    with pytest.raises(ModelLoadError, match="3 labels were given for a model with 2 classes"):
        xai_core.load_own_model(data, "n.onnx", labels=["a", "b", "c"])
    assert xai_core.load_own_model(data, "n.onnx", labels=b"cat\ndog\n").labels == ["cat", "dog"]  # a labels file
    with pytest.raises(ModelLoadError, match="3 names but the model has 2 classes"):
        xai_core.load_own_model(data, "n.onnx", labels=b"a\nb\nc\n")


def test_timm_names_and_missing_architecture_are_sentences():
    with pytest.raises(ModelLoadError, match="timm library has no model called 'resnet_nope'"):
        xai_core.load_own_model(b"x", "w.pth", architecture="timm/resnet_nope")
    with pytest.raises(ModelLoadError, match="Choose the architecture of this state dict"):
        xai_core.load_own_model(b"x", "w.pth")
    m = timm.create_model("resnet18", pretrained=False, num_classes=4)
    with pytest.raises(ModelLoadError, match="another architecture"):
        xai_core.load_own_model(save_safetensors(m.state_dict()), "w.safetensors", architecture="timm/vit_tiny_patch16_224")


def test_formats_name_their_optional_packages():
    assert [f.id for f in xai_core.models.FORMATS] == ["state_dict", "huggingface", "onnx", "torchscript"]
    assert xai_core.models.missing_packages("onnx") == [] and xai_core.models.missing_packages("timm") == []
    assert xai_core.models.missing_packages("huggingface") == []
