"""What an ONNX graph costs once onnx2torch has converted it, estimated from the graph alone, before anything is
converted or run: a graph is a recipe for allocations, and a small file can describe a huge model.

- **Weights as the converter materialises them** (:func:`weights`): onnx2torch copies an initializer into every node
  that reads it (a Conv's weight, or a buffer per use for any other operator), and a ``Constant`` node holds its
  tensor; so each initializer is counted once per use, at its *declared* size. ``Identity`` nodes that only rename a
  weight are resolved to the weight itself (:func:`resolve_identities`), so they cost nothing.
- **One batch-1 forward** (:func:`forward`): ONNX shape inference on a skeleton of the graph (:mod:`.onnx_shapes`: large weights
  replaced by typed inputs, so nothing is copied) at the chosen input size gives every intermediate tensor's shape; their bytes
  are summed and the FLOPs of Conv/Gemm/MatMul/Einsum computed arithmetically (other operators count one operation
  per element read or written). A tensor whose size inference cannot determine (it depends on the data) is refused:
  its memory cannot be bounded before running.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

import onnx

from ..errors import ModelLoadError
from ..untrusted.messages import shown
from .onnx_shapes import infer, itemsize, numel

_WEIGHT_OPS = ("Conv", "ConvTranspose", "Gemm", "BatchNormalization", "InstanceNormalization", "LayerNormalization")


@dataclass(frozen=True)
class Forward:
    """Activation bytes and FLOPs of one batch-1 forward, and the largest tensor (name, bytes)."""

    activation_bytes: int
    flops: int
    largest: tuple[str, int]


def tensor_bytes(t: onnx.TensorProto) -> tuple[int, int]:
    """(elements, bytes) a tensor takes once converted: its declared dims, never fewer than the bytes it carries."""
    n = numel(t.dims)
    return n, max(n * itemsize(t.data_type), len(t.raw_data))


def resolve_identities(graph: onnx.GraphProto) -> int:
    """Point every reader of an ``Identity`` of a weight at the weight itself and drop those Identity nodes (torch's
    exporter routes a shared bias through them); nothing is copied. Returns how many were resolved."""
    source = {t.name: t.name for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    kept = []
    for node in graph.node:
        if node.op_type == "Identity" and len(node.input) == 1 and node.input[0] in source \
                and node.output[0] not in outputs:
            source[node.output[0]] = source[node.input[0]]
        else:
            kept.append(node)
    if len(kept) == len(graph.node):
        return 0
    resolved = len(graph.node) - len(kept)
    for node in kept:
        for i, name in enumerate(node.input):
            if name in source and source[name] != name:
                node.input[i] = source[name]
    del graph.node[:]
    graph.node.extend(kept)
    return resolved


def weights(graph: onnx.GraphProto) -> tuple[int, int, int]:
    """(elements, bytes, reads) of every tensor the converted module will hold: each initializer once per node input
    that reads it, each Constant node's value (sparse ones at their dense size). ``reads`` counts the reads by
    operators other than Conv/Gemm/norms: onnx2torch registers a buffer for each and counts its buffers at each one,
    so converting takes time quadratic in them."""
    sizes = {t.name: tensor_bytes(t) for t in graph.initializer}
    for sp in graph.sparse_initializer:
        n = numel(sp.dims)
        sizes[sp.values.name] = (n, n * itemsize(sp.values.data_type))
    elements = nbytes = reads = 0
    for node in graph.node:
        for name in node.input:
            n, b = sizes.get(name, (-1, 0))
            reads += n >= 0 and node.op_type not in _WEIGHT_OPS
            elements, nbytes = elements + max(n, 0), nbytes + b
        if node.op_type == "Constant":
            for a in node.attribute:
                n, b = (tensor_bytes(a.t) if a.HasField("t") else
                        (numel(a.sparse_tensor.dims), numel(a.sparse_tensor.dims) * 8) if a.HasField("sparse_tensor")
                        else (len(a.floats) + len(a.ints), 8 * (len(a.floats) + len(a.ints))))
                elements, nbytes = elements + n, nbytes + b
    return elements, nbytes, reads


def kernel_mismatch(graph: onnx.GraphProto) -> str | None:
    """The name of a Conv whose ``kernel_shape`` differs from its weight's (onnx2torch allocates a module of the
    declared kernel first); None when all agree."""
    dims = {t.name: list(t.dims) for t in graph.initializer}
    for n in graph.node:
        kernel = next((list(a.ints) for a in n.attribute if a.name == "kernel_shape"), None)
        if n.op_type in ("Conv", "ConvTranspose") and kernel is not None and len(n.input) > 1 \
                and n.input[1] in dims and dims[n.input[1]][2:] != kernel:
            return n.name or n.output[0]
    return None


def _einsum(equation: str, shapes: list[list[int]]) -> int:
    sizes: dict[str, int] = {}
    for term, dims in zip(equation.replace(" ", "").split("->")[0].split(","), shapes, strict=False):
        letters = [c for c in term if c in string.ascii_letters]
        extra = dims[:len(dims) - len(letters)] if "..." in term else []
        sizes.update(zip(letters, dims[len(extra):], strict=False))
        sizes["..."] = max(sizes.get("...", 1), numel(extra))
    return 2 * math.prod(sizes.values())


def node_flops(node: onnx.NodeProto, shapes: list[list[int]], outs: list[list[int]]) -> int:
    """FLOPs of one node from its input and output shapes (multiply-adds count 2, as torch's FlopCounterMode)."""
    out = sum(numel(s) for s in outs)
    op = node.op_type
    if op == "Conv" and len(shapes) > 1:
        return 2 * out * numel(shapes[1][1:])
    if op == "ConvTranspose" and len(shapes) > 1:
        return 2 * numel(shapes[0]) * numel(shapes[1][1:])
    if op in ("Gemm", "MatMul") and shapes and shapes[0]:
        trans = any(a.name == "transA" and a.i for a in node.attribute)
        return 2 * out * shapes[0][0 if trans and op == "Gemm" else -1]
    if op == "Einsum":
        eq = next((a.s.decode("utf-8", "replace") for a in node.attribute if a.name == "equation"), "")
        return _einsum(eq, shapes)
    if op in ("MaxPool", "AveragePool", "LpPool"):
        return out * numel(next((a.ints for a in node.attribute if a.name == "kernel_shape"), [1]))
    return max(out, sum(numel(s) for s in shapes))


def forward(model: onnx.ModelProto, size: tuple[int, int]) -> Forward:
    """Activation bytes and FLOPs of one batch-1 forward at ``size`` (H, W); refuses data-dependent sizes."""
    known = infer(model, [1, 3, *size], data_prop=True)
    total = flops = 0
    largest = ("", 0)
    for node in model.graph.node:
        shapes, outs = [], []
        for name in node.input:
            if name:
                shapes.append(known.get(name, (0, []))[1] or [])
        for name in node.output:
            if not name:
                continue
            elem, dims = known.get(name, (0, None))
            if dims is None:
                raise ModelLoadError(f"The size of the ONNX tensor {shown(name)} ({node.op_type}) depends on the data, "
                                     "so its memory cannot be bounded before running; export with a fixed input "
                                     "size (no dynamic_axes) and no data-dependent shapes.")
            nbytes = numel(dims) * itemsize(elem)
            total += nbytes
            largest = max(largest, (name, nbytes), key=lambda x: x[1])
            outs.append(dims)
        flops += node_flops(node, shapes, outs)
    return Forward(total, flops, largest)


def layer_norm_mismatch(model: onnx.ModelProto, declared: list[int | str | None]) -> str | None:
    """The name of a LayerNormalization whose scale does not fit its input (onnx2torch builds nn.LayerNorm from the
    *inferred* input shape, allocating its own weights of that size); None when all fit."""
    inits = {t.name: numel(t.dims) for t in model.graph.initializer}
    lns = [n for n in model.graph.node if n.op_type == "LayerNormalization" and len(n.input) > 1
           and all(i in inits for i in n.input[1:] if i)]
    if not lns:
        return None
    known = infer(model, declared, data_prop=False)
    for n in lns:
        dims = known.get(n.input[0], (0, None))[1]
        axis = next((a.i for a in n.attribute if a.name == "axis"), -1)
        if dims and all(dims) and numel(dims[axis:]) != inits[n.input[1]]:
            return n.name or n.output[0]
    return None
