"""The parsed ONNX graph: plain Python objects read once from the protobuf.

``parse_model(source)`` reads a path, bytes or an ``onnx.ModelProto`` (the ``onnx`` package
is needed only here, imported lazily) and returns a :class:`Graph`: its inputs and outputs
as :class:`ValueInfo`, initializers as numpy arrays, nodes as :class:`Node` with decoded
attributes, the opset imports, and the model-local functions inlined. ``Graph.order()``
gives the nodes in topological order and reports cycles and undefined inputs by name.
Nothing here computes; the session plans and runs the graph (session.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, Any]

#: The domains rnnkit implements (the default ONNX domain has two spellings).
DEFAULT_DOMAINS = ("", "ai.onnx")

_EXTRA = "pip install rnnkit[onnx]"


class OnnxError(ValueError):
    """A model rnnkit cannot read or run, with the node, op and what is missing."""


def import_onnx() -> Any:
    """The ``onnx`` package, or ImportError naming the extra that installs it."""
    try:
        import onnx
    except ImportError as e:
        raise ImportError(
            f"rnnkit.onnx needs the 'onnx' package to read and write .onnx files: {_EXTRA}"
        ) from e
    return onnx


# ONNX TensorProto.DataType -> numpy dtype and ONNX Runtime's type string.
_ELEM_TYPES: dict[int, tuple[Any, str]] = {
    1: (np.float32, "tensor(float)"),
    2: (np.uint8, "tensor(uint8)"),
    3: (np.int8, "tensor(int8)"),
    4: (np.uint16, "tensor(uint16)"),
    5: (np.int16, "tensor(int16)"),
    6: (np.int32, "tensor(int32)"),
    7: (np.int64, "tensor(int64)"),
    9: (np.bool_, "tensor(bool)"),
    10: (np.float16, "tensor(float16)"),
    11: (np.float64, "tensor(double)"),
    12: (np.uint32, "tensor(uint32)"),
    13: (np.uint64, "tensor(uint64)"),
}


def numpy_dtype(elem_type: int, where: str) -> np.dtype:
    """numpy dtype of an ONNX element type; OnnxError for types numpy cannot hold."""
    if elem_type not in _ELEM_TYPES:
        raise OnnxError(
            f"{where}: element type {elem_type} ({_type_name(elem_type)}) is not supported; "
            "rnnkit handles float, double, float16, bool and the integer types"
        )
    return np.dtype(_ELEM_TYPES[elem_type][0])


def type_string(elem_type: int) -> str:
    """ONNX Runtime's type string, e.g. ``'tensor(float)'``."""
    if elem_type in _ELEM_TYPES:
        return _ELEM_TYPES[elem_type][1]
    return f"tensor({_type_name(elem_type).lower()})"


def _type_name(elem_type: int) -> str:
    try:
        onnx = import_onnx()
        return str(onnx.TensorProto.DataType.Name(elem_type))
    except (ImportError, ValueError):
        return "unknown"


@dataclass
class ValueInfo:
    """A graph input or output: name, element type and shape (ints, names or None)."""

    name: str
    elem_type: int
    shape: list[int | str | None] | None  # None: rank unknown

    @property
    def dtype(self) -> np.dtype | None:
        return np.dtype(_ELEM_TYPES[self.elem_type][0]) if self.elem_type in _ELEM_TYPES else None

    @property
    def type(self) -> str:
        return type_string(self.elem_type)


@dataclass
class Node:
    """One node: op, domain, input/output names ('' for a missing optional one), attributes."""

    name: str
    op_type: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    subgraphs: dict[str, Graph] = field(default_factory=dict)

    def label(self) -> str:
        """How errors name the node: ``LSTM node 'lstm_1'``."""
        dom = f"{self.domain}." if self.domain not in DEFAULT_DOMAINS else ""
        return f"{dom}{self.op_type} node {self.name!r}"


