"""Hostile own-model files: every one is a typed ModelLoadError with a sentence, and nothing in it is executed
(pickles carry hostile.Payload, which records any unpickling in hostile.RAN; an auto_map names a module that would
be imported)."""

from __future__ import annotations

import io
import json
import pickle
import sys
import zipfile

import pytest
import torch
from helpers import assert_clean_error
from hostile import RAN, Entry, Payload, deep_json, deflate_zeros, raw_zip, torch_bytes, zeros_crc
from safetensors.torch import save as save_safetensors

import xai_core
from xai_core import ModelLoadError
from xai_core.untrusted import Limits, read_model_folder, read_onnx

onnx = pytest.importorskip("onnx")
pytest.importorskip("transformers")

VIT = {"model_type": "vit", "image_size": 32, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 1,
       "num_attention_heads": 2, "intermediate_size": 64}


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _refused(data: bytes, filename: str, match: str, **options) -> str:
    RAN.clear()
    with pytest.raises(ModelLoadError, match=match) as e:
        xai_core.load_own_model(data, filename, **options)
    assert RAN == [], "a pickle in the upload was executed"
    return assert_clean_error(e.value)


def test_hf_config_with_auto_map_is_refused_and_its_code_never_imported():
    config = {**VIT, "auto_map": {"AutoModelForImageClassification": "evil_model.EvilModel"}}
    _refused(_zip({"m/config.json": json.dumps(config).encode(), "m/model.safetensors": b"\0" * 16}), "m.zip",
             "auto_map.*never run")
    assert "evil_model" not in sys.modules
    _refused(_zip({"m/config.json": json.dumps(VIT).encode(), "m/evil_model.py": b"import os; os.system('true')"}),
             "m.zip", r"Python code \(evil_model.py\)")


def test_pickled_weights_are_refused_unread():
    evil = pickle.dumps(Payload())
    _refused(_zip({"config.json": json.dumps(VIT).encode(), "pytorch_model.bin": evil}), "m.zip",
             "pickle.*never loaded.*safe_serialization")
    _refused(evil, "pytorch_model.bin", "pickle", architecture="resnet18")
    _refused(torch_bytes({"fc.weight": Payload()}), "model.bin", "pickled Python object", architecture="resnet18")


def test_hf_folder_checks_model_type_json_and_layout():
    _refused(_zip({"config.json": json.dumps({**VIT, "model_type": "totally_custom"}).encode(),
                   "model.safetensors": save_safetensors({"w": torch.zeros(2)})}), "m.zip", "model_type 'totally_custom'")
    _refused(_zip({"config.json": deep_json(10_000), "model.safetensors": b""}), "m.zip", "nested 10,000 levels")
    _refused(_zip({"config.json": b"\xff\xfe"}), "m.zip", "not UTF-8")
    _refused(_zip({"weights.safetensors": b""}), "m.zip", "no config.json")
    _refused(_zip({"config.json": json.dumps(VIT).encode()}), "m.zip", "no model.safetensors")
    _refused(_zip({"config.json": json.dumps(VIT).encode(), "model.safetensors": b"\x10" + b"\0" * 7 + b"{}"}), "m.zip",
             "not a valid .safetensors")
    _refused(b"not a zip at all", "m.zip", "not a readable zip")


def test_hf_zip_bombs_stop_at_the_limits_without_trusting_declared_sizes():
    mib = 64
    bomb = Entry("m/model.safetensors", deflate_zeros(mib), 8, crc=zeros_crc(mib * 1024 * 1024), size=1024)  # lies
    data = raw_zip([Entry("m/config.json", json.dumps(VIT).encode()), bomb])
    small = Limits(model_zip_bytes=8 * 1024 * 1024)
    with pytest.raises(ModelLoadError, match="inflates to more than 8 MB"):
        read_model_folder(data, limits=small)
    big_config = raw_zip([Entry("config.json", deflate_zeros(4), 8, crc=zeros_crc(4 << 20), size=4 << 20)])
    with pytest.raises(ModelLoadError, match="configs of a model folder are up to 1 MB"):
        read_model_folder(big_config)
    with pytest.raises(ModelLoadError, match="up to 1 MB are read"):
        read_model_folder(b"PK" + b"\0" * (2 << 20), limits=Limits(model_zip_bytes=1 << 20))


def _tiny_onnx(external: str | None = None, extra_nodes: int = 0, domain: str = "") -> bytes:
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 3], [0.0] * 6)
    if external is not None:
        w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 3])
        w.data_location = TensorProto.EXTERNAL
        w.external_data.add(key="location", value=external)
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1, domain=domain)]
    nodes += [helper.make_node("Identity", ["y"], ["y"]) for _ in range(extra_nodes)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def test_onnx_with_external_data_is_refused_before_any_file_is_opened(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"\0" * 24)
    _refused(_tiny_onnx(external="weights.bin"), "m.onnx", r"external file \(weights.bin\)")
    _refused(_tiny_onnx(external="../../etc/passwd"), "m.onnx", "never opened")


def test_onnx_graph_size_domains_and_garbage():
    assert xai_core.load_own_model(_tiny_onnx(), "m.onnx").num_classes == 2  # the hostile cases' clean twin
    with pytest.raises(ModelLoadError, match="over 10 nodes"):
        read_onnx(_tiny_onnx(extra_nodes=20), limits=Limits(onnx_nodes=10))
    _refused(_tiny_onnx(domain="com.evil"), "m.onnx", "domain com.evil")
    _refused(b"\x08\x07garbage" * 10, "m.onnx", "not an ONNX model")
    _refused(b"", "m.onnx", "empty")
    with pytest.raises(ModelLoadError, match="up to 1 MB are read"):
        read_onnx(b"\0" * (2 << 20), limits=Limits(onnx_bytes=1 << 20))


class _Scripted(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))[:, :2]


def test_torchscript_is_off_unless_the_operator_turns_it_on(monkeypatch):
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(_Scripted()), buf)
    monkeypatch.delenv("XAI_ALLOW_TORCHSCRIPT", raising=False)
    _refused(buf.getvalue(), "model.pt", "TorchScript.*XAI_ALLOW_TORCHSCRIPT=1", architecture="resnet18")
    monkeypatch.setenv("XAI_ALLOW_TORCHSCRIPT", "1")
    spec = xai_core.load_own_model(buf.getvalue(), "model.pt", input_size=(16, 16))
    assert spec.num_classes == 2 and "TorchScript" in spec.provenance
