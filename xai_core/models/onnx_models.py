"""ONNX models converted into differentiable torch modules (onnx2torch), so white-box explainers work on them too.

The graph is checked by the upload boundary first (:func:`xai_core.untrusted.read_onnx`: no external data, bounded
node count, standard operators only), then costed before anything is converted (:mod:`.onnx_cost`): every operator
must have a converter (``Loop``/``Scan``/``If`` have none), a fixed input side is at most ``model_input_side``, and
the weights *as the converter copies them* (once per node that reads them) fit ``model_parameters`` and
``checkpoint_tensor_bytes``. Exporters write a shared bias once and route it through ``Identity`` nodes (torch's
exporter does for folded BatchNorm); their readers are pointed at the weight itself, so nothing is duplicated.
One batch-1 forward is costed from the graph (activation bytes, FLOPs) against ``model_activation_bytes`` and
``model_forward_flops``: at the graph's fixed size before conversion, and at the chosen size before the first real
forward (:func:`num_outputs`).
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import nn

from ..errors import ModelLoadError
from ..untrusted.limits import LIMITS, Limits, human
from ..untrusted.messages import shown
from ..untrusted.modelfiles import ONNX_HINT, read_onnx
from . import onnx_cost, onnx_shapes
from .cost import ModelCost, check

try:
    from onnx2torch import convert as onnx2torch
    from onnx2torch.node_converters.registry import get_converter
except ImportError:  # optional: the loader says which packages to install
    onnx2torch = get_converter = None

MISSING = "ONNX models need the optional packages onnx and onnx2torch: run `pip install onnx onnx2torch` on the server."
_GRAPHS: weakref.WeakKeyDictionary[nn.Module, Any] = weakref.WeakKeyDictionary()  # module -> its graph, weights dropped


def input_shape(model: Any) -> list[int | None]:
    """The declared [N, C, H, W] of the graph's image input (None where a dimension is not fixed)."""
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1:
        raise ModelLoadError(f"The ONNX model takes {len(inputs)} inputs; an image classifier takes one image batch. "
                             + ONNX_HINT)
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[1] not in (3, None):
        raise ModelLoadError(f"The ONNX model's input has shape {['?' if d is None else d for d in dims]}; an image "
                             "batch [N, 3, H, W] is needed.")
    return dims


def input_size(model: Any) -> tuple[int, int] | None:
    """(H, W) of the graph's image input when the export fixed them; raises if the input is not [N, 3, H, W]."""
    dims = input_shape(model)
    return (dims[2], dims[3]) if dims[2] and dims[3] else None


def check_side(size: tuple[int, int], what: str, limits: Limits = LIMITS) -> None:
    if max(size) > limits.model_input_side:
        raise ModelLoadError(f"{what} a {size[1]:,}×{size[0]:,} input; this server runs models on inputs of up to "
                             f"{limits.model_input_side:,} px a side (limit model_input_side).")


def _unsupported(model: Any) -> None:
    opsets = {op.domain: op.version for op in model.opset_import}
    for node in model.graph.node:
        try:
            get_converter(domain=node.domain, operation_type=node.op_type, version=opsets.get(node.domain, 1))
        except NotImplementedError:
            raise ModelLoadError(f"The ONNX graph uses the operator {shown(node.op_type)}, which the converter "
                                 "onnx2torch cannot turn into torch (control flow such as Loop, Scan and If never "
                                 "can). Export the classifier with standard layers, opset 13-17.") from None


def precheck(model: Any, limits: Limits = LIMITS) -> ModelCost:
    """Refuse, before conversion, a graph whose converted weights or declared input are over the limits."""
    _unsupported(model)
    dims = input_shape(model)
    if dims[2] and dims[3]:
        check_side((dims[2], dims[3]), "The ONNX graph declares", limits)
    onnx_cost.resolve_identities(model.graph)
    elements, nbytes, reads = onnx_cost.weights(model.graph)
    if reads > limits.onnx_initializer_reads:
        raise ModelLoadError(f"The ONNX graph's nodes read weights {reads:,} times; this server converts graphs with up "
                             f"to {limits.onnx_initializer_reads:,} (limit onnx_initializer_reads). Export the "
                             "classifier alone.")
    if nbytes > limits.checkpoint_tensor_bytes:
        raise ModelLoadError(f"The ONNX graph's weights, counted once per node that reads them as the converter "
                             f"copies them, are {human(nbytes, '_bytes')}; this server converts graphs of up to "
                             f"{human(limits.checkpoint_tensor_bytes, '_bytes')} (limit checkpoint_tensor_bytes).")
    cost = ModelCost(elements, nbytes, 0)  # modules: one per node, bounded by onnx_nodes in read_onnx
    check(cost, "The ONNX graph describes", limits=limits)
    conv = onnx_cost.kernel_mismatch(model.graph)
    if conv is not None:
        raise ModelLoadError(f"The ONNX Conv {shown(conv)} declares a kernel_shape that differs from its weight's; the "
                             f"graph is inconsistent. {ONNX_HINT}")
    ln = onnx_cost.layer_norm_mismatch(model, [d or "?" for d in dims])
    if ln is not None:
        raise ModelLoadError(f"The ONNX LayerNormalization {shown(ln)} has a scale that does not match its input; "
                             f"the graph is inconsistent. {ONNX_HINT}")
    return cost


def convert(data: bytes, *, limits: Limits = LIMITS) -> tuple[nn.Module, tuple[int, int] | None]:
    """ONNX bytes -> (torch module, the input size fixed in the graph or None), costed before conversion."""
    model = read_onnx(data, limits=limits)
    if onnx2torch is None:
        raise ModelLoadError(MISSING)
    size = input_size(model)
    precheck(model, limits)
    del model.graph.value_info[:]  # hints from the upload: the converter infers its own shapes
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    skeleton = onnx_shapes.skeleton(model, input_shape(model))  # what the forward check needs, without the weights
    if size is not None:  # the graph fixes its size: refuse a forward over the limits before spending a conversion
        _check_graph(skeleton, size, limits)
    try:
        module = onnx2torch(model)
    except Exception as e:  # noqa: BLE001 - the converter raises many types for graphs it cannot map
        raise ModelLoadError(f"The converter onnx2torch cannot convert this graph ({type(e).__name__}: {str(e)[:120]}). "
                             "Export with opset 13-17 and standard layers.") from None
    _GRAPHS[module] = skeleton
    return module, size


def _check_graph(skeleton: Any, size: tuple[int, int], limits: Limits) -> onnx_cost.Forward:
    check_side(size, "The ONNX model was asked to run on", limits)
    fwd = onnx_cost.forward(skeleton, size)
    cost = ModelCost(0, 0, 0, fwd.activation_bytes, fwd.flops)  # weights were checked before conversion
    check(cost, f"At {size[1]}×{size[0]} px the ONNX graph is", limits=limits)
    return fwd


def check_forward(module: nn.Module, size: tuple[int, int], limits: Limits = LIMITS) -> onnx_cost.Forward:
    """Refuse a converted graph whose batch-1 forward at ``size`` is over the limits, before it ever runs."""
    return _check_graph(_GRAPHS[module], size, limits)


def num_outputs(module: nn.Module, size: tuple[int, int]) -> int:
    """Run the converted module once on zeros (after :func:`check_forward`); its output must be logits [1, K]."""
    check_forward(module, size)
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