@dataclass
class Graph:
    """A parsed graph (the main graph or a subgraph of Scan/Loop)."""

    name: str
    inputs: list[ValueInfo]
    outputs: list[ValueInfo]
    initializers: dict[str, np.ndarray]
    nodes: list[Node]
    opsets: dict[str, int]
    value_infos: dict[str, ValueInfo] = field(default_factory=dict)

    def order(self, outer: set[str] | None = None) -> list[Node]:
        """Nodes in an order where every input is produced before use.

        ``outer`` names values visible from an enclosing graph (for subgraphs). Raises
        OnnxError naming a node whose input nothing defines, a value defined twice, or the
        nodes of a cycle.
        """
        defined = set(outer or ()) | {v.name for v in self.inputs} | set(self.initializers)
        producer: dict[str, int] = {}
        for k, node in enumerate(self.nodes):
            for out in node.outputs:
                if not out:
                    continue
                if out in producer or out in {v.name for v in self.inputs}:
                    raise OnnxError(f"{node.label()}: output {out!r} is defined twice in the graph")
                producer[out] = k
        for node in self.nodes:
            for name in node.inputs + _captured(node):
                if name and name not in defined and name not in producer:
                    raise OnnxError(
                        f"{node.label()}: input {name!r} is not a graph input, an initializer "
                        "or the output of any node"
                    )
        # Kahn's algorithm, keeping the file's order among ready nodes.
        deps = [
            {producer[n] for n in node.inputs + _captured(node) if n and n in producer}
            for node in self.nodes
        ]
        users: dict[int, list[int]] = {}
        for k, d in enumerate(deps):
            for p in d:
                users.setdefault(p, []).append(k)
        waiting = [len(d) for d in deps]
        ready = [k for k, w in enumerate(waiting) if w == 0]
        out: list[int] = []
        while ready:
            ready.sort(reverse=True)
            k = ready.pop()
            out.append(k)
            for u in users.get(k, ()):
                waiting[u] -= 1
                if waiting[u] == 0:
                    ready.append(u)
        if len(out) != len(self.nodes):
            stuck = [self.nodes[k].label() for k in range(len(self.nodes)) if waiting[k] > 0]
            raise OnnxError(f"the graph has a cycle through {', '.join(stuck[:5])}")
        for v in self.outputs:
            if v.name not in defined and v.name not in producer:
                raise OnnxError(f"graph output {v.name!r} is not produced by any node")
        return [self.nodes[k] for k in out]


def _captured(node: Node) -> list[str]:
    """Names a node's subgraphs read from the enclosing scope."""
    names: list[str] = []
    for g in node.subgraphs.values():
        local = {v.name for v in g.inputs} | set(g.initializers)
        for n in g.nodes:
            local |= set(n.outputs)
        for n in g.nodes:
            names += [i for i in n.inputs + _captured(n) if i and i not in local]
    return names


# --------------------------------------------------------------------------- reading


def load_proto(source: Source) -> Any:
    """An ``onnx.ModelProto`` from a path, bytes or a ModelProto, with clear errors."""
    onnx = import_onnx()
    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        where = f"the {len(data)} bytes given"
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"rnnkit.onnx: no such model file: {path!r}")
        try:
            return onnx.load(path)
        except Exception as e:  # protobuf DecodeError and external-data errors
            raise OnnxError(f"{path!r} is not a readable ONNX model ({e})") from None
    else:
        raise TypeError(
            "rnnkit.onnx: the model must be a path, bytes or an onnx.ModelProto; "
            f"got {type(source).__name__}"
        )
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:
        raise OnnxError(f"{where} are not a valid ONNX model ({e})") from None
    return model


def _check_text(model: Any, where: str) -> None:
    """Every string field of ``model`` (names, op types, domains, attribute strings) must be
    text: protobuf hands back bytes for a string field that is not valid UTF-8."""
    from google.protobuf.descriptor import FieldDescriptor
    from google.protobuf.message import Message

    stack = [(model, "model")]
    while stack:
        msg, path = stack.pop()
        for fd, value in msg.ListFields():
            if fd.type not in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE):
                continue
            values = [value] if isinstance(value, (str, bytes, Message)) else list(value)
            if fd.type == FieldDescriptor.TYPE_STRING:
                if any(not isinstance(v, str) for v in values):
                    raise OnnxError(f"{where}: {path}.{fd.name} is not valid UTF-8 text")
            elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                stack.extend((v, f"{path}.{fd.name}") for v in values)


def parse_model(source: Source) -> Graph:
    """The main graph of a model, with functions inlined; see the module docstring."""
    model = load_proto(source)
    _check_text(model, "the model")
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise OnnxError("the model has no graph (empty or truncated file?)")
    opsets: dict[str, int] = {}
    for imp in model.opset_import:
        dom = "" if imp.domain in DEFAULT_DOMAINS else imp.domain
        opsets[dom] = int(imp.version)
    if not model.opset_import:
        opsets[""] = 1  # IR < 3 models without opset_import
    functions = {(f.domain, f.name): f for f in model.functions}
    return _parse_graph(model.graph, opsets, functions)


def _parse_graph(g: Any, opsets: dict[str, int], functions: dict) -> Graph:
    inits: dict[str, np.ndarray] = {}
    for t in g.initializer:
        inits[t.name] = _tensor(t, f"initializer {t.name!r}")
    if len(g.sparse_initializer):
        name = g.sparse_initializer[0].values.name
        raise OnnxError(f"sparse initializer {name!r}: sparse tensors are not supported")
    inputs = [_value_info(v) for v in g.input if v.name not in inits]
    outputs = [_value_info(v) for v in g.output]
    infos = {v.name: _value_info(v) for v in g.value_info}
    nodes: list[Node] = []
    counter = [0]
    for n in g.node:
        nodes += _expand(n, opsets, functions, counter)
    return Graph(g.name, inputs, outputs, inits, nodes, dict(opsets), infos)


