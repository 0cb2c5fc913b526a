"""``rnnkit.onnx.InferenceSession``: ONNX Runtime's session API over rnnkit's interpreter.

Creating a session reads the model (graph.py), checks the opset imports and every node
against the op registry (ops.py, recurrent.py), builds each node's kernel once (attributes
parsed, weights converted, recurrent nodes bound to rnnkit core modules), folds the nodes
whose inputs are all constants, and drops the nodes no output needs. Anything it cannot
run fails here, naming the node, its op and what is missing. ``run`` then only checks the
feeds and calls the planned kernels in order over a list of slots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import recurrent  # noqa: F401  (registers LSTM, GRU, RNN)
from .graph import (
    DEFAULT_DOMAINS,
    Graph,
    Node,
    OnnxError,
    Source,
    ValueInfo,
    _captured,
    parse_model,
)
from .ops import MAX_OPSET, MIN_OPSET, REGISTRY, OpContext


@dataclass(frozen=True)
class NodeArg:
    """A graph input or output as ONNX Runtime describes it.

    ``name``; ``shape``: a list of ints (fixed sizes), strings (named dynamic sizes such as
    ``'batch'``) and None (unknown sizes); ``type``: ONNX Runtime's string, e.g.
    ``'tensor(float)'``.
    """

    name: str
    shape: list[int | str | None]
    type: str


@dataclass
class _Step:
    kernel: Any
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    node: Node

    def run(self, env: list[Any]) -> None:
        for slot, value in zip(self.outputs, self.kernel(*[env[i] for i in self.inputs])):
            env[slot] = value


class _RunError(ValueError):
    """A node failed during run (already named): passed through enclosing Loop steps."""


def _execute(steps: list[Any], env: list[Any]) -> None:
    for step in steps:
        try:
            step.run(env)
        except _RunError:
            raise
        except (ValueError, TypeError, IndexError) as e:
            raise _RunError(f"[InferenceSession.run] {step.node.label()} failed: {e}") from None


@dataclass
class _LoopStep:
    """ONNX Loop: the body's steps (planned into the same slots, so that they read the
    enclosing graph's values directly) run while the trip count and the condition allow;
    loop-carried values pass from the body's outputs to its inputs; scan outputs are stacked
    along a new first axis."""

    node: Node
    inputs: tuple[int, ...]  # M, cond, carried...
    outputs: tuple[int, ...]  # final carried..., scans...
    body: list[Any]
    body_in: tuple[int, ...]  # iteration number, cond, carried...
    body_out: tuple[int, ...]  # cond, carried..., scans...
    scan_dtypes: tuple[np.dtype, ...]

    def run(self, env: list[Any]) -> None:
        m_slot, cond_slot, *carried_slots = self.inputs
        trips = None if m_slot == 0 else _scalar(env[m_slot], "trip count M", np.integer)
        cond = True if cond_slot == 0 else bool(_scalar(env[cond_slot], "cond", np.bool_))
        carried = [env[i] for i in carried_slots]
        n = len(carried)
        scans: list[list[Any]] = [[] for _ in self.scan_dtypes]
        i = 0
        while cond and (trips is None or i < trips):
            env[self.body_in[0]] = np.array(i, np.int64)
            env[self.body_in[1]] = np.array(cond)
            for slot, value in zip(self.body_in[2:], carried):
                env[slot] = value
            _execute(self.body, env)
            cond = bool(_scalar(env[self.body_out[0]], "the body's condition", np.bool_))
            carried = [env[k] for k in self.body_out[1 : 1 + n]]
            for acc, k in zip(scans, self.body_out[1 + n :]):
                acc.append(env[k])
            i += 1
        results = carried + [
            np.stack(acc) if acc else np.zeros((0,), dt) for acc, dt in zip(scans, self.scan_dtypes)
        ]
        for slot, value in zip(self.outputs, results):
            env[slot] = value


def _scalar(value: Any, what: str, kind: type) -> Any:
    a = np.asarray(value)
    if a.size != 1 or not np.issubdtype(a.dtype, kind):
        raise ValueError(f"{what} must be a single {kind.__name__} value; got {a.dtype} {a.shape}")
    return a.reshape(()).item()


class InferenceSession:
    """Run an ONNX model on rnnkit: the API of ``onnxruntime.InferenceSession``.

    Parameters
    ----------
    path_or_bytes : str, os.PathLike, bytes or onnx.ModelProto
        The model. Reading a file or bytes needs the ``onnx`` package
        (``pip install rnnkit[onnx]``).
    sess_options, providers, provider_options
        Accepted for drop-in compatibility with ONNX Runtime and ignored: rnnkit's thread
        count is ``rnnkit.set_num_threads``.

    Raises
    ------
    OnnxError (a ValueError)
        At creation, for a malformed model or anything rnnkit cannot run: the message names
        the node, its op type and what is missing.

    Examples
    --------
    >>> sess = InferenceSession("model.onnx")        # doctest: +SKIP
    >>> (y,) = sess.run(None, {"x": x})              # doctest: +SKIP
    """

    def __init__(
        self,
        path_or_bytes: Source,
        sess_options: Any = None,
        providers: Any = None,
        provider_options: Any = None,
        **kwargs: Any,
    ) -> None:
        graph = parse_model(path_or_bytes)
        _check_opsets(graph)
        self._graph = graph
        self._inputs = [_node_arg(v) for v in graph.inputs]
        self._outputs = [_node_arg(v) for v in graph.outputs]
        self._plan(graph)

    # ------------------------------------------------------------------ ORT's API

    def get_inputs(self) -> list[NodeArg]:
        """The inputs a run needs (initializers are not listed)."""
        return list(self._inputs)

    def get_outputs(self) -> list[NodeArg]:
        """The graph outputs, in order."""
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        """``['rnnkit']``: where the session runs."""
        return ["rnnkit"]

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: dict[str, Any],
        run_options: Any = None,
    ) -> list[np.ndarray]:
        """Compute ``output_names`` (None or empty: all outputs) from ``input_feed``.

        Parameters
        ----------
        output_names : list of str or None
        input_feed : dict of str to ndarray
            One array per graph input, of its type and rank (sizes fixed in the model must
            match; named or unknown sizes are free).

        Returns
        -------
        list of ndarray
            In the order of ``output_names``.
        """
        if output_names:
            try:
                out_slots = [self._output_slot[n] for n in output_names]
            except (KeyError, TypeError):
                bad = [n for n in output_names if n not in self._output_slot]
                raise ValueError(
                    f"[InferenceSession.run] unknown output name(s) {bad}; the model's outputs "
                    f"are {[o.name for o in self._outputs]}"
                ) from None
        else:
            out_slots = self._all_outputs
        if not isinstance(input_feed, dict):
            raise TypeError(
                f"[InferenceSession.run] input_feed must be a dict of name to array; got "
                f"{type(input_feed).__name__}"
            )
        env = self._template.copy()
        for name, value in input_feed.items():
            check = self._feeds.get(name)
            if check is None:
                raise ValueError(
                    f"[InferenceSession.run] {name!r} is not an input of the model; its inputs "
                    f"are {[i.name for i in self._inputs]}"
                )
            env[check[0]] = _check_feed(name, value, check[1], check[2])
        if len(input_feed) != len(self._feeds):
            missing = [n for n in self._feeds if n not in input_feed]
            raise ValueError(f"[InferenceSession.run] missing input(s) {missing}")
        _execute(self._steps, env)
        feeds = [id(_root(env[slot])) for slot, _, _ in self._feeds.values()]
        return [_as_output(env[i], feeds) for i in out_slots]

    # ------------------------------------------------------------------ planning

    def _plan(self, graph: Graph) -> None:
        slots: dict[str, int] = {"": 0}
        template: list[Any] = [None]

        def slot(name: str) -> int:
            if name not in slots:
                slots[name] = len(template)
                template.append(None)
            return slots[name]

        for name, value in graph.initializers.items():
            value.flags.writeable = False
            template[slot(name)] = value
        self._feeds: dict[str, tuple[int, np.dtype, list]] = {}
        for v in graph.inputs:
            dtype = v.dtype
            if dtype is None:
                raise OnnxError(
                    f"graph input {v.name!r} has type {v.type}, which rnnkit cannot feed"
                )
            self._feeds[v.name] = (slot(v.name), dtype, v.shape)
        self._steps = _plan_nodes(graph, slots, slot, template, None)
        self._template = template
        self._output_slot = {v.name: slot(v.name) for v in graph.outputs}
        self._all_outputs = [self._output_slot[v.name] for v in graph.outputs]


def _plan_nodes(
    graph: Graph, slots: dict[str, int], slot: Any, template: list[Any], outer: set[str] | None
) -> list[Any]:
    """The steps of ``graph``'s needed nodes, in order, with constants folded into
    ``template``; ``outer``: the names an enclosing graph defines (for a Loop body)."""
    needed = _needed(graph)
    declared = {**graph.value_infos, **{v.name: v for v in graph.inputs}}
    steps: list[Any] = []
    for node in graph.order(outer):
        if not any(o in needed for o in node.outputs if o):
            continue
        opdef = _lookup(node, graph)
        version = graph.opsets.get(node.domain, 0)
        opdef.check(node, version)
        ins = tuple(slot(n) for n in node.inputs)
        if node.op_type == "Loop":
            steps.append(_plan_loop(node, ins, graph, slots, slot, template))
            continue
        const = [template[i] if n else None for i, n in zip(ins, node.inputs)]
        shapes = [declared[n].shape if n in declared else None for n in node.inputs]
        ctx = OpContext(node, version, const, shapes)
        try:
            kernel = opdef.factory(ctx)
        except OnnxError:
            raise
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise OnnxError(f"{node.label()}: {e}") from None
        outs = tuple(slot(n) for n in node.outputs)
        present = [n for n in node.inputs if n]
        if all(template[slots[n]] is not None for n in present):
            try:  # every input is known now: compute once (constant folding)
                results = kernel(*[template[i] for i in ins])
            except (ValueError, TypeError, IndexError) as e:
                raise OnnxError(f"{node.label()} fails on its constant inputs: {e}") from None
            for i, r in zip(outs, results):
                if isinstance(r, np.ndarray):
                    r.flags.writeable = False
                template[i] = r
            continue
        steps.append(_Step(kernel, ins, outs, node))
    return steps


def _plan_loop(
    node: Node, ins: tuple[int, ...], graph: Graph, slots: dict[str, int], slot: Any, template: list
) -> _LoopStep:
    body = node.subgraphs.get("body")
    if body is None:
        raise OnnxError(f"{node.label()}: has no body graph")
    n = len(node.inputs) - 2
    k = len(node.outputs) - n
    if len(body.inputs) != n + 2 or len(body.outputs) != n + k + 1 or k < 0:
        raise OnnxError(
            f"{node.label()}: its body takes {len(body.inputs)} inputs and gives "
            f"{len(body.outputs)} outputs; a Loop with {n} loop-carried values and "
            f"{len(node.outputs)} outputs needs {n + 2} and {len(node.outputs) + 1}"
        )
    local = [v.name for v in body.inputs] + list(body.initializers)
    local += [o for b in body.nodes for o in b.outputs if o]
    shadowed = sorted({name for name in local if name in slots})
    if shadowed:
        raise OnnxError(
            f"{node.label()}: its body redefines {shadowed[:5]}, names of the enclosing graph; "
            "rnnkit runs a body in the enclosing graph's namespace"
        )
    for name, value in body.initializers.items():
        value.flags.writeable = False
        template[slot(name)] = value
    body_in = tuple(slot(v.name) for v in body.inputs)
    steps = _plan_nodes(body, slots, slot, template, set(slots))
    body_out = tuple(slot(v.name) for v in body.outputs)
    scan_dtypes = []
    for v in body.outputs[1 + n :]:
        dtype = v.dtype
        if dtype is None:
            raise OnnxError(f"{node.label()}: scan output {v.name!r} has no tensor type")
        scan_dtypes.append(dtype)
    outs = tuple(slot(o) for o in node.outputs)
    return _LoopStep(node, ins, outs, steps, body_in, body_out, tuple(scan_dtypes))


def _lookup(node: Node, graph: Graph) -> Any:
    if node.domain not in DEFAULT_DOMAINS:
        raise OnnxError(
            f"{node.label()}: domain {node.domain!r} is not supported (rnnkit runs the default "
            "ONNX domain, ai.onnx)"
        )
    opdef = REGISTRY.get(node.op_type)
    if opdef is None:
        raise OnnxError(
            f"{node.label()}: op {node.op_type!r} is not supported by rnnkit.onnx; supported "
            f"ops: {', '.join(sorted(REGISTRY))}"
        )
    return opdef


def _check_opsets(graph: Graph) -> None:
    version = graph.opsets.get("")
    if version is None:
        raise OnnxError("the model imports no opset of the default ONNX domain")
    if not MIN_OPSET <= version <= MAX_OPSET:
        raise OnnxError(
            f"the model imports opset {version} of ai.onnx; rnnkit.onnx reads opsets "
            f"{MIN_OPSET} to {MAX_OPSET}"
        )


def _needed(graph: Graph) -> set[str]:
    """Values the graph outputs depend on."""
    producer = {o: n for n in graph.nodes for o in n.outputs if o}
    need = {v.name for v in graph.outputs}
    stack = list(need)
    while stack:
        n = producer.get(stack.pop())
        if n is None:
            continue
        for i in n.inputs + _captured(n):
            if i and i not in need:
                need.add(i)
                stack.append(i)
    return need


def _node_arg(v: ValueInfo) -> NodeArg:
    return NodeArg(v.name, list(v.shape) if v.shape is not None else [], v.type)


def _check_feed(name: str, value: Any, dtype: np.dtype, shape: list | None) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        value = np.asarray(value)
    if value.dtype != dtype:
        raise TypeError(
            f"[InferenceSession.run] input {name!r} has dtype {value.dtype}; the model expects "
            f"{dtype} ({_type_of(dtype)})"
        )
    if shape is not None:
        if value.ndim != len(shape):
            raise ValueError(
                f"[InferenceSession.run] input {name!r} has {value.ndim} dims (shape "
                f"{list(value.shape)}); the model expects {len(shape)}: {shape}"
            )
        for k, (got, want) in enumerate(zip(value.shape, shape)):
            if isinstance(want, int) and got != want:
                raise ValueError(
                    f"[InferenceSession.run] input {name!r} has shape {list(value.shape)}; "
                    f"the model expects {shape} (axis {k} must be {want})"
                )
    return value


def _type_of(dtype: np.dtype) -> str:
    names = {"float32": "float", "float64": "double"}
    return f"tensor({names.get(dtype.name, dtype.name)})"


def _root(a: np.ndarray) -> Any:
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


def _as_output(value: Any, feeds: list[int]) -> np.ndarray:
    """A C-contiguous array the caller may keep and write: computed buffers are returned
    as they are; constants, broadcast views and views of a feed are copied."""
    value = np.asarray(value)
    if value.flags.c_contiguous and value.flags.writeable and id(_root(value)) not in feeds:
        return value
    return np.array(value, copy=True, order="C")
