"""ONNX models converted into differentiable torch modules (onnx2torch), so white-box explainers work on them too.

The graph is checked by the upload boundary first (:func:`xai_core.untrusted.read_onnx`: no external data, bounded
node count, standard operators only). Exporters write a shared bias once and route it through ``Identity`` nodes
(torch's exporter does for folded BatchNorm); those are turned back into weights so the converter can read them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ModelLoadError
from ..untrusted.modelfiles import ONNX_HINT, read_onnx

MISSING = "ONNX models need the optional packages onnx and onnx2torch: run `pip install onnx onnx2torch` on the server."


def _inline_identities(model: Any) -> None:
    import onnx

    weights = {t.name: t for t in model.graph.initializer}
    kept = []
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input and node.input[0] in weights:
            t = onnx.TensorProto()
            t.CopyFrom(weights[node.input[0]])
            t.name = node.output[0]
            model.graph.initializer.append(t)
            weights[t.name] = t
        else:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)


def input_size(model: Any) -> tuple[int, int] | None:
    """(H, W) of the graph's image input when the export fixed them; raises if the input is not [N, 3, H, W]."""
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1:
        raise ModelLoadError(f"The ONNX model takes {len(inputs)} inputs; an image classifier takes one image batch. "
                             + ONNX_HINT)
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[1] not in (3, None):
        raise ModelLoadError(f"The ONNX model's input has shape {['?' if d is None else d for d in dims]}; an image "
                             "batch [N, 3, H, W] is needed.")
    return (dims[2], dims[3]) if dims[2] and dims[3] else None


def convert(data: bytes) -> tuple[nn.Module, tuple[int, int] | None]:
    """ONNX bytes -> (torch module, the input size fixed in the graph or None)."""
    model = read_onnx(data)
    try:
        from onnx2torch import convert as onnx2torch
    except ImportError:
        raise ModelLoadError(MISSING) from None
    size = input_size(model)
    _inline_identities(model)
    try:
        module = onnx2torch(model)
    except Exception as e:  # noqa: BLE001 - the converter raises many types for graphs it cannot map
        raise ModelLoadError(f"The converter onnx2torch cannot convert this graph ({type(e).__name__}: {str(e)[:120]}). "
                             "Export with opset 13-17 and standard layers.") from None
    return module, size


def num_outputs(module: nn.Module, size: tuple[int, int]) -> int:
    """Run the converted module once on zeros; its output must be logits [1, K]."""
    p = next(module.parameters(), None)
    try:
        with torch.no_grad():
            out = module(torch.zeros(1, 3, *size, device=p.device if p is not None else "cpu"))
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(f"The converted ONNX model fails on a {size[1]}×{size[0]} image ({type(e).__name__}); "
                             "give the input size it was exported for.") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 1:
        raise ModelLoadError("The ONNX model's output is not one row of class scores [N, classes]; export the "
                             "classifier's logits.")
    return int(out.shape[1])
