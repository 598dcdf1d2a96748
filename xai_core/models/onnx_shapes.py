"""Shapes of every tensor of an ONNX graph at a chosen input size, found without its weights: ONNX shape inference on a
skeleton of the graph (weights of more than ``SMALL`` elements replaced by typed inputs, so nothing large is copied),
with small constant subgraphs folded (exporters compute shapes with Shape, ConstantOfShape, Where, Div, ... which
ONNX's data propagation does not all follow). Used by :mod:`.onnx_cost` to cost a forward before it runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import SupportsInt

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

from ..errors import ModelLoadError

SMALL = 1024  # initializers/constants with at most this many elements stay in the skeleton (shapes are read from them)
EVALUATIONS = 8192  # constant nodes folded per graph at most (other than Constant and Shape, which cost nothing)


def itemsize(elem_type: int) -> int:
    try:
        return helper.tensor_dtype_to_np_dtype(elem_type).itemsize or 8
    except (KeyError, TypeError, ValueError):
        return 8  # strings and unknown types: never cheaper than int64


def numel(dims: Iterable[SupportsInt]) -> int:
    return math.prod(max(int(d), 0) for d in dims)


def _typed_input(name: str, elem_type: int, dims: Iterable[SupportsInt]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, [int(d) for d in dims])


def skeleton(model: onnx.ModelProto, input_shape: Sequence[int | str | None]) -> onnx.ModelProto:
    """The graph's structure with large weights and constants replaced by typed inputs (shape inference needs only
    their shapes) and the image input set to ``input_shape``."""
    g = model.graph
    weights_ = {t.name for t in g.initializer}
    image, *others = [i for i in g.input if i.name not in weights_]  # others: the weights of a skeleton
    inputs = [helper.make_tensor_value_info(image.name, image.type.tensor_type.elem_type, input_shape), *others]
    small, nodes = [], []
    for t in g.initializer:
        (small.append(t) if numel(t.dims) <= SMALL else inputs.append(_typed_input(t.name, t.data_type, t.dims)))
    for node in g.node:
        big = [a.t for a in node.attribute if a.name == "value" and a.HasField("t") and numel(a.t.dims) > SMALL]
        (inputs.append(_typed_input(node.output[0], big[0].data_type, big[0].dims)) if node.op_type == "Constant"
         and big else nodes.append(node))
    outputs = [helper.make_tensor_value_info(o.name, o.type.tensor_type.elem_type, None) for o in g.output]
    graph = helper.make_graph(nodes, "skeleton", inputs, outputs, small)
    out = helper.make_model(graph, opset_imports=list(model.opset_import))
    out.ir_version = max(model.ir_version, 4)
    return out


def _shapes(model: onnx.ModelProto, data_prop: bool) -> dict[str, tuple]:
    try:
        g = shape_inference.infer_shapes(model, strict_mode=True, data_prop=data_prop).graph
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError, ValueError) as e:
        shape = [d.dim_value or "?" for d in model.graph.input[0].type.tensor_type.shape.dim]
        raise ModelLoadError(f"The ONNX graph is inconsistent at a {shape[-1]}×{shape[-2]} input "
                             f"({type(e).__name__}); give the input size it was exported for.") from None
    out: dict[str, tuple] = {}
    for v in [*g.input, *g.initializer, *g.value_info, *g.output]:
        if isinstance(v, onnx.TensorProto):
            out[v.name] = (v.data_type, list(v.dims))
            continue
        tt = v.type.tensor_type
        known = tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim)
        out.setdefault(v.name, (tt.elem_type, [d.dim_value for d in tt.shape.dim] if known else None))
    return out


def _evaluate(node: onnx.NodeProto, values: dict[str, onnx.TensorProto], opset: int,
              known: dict[str, tuple]) -> list[onnx.TensorProto]:
    if node.op_type == "Shape":  # of a tensor whose shape is known: a constant, whatever the tensor's values
        dims = known[node.input[0]][1]
        start, end = (next((a.i for a in node.attribute if a.name == k), d) for k, d in (("start", 0), ("end", None)))
        return [numpy_helper.from_array(np.array(dims[start:end], np.int64), node.output[0])]
    value = next((a.t for a in node.attribute if a.name == "value" and a.HasField("t")), None)
    if node.op_type == "Constant" and value is not None:
        t = onnx.TensorProto()
        t.CopyFrom(value)
        t.name = node.output[0]
        return [t]
    run = ReferenceEvaluator(node, opsets={"": opset})
    feeds = {i: numpy_helper.to_array(values[i]) for i in node.input if i}
    return [numpy_helper.from_array(np.asarray(a), o) for o, a in zip(node.output, run.run(None, feeds), strict=False)]


def fold(model: onnx.ModelProto, *, rounds: int = 32, evaluations: int = EVALUATIONS) -> dict[str, tuple]:
    """Shape inference with small constant subgraphs evaluated (exporters compute shapes with Shape, ConstantOfShape,
    Where, Equal, Div, ... which ONNX's data propagation does not all follow): each round evaluates every node whose
    inputs are constants (or that takes the Shape of a tensor of known shape) and whose outputs inference knows to be
    small, then infers again; at most ``rounds`` times (each is one pass over the graph) and ``evaluations`` nodes
    (~0.4 ms each; Swin-T folds ~2,400, so Swin-B ~4,700). Returns the last inference."""
    g = model.graph
    opset = next((op.version for op in model.opset_import if op.domain in ("", "ai.onnx")), 17)
    for _ in range(rounds):
        known = _shapes(model, True)
        values = {t.name: t for t in g.initializer}
        kept = []
        for node in g.node:
            outs = [known.get(o, (0, None))[1] for o in node.output if o]
            shape_of_known = node.op_type == "Shape" and known.get(node.input[0], (0, None))[1] is not None
            if all(d is not None and numel(d) <= SMALL for d in outs) and (
                    shape_of_known or all(i in values for i in node.input if i)) and evaluations > 0:
                evaluations -= node.op_type not in ("Shape", "Constant")
                try:
                    for t in _evaluate(node, values, opset, known):
                        values[t.name] = t
                        g.initializer.append(t)
                    continue
                except Exception:  # noqa: BLE001, S112 - not foldable here: inference decides without its value
                    pass
            kept.append(node)
        if len(kept) == len(g.node):
            return known
        del g.node[:]
        g.node.extend(kept)
    return _shapes(model, True)


def infer(model: onnx.ModelProto, input_shape: list[int | str | None], *, data_prop: bool) -> dict[str, tuple]:
    """name -> (elem_type, dims or None when unknown) for every value of the skeleton at ``input_shape``; with
    ``data_prop`` small constant subgraphs are folded first (:func:`fold`), as the converted module computes them."""
    skel = skeleton(model, input_shape)
    return fold(skel) if data_prop else _shapes(skel, False)
