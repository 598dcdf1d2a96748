"""Uploaded model files other than state dicts: a Hugging Face folder (as a zip) and an ONNX graph.

- A Hugging Face folder is read through the bounded zip reader (:class:`.zips.UploadZip`): ``config.json`` (depth and
  size bounded, no ``auto_map``: custom code is never run; model type, keys and sizes checked by :mod:`.hfconfig`
  before any weight is read), the weights only as ``*.safetensors`` (each through the
  checks of :func:`.checkpoints.read_state_dict`), ``preprocessor_config.json`` if present. Pickled weights
  (``pytorch_model.bin``, ``.pt``, ``.ckpt``) and Python files in the folder are refused, not skipped, so the user
  learns why their folder does not load.
- An ONNX file is parsed from bytes (never from a path, so nothing next to it is opened); graphs whose tensors point
  to external data files, graphs with more nodes than :attr:`Limits.onnx_nodes` (subgraphs counted) and operators
  outside the standard domains are refused before any conversion.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ImageError, ModelLoadError
from .checkpoints import read_state_dict
from .hfconfig import TOWERS, check_config, check_preprocessor
from .limits import LIMITS, MB, Limits, human
from .messages import shown
from .text import load_json
from .tokenizers import read_files as read_tokenizer_files
from .zips import UploadZip

HF_HINT = ("In Python run `model.save_pretrained('my_model')` (it writes config.json and model.safetensors), zip the "
           "folder and upload the zip.")
ONNX_HINT = "Export with torch.onnx.export(model, example, 'model.onnx') (weights inside the file) and upload that."
PICKLED = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
_DOMAINS = {"", "ai.onnx"}


@dataclass
class ModelFolder:
    """A checked Hugging Face folder: its configs as JSON objects and its weights as plain tensors."""

    config: dict[str, Any]
    state: dict[str, torch.Tensor]
    preprocessor: dict[str, Any] | None
    files: list[str]
    tokenizer: dict[str, bytes] = dataclasses.field(default_factory=dict)  # tokenizer files, as data (.tokenizers)


def _json(z: UploadZip, name: str, limits: Limits) -> dict[str, Any]:
    try:
        text = z.read(name, limits.model_config_bytes).decode("utf-8")
        obj = load_json(text, limits.json_depth)
    except ImageError as e:
        cap = human(limits.model_config_bytes, "_bytes")
        raise ModelLoadError(f"{e} The configs of a model folder are up to {cap}.") from None
    except (UnicodeDecodeError, ValueError) as e:
        why = "is not UTF-8" if isinstance(e, UnicodeDecodeError) else e
        raise ModelLoadError(f"The file {shown(name)} in the model folder {why}; it must be the JSON file transformers "
                             f"writes. {HF_HINT}") from None
    if not isinstance(obj, dict):
        raise ModelLoadError(f"The file {shown(name)} in the model folder is not a JSON object. {HF_HINT}")
    return obj


def _root(names: list[str]) -> str:
    configs = [n for n in names if posixpath.basename(n) == "config.json" and not n.startswith("__MACOSX/")]
    if not configs:
        raise ModelLoadError(f"The zip holds no config.json, so it is not a Hugging Face model folder. {HF_HINT}")
    roots = sorted({posixpath.dirname(n) for n in configs}, key=len)
    if len(roots) > 1 and not all(r.startswith(roots[0]) for r in roots):
        raise ModelLoadError(f"The zip holds several model folders ({', '.join(shown(r or '.') for r in roots[:3])}); "
                             "zip one folder.")
    return roots[0]


def read_model_folder(data: bytes, *, limits: Limits = LIMITS) -> ModelFolder:
    """A zipped Hugging Face folder -> configs and weights; every refusal is a :class:`ModelLoadError`."""
    if len(data) > limits.model_zip_bytes:
        raise ModelLoadError(f"The model zip is {len(data) / MB:,.0f} MB; up to {human(limits.model_zip_bytes, '_bytes')} "
                             "are read.")
    bounded = dataclasses.replace(limits, upload_bytes=limits.model_zip_bytes, zip_total_bytes=limits.model_zip_bytes)
    try:
        z = UploadZip(data, limits=bounded, hint=HF_HINT)
    except ImageError as e:
        raise ModelLoadError(str(e)) from None
    names = [n for n in z.names if not n.startswith("__MACOSX/") and not posixpath.basename(n).startswith("._")]
    root = _root(names)
    local = {n[len(root) + 1:] if root else n: n for n in names if not root or n.startswith(root + "/")}
    code = [n for n in local if n.endswith(".py")]
    if code:
        raise ModelLoadError(f"The model folder holds Python code ({shown(code[0])}); custom model code is never run "
                             "here. Use an architecture that transformers ships (ViT, DeiT, Swin, ConvNeXt, ResNet, ...).")
    config = _json(z, local["config.json"], limits)
    if "auto_map" in config:
        raise ModelLoadError("The config.json has an auto_map entry: the model needs its own Python code "
                             "(trust_remote_code), which is never run here. Use an architecture that transformers ships.")
    check_config(config, limits=limits)  # allow-listed type and keys, cheap bounds: before any weight is read
    pre = _json(z, local["preprocessor_config.json"], limits) if "preprocessor_config.json" in local else None
    if pre is not None:
        check_preprocessor(pre, limits=limits)
    weights = sorted(n for n in local if n.endswith(".safetensors") and "/" not in n)
    if not weights:
        pickled = [n for n in local if n.lower().endswith(PICKLED)]
        if pickled:
            raise ModelLoadError(f"The model folder's weights are a pickle ({shown(pickled[0])}), which can run "
                                 "arbitrary code and is never loaded here. In Python run "
                                 "`model.save_pretrained('my_model', safe_serialization=True)` and zip that folder.")
        raise ModelLoadError(f"The model folder holds no model.safetensors. {HF_HINT}")
    state: dict[str, torch.Tensor] = {}
    for name in weights:
        try:
            part = z.read(local[name], limits.model_zip_bytes)
        except ImageError as e:
            raise ModelLoadError(str(e)) from None
        state.update(read_state_dict(part, name, limits=limits, strip_prefix=False))
        if len(state) > limits.checkpoint_tensors:
            raise ModelLoadError(f"The model folder has over {limits.checkpoint_tensors:,} tensors; fewer are read.")
    tokenizer = read_tokenizer_files(z, local, limits) if config["model_type"] in TOWERS else {}
    return ModelFolder(config, state, pre, sorted(local), tokenizer)


# --------------------------------------------------------------------------------------------------------------
# ONNX


def _graphs(graph: Any) -> Iterator[Any]:
    """``graph`` and every subgraph (If/Loop/Scan bodies), depth first."""
    stack = [graph]
    while stack:
        g = stack.pop()
        yield g
        for node in g.node:
            for attr in node.attribute:
                if attr.HasField("g"):
                    stack.append(attr.g)
                stack.extend(attr.graphs)


def _tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sp in graph.sparse_initializer:
        yield sp.values
        yield sp.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors


def read_onnx(data: bytes, *, limits: Limits = LIMITS) -> Any:
    """ONNX bytes -> a checked ``onnx.ModelProto`` with every weight inside it."""
    if not data:
        raise ModelLoadError("The ONNX file is empty. Choose the file again.")
    if len(data) > limits.onnx_bytes:
        raise ModelLoadError(f"The ONNX file is {len(data) / MB:,.0f} MB; up to {human(limits.onnx_bytes, '_bytes')} "
                             "are read.")
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError:
        raise ModelLoadError("Reading ONNX models needs the optional packages onnx and onnx2torch: "
                             "run `pip install onnx onnx2torch` on the server.") from None
    try:
        model = onnx.load_model_from_string(data)  # bytes only: no base folder, so no external file is ever opened
    except (DecodeError, ValueError, RuntimeError) as e:
        raise ModelLoadError(f"This is not an ONNX model file ({type(e).__name__}). {ONNX_HINT}") from None
    if not model.graph.node:
        raise ModelLoadError(f"The ONNX file holds no graph (no nodes). {ONNX_HINT}")
    nodes = 0
    for g in [*_graphs(model.graph), *model.functions]:
        nodes += len(g.node)
        if nodes > limits.onnx_nodes:
            raise ModelLoadError(f"The ONNX graph has over {limits.onnx_nodes:,} nodes; image classifiers have far "
                                 "fewer. Export the classifier alone.")
        for t in _tensors(g) if hasattr(g, "initializer") else ():
            if t.data_location == onnx.TensorProto.EXTERNAL or t.external_data:
                where = next((e.value for e in t.external_data if e.key == "location"), "another file")
                raise ModelLoadError(f"The ONNX tensor {shown(t.name)} keeps its data in an external file "
                                     f"({shown(where)}); files next to an upload are never opened. Export with the "
                                     "weights inside: torch.onnx.export(..., external_data=False), or "
                                     "onnx.save(model, path, save_as_external_data=False).")
    odd = sorted({op.domain for op in model.opset_import if op.domain not in _DOMAINS})
    if odd:
        raise ModelLoadError(f"The ONNX model uses operators from the domain {shown(odd[0])}, which is not standard "
                             f"ONNX and cannot be converted. {ONNX_HINT}")
    return model