def _tensor(t: Any, where: str) -> np.ndarray:
    from onnx import numpy_helper

    if t.data_location == 1:  # EXTERNAL
        raise OnnxError(
            f"{where} keeps its data in an external file; load the model from its path "
            "(not bytes) so that the data can be found"
        )
    if t.data_type not in _ELEM_TYPES:
        raise OnnxError(f"{where}: element type {_type_name(t.data_type)} is not supported")
    try:
        arr = numpy_helper.to_array(t)
    except Exception as e:
        raise OnnxError(f"{where} is malformed ({e})") from None
    expected = tuple(int(d) for d in t.dims)
    if arr.shape != expected:
        raise OnnxError(f"{where} holds {arr.size} values for shape {list(expected)}")
    return arr if arr.flags.c_contiguous else arr.copy(order="C")  # (keeps 0-d arrays 0-d)


def _value_info(v: Any) -> ValueInfo:
    kind = v.type.WhichOneof("value")
    if kind is None:  # legal for outputs: the type follows from the graph
        return ValueInfo(v.name, 0, None)
    if kind != "tensor_type":
        raise OnnxError(f"value {v.name!r} has type {kind}; rnnkit handles tensors only")
    tt = v.type.tensor_type
    shape: list[int | str | None] | None = None
    if tt.HasField("shape"):
        shape = []
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                shape.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                shape.append(d.dim_param)
            else:
                shape.append(None)
    return ValueInfo(v.name, int(tt.elem_type), shape)


def _attrs(n: Any, opsets: dict[str, int], functions: dict) -> tuple[dict, dict]:
    onnx = import_onnx()
    attrs: dict[str, Any] = {}
    graphs: dict[str, Graph] = {}
    for a in n.attribute:
        if a.ref_attr_name:
            raise OnnxError(
                f"attribute {a.name!r} refers to {a.ref_attr_name!r} outside a function"
            )
        if a.type == onnx.AttributeProto.GRAPH:
            graphs[a.name] = _parse_graph(a.g, opsets, functions)
            continue
        if a.type == onnx.AttributeProto.TENSOR:
            attrs[a.name] = _tensor(a.t, f"attribute {a.name!r} of node {n.name!r}")
            continue
        try:
            value = onnx.helper.get_attribute_value(a)
        except Exception as e:
            raise OnnxError(f"attribute {a.name!r} of node {n.name!r} is malformed ({e})") from None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [s.decode("utf-8", "replace") for s in value]
        elif a.type in (onnx.AttributeProto.GRAPHS, onnx.AttributeProto.SPARSE_TENSOR):
            raise OnnxError(f"attribute {a.name!r} of node {n.name!r}: type not supported")
        attrs[a.name] = value
    return attrs, graphs


def _expand(n: Any, opsets: dict[str, int], functions: dict, counter: list[int]) -> list[Node]:
    """The node itself, or the body of the model-local function it calls, renamed."""
    domain = "" if n.domain in DEFAULT_DOMAINS else n.domain
    key = (n.domain, n.op_type)
    if key not in functions:
        attrs, graphs = _attrs(n, opsets, functions)
        counter[0] += 1
        name = n.name or f"{n.op_type}_{counter[0]}"
        return [Node(name, n.op_type, domain, list(n.input), list(n.output), attrs, graphs)]
    return _inline(n, functions[key], opsets, functions, counter)


def _inline(n: Any, f: Any, opsets: dict[str, int], functions: dict, counter: list[int]) -> list:
    """Inline one call of a model-local function: rename its values, bind attribute refs."""
    onnx = import_onnx()
    counter[0] += 1
    prefix = f"{n.name or f.name}__{counter[0]}/"
    rename: dict[str, str] = {}
    for formal, actual in zip(f.input, n.input):
        rename[formal] = actual
    for formal in list(f.input)[len(n.input) :]:
        rename[formal] = ""
    for formal, actual in zip(f.output, n.output):
        rename[formal] = actual
    given = {a.name: a for a in n.attribute}
    defaults = {a.name: a for a in f.attribute_proto}
    out: list[Node] = []
    for body in f.node:
        node = onnx.NodeProto()
        node.CopyFrom(body)
        node.ClearField("attribute")
        for a in body.attribute:
            if a.ref_attr_name:
                src = given.get(a.ref_attr_name) or defaults.get(a.ref_attr_name)
                if src is None:
                    continue
                b = onnx.AttributeProto()
                b.CopyFrom(src)
                b.name = a.name
                node.attribute.append(b)
            else:
                node.attribute.append(a)
        del node.input[:]
        del node.output[:]
        node.input.extend(rename.setdefault(x, prefix + x) if x else "" for x in body.input)
        node.output.extend(rename.setdefault(x, prefix + x) if x else "" for x in body.output)
        node.name = prefix + (body.name or body.op_type)
        out += _expand(node, opsets, functions, counter)
    return out
