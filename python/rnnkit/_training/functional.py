"""The functional API's graph: symbolic tensors, the nodes layers add when called on them, and
the forward and backward passes of a graph of nodes.

``Input(shape)`` returns a :class:`KerasTensor`, a shape and a dtype with no values. Calling a
layer on symbolic tensors builds the layer for their shapes, records a :class:`Node` (the
layer, the tensors it read, the tensors it made) and returns symbolic outputs. A
:class:`Graph` is the set of nodes between given input and output tensors, in topological
order; it runs them forward on arrays, and backward in reverse, summing the gradients of a
tensor read by several nodes. A layer called in several nodes (a shared layer) keeps each
training call's caches apart (``Layer._detach_call_state``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Array, Layer, Shape, format_shape


class KerasTensor:
    """A symbolic tensor: the shape (batch axis first, ``None`` where free) and dtype of a
    value in a graph being built. It holds no data; layers called on it return more of them,
    and :class:`rnnkit.Model` turns inputs and outputs into a model that runs on arrays."""

    __slots__ = ("_index", "_node", "dtype", "name", "shape")

    def __init__(
        self, shape: Shape, dtype: Any, node: Node | None = None, index: int = 0, name: str = ""
    ) -> None:
        self.shape: Shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self._node = node
        self._index = index
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def _keras_history(self) -> tuple[Layer, int, int]:
        """(layer, node index in that layer, output index in that node), as Keras's."""
        assert self._node is not None
        return self._node.layer, self._node.layer._nodes.index(self._node), self._index

    def __repr__(self) -> str:
        return (
            f"<KerasTensor shape={format_shape(self.shape)}, dtype={self.dtype.name}, "
            f"name={self.name}>"
        )

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{self!r} is symbolic: it has no values. Build a model from it "
            "(rnnkit.Model(inputs, outputs)) and call the model on arrays"
        )

    def __bool__(self) -> bool:
        raise TypeError(f"{self!r} is symbolic: it has no truth value")

    def _no_operator(self, *args: Any) -> Any:
        raise TypeError(
            f"{self!r} is symbolic and rnnkit has no operators on symbolic tensors; use the "
            "layers Add, Subtract, Multiply, Concatenate or Dot"
        )

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _no_operator
    __truediv__ = __rtruediv__ = __matmul__ = __rmatmul__ = __neg__ = __getitem__ = _no_operator


class Node:
    """One call of a layer in a graph: the tensors it read (``inputs``: the main input or
    inputs, then the tensor keyword arguments such as ``initial_state``), the tensors it made
    (``outputs``) and how to call the layer on arrays again."""

    __slots__ = (
        "call_kwargs",
        "inputs",
        "kw_counts",
        "layer",
        "list_input",
        "multi_output",
        "n_main",
        "output_arrays",
        "outputs",
        "saved",
    )

    def __init__(
        self,
        layer: Layer,
        inputs: list[KerasTensor],
        n_main: int,
        list_input: bool,
        kw_counts: dict[str, int],
        call_kwargs: dict[str, Any],
    ) -> None:
        self.layer = layer
        self.inputs = inputs
        self.n_main = n_main
        self.list_input = list_input
        self.kw_counts = kw_counts
        self.call_kwargs = call_kwargs
        self.outputs: list[KerasTensor] = []
        self.multi_output = False
        self.output_arrays: list[Array] = []
        self.saved: Any = None

    @property
    def n_inputs(self) -> int:
        return len(self.inputs)

    @property
    def is_input(self) -> bool:
        return not self.inputs and type(self.layer).__name__ == "InputLayer"

    def call(
        self, arrays: list[Array], training: bool, masks: list[Array | None]
    ) -> tuple[list[Array], list[Array | None]]:
        """Run the layer on arrays for this node's inputs (``masks``: the time-step masks of
        the main inputs); returns its outputs and their masks, as lists."""
        main: Any = arrays[: self.n_main] if self.list_input else arrays[0]
        mask: Any = masks if self.list_input else masks[0]
        if not any(m is not None for m in masks):
            mask = None
        kwargs = dict(self.call_kwargs)
        at = self.n_main
        for key, count in self.kw_counts.items():
            kwargs[key] = arrays[at : at + count]
            at += count
        layer = self.layer
        if mask is not None and layer._mask_aware:
            kwargs["mask"] = mask
        out = layer.forward(main, training, **kwargs)
        outs = list(out) if self.multi_output else [out]
        self.output_arrays = outs
        out_masks = layer._output_masks(main, mask, self.call_kwargs)
        if not self.multi_output:
            out_masks = [out_masks]
        elif out_masks is None:
            out_masks = [None] * len(outs)
        return outs, list(out_masks)

    def inbound_config(self) -> dict[str, Any]:
        """The node's inputs as names: ``{"args": [[layer, node, tensor], ...], "list": bool,
        "kwargs": {key: [[layer, node, tensor], ...]}, "values": {...}}``."""

        def ref(t: KerasTensor) -> list[Any]:
            layer, node_index, index = t._keras_history
            return [layer.name, node_index, index]

        refs = [ref(t) for t in self.inputs]
        kwargs: dict[str, Any] = {}
        at = self.n_main
        for key, count in self.kw_counts.items():
            kwargs[key] = refs[at : at + count]
            at += count
        return {
            "args": refs[: self.n_main],
            "list": self.list_input,
            "kwargs": kwargs,
            "values": dict(self.call_kwargs),
        }


def _flat_tensors(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _flat_tensors(item)]
    return [value]


def any_symbolic(x: Any, kwargs: dict[str, Any]) -> bool:
    values = _flat_tensors(x) + [v for k in kwargs.values() for v in _flat_tensors(k)]
    return any(isinstance(v, KerasTensor) for v in values)


def symbolic_call(layer: Layer, x: Any, kwargs: dict[str, Any]) -> Any:
    """``layer(x, **kwargs)`` on symbolic tensors: build the layer for their shapes, record a
    node and return its symbolic output (a list for layers that return several arrays)."""
    owner = f"{type(layer).__name__} {layer.name!r}"
    if type(layer).__name__ == "InputLayer":
        raise TypeError(f"[{owner}] an InputLayer is not called; use rnnkit.layers.Input(shape)")
    list_input = isinstance(x, (list, tuple))
    main = list(x) if list_input else [x]
    if list_input and not layer._multi_input and len(main) == 1:
        main, list_input = [main[0]], False
    if list_input and not layer._multi_input:
        raise TypeError(
            f"[{owner}] takes one input tensor; got a list of {len(main)} (merge them first, "
            "e.g. with Concatenate)"
        )
    if layer._multi_input and not list_input:
        raise TypeError(f"[{owner}] takes a list of input tensors; got one")
    for i, t in enumerate(main):
        if not isinstance(t, KerasTensor):
            raise TypeError(
                f"[{owner}] input {i} is a {type(t).__name__}; in a graph every input must be a "
                "symbolic tensor (from rnnkit.layers.Input or another layer)"
            )
    inputs = list(main)
    kw_counts: dict[str, int] = {}
    call_kwargs: dict[str, Any] = {}
    input_shape: Any = [t.shape for t in main] if list_input else main[0].shape
    for key, value in kwargs.items():
        if key in layer._tensor_call_kwargs:
            if value is None:
                continue
            items = list(value) if isinstance(value, (list, tuple)) else [value]
            for t in items:
                if not isinstance(t, KerasTensor):
                    raise TypeError(
                        f"[{owner}] {key} mixes arrays and symbolic tensors; in a graph give "
                        "symbolic tensors (outputs of Input or of other layers)"
                    )
            kw_counts[key] = len(items)
            inputs += items
        else:
            call_kwargs[key] = value
    if not layer.built:
        layer.build(input_shape)
    else:
        check = (
            [tuple(1 if s is None else s for s in shape) for shape in input_shape]
            if list_input
            else tuple(1 if s is None else s for s in input_shape)
        )
        layer._check_input_shape(check)
    at = len(main)
    for key, count in kw_counts.items():
        layer._check_call_tensors(key, [t.shape for t in inputs[at : at + count]], input_shape)
        at += count
    shapes = layer._output_shapes(input_shape, call_kwargs)
    node = Node(layer, inputs, len(main), list_input, kw_counts, call_kwargs)
    node.multi_output = isinstance(shapes, list)
    shape_list = shapes if node.multi_output else [shapes]
    node_index = len(layer._nodes)
    node.outputs = [
        KerasTensor(s, layer.dtype, node, i, f"{layer.name}[{node_index}][{i}]")
        for i, s in enumerate(shape_list)
    ]
    layer._nodes.append(node)
    return list(node.outputs) if node.multi_output else node.outputs[0]


def input_node(layer: Layer, shape: Shape, dtype: Any) -> KerasTensor:
    """The symbolic tensor of an InputLayer (its one node, with no inputs)."""
    node = Node(layer, [], 0, False, {}, {})
    tensor = KerasTensor(shape, dtype, node, 0, layer.name)
    node.outputs = [tensor]
    layer._nodes.append(node)
    return tensor


class Graph:
    """The nodes that compute ``outputs`` from ``inputs``, in a topological order."""

    def __init__(self, inputs: list[KerasTensor], outputs: list[KerasTensor], owner: str) -> None:
        for where, group in (("inputs", inputs), ("outputs", outputs)):
            for i, t in enumerate(group):
                if not isinstance(t, KerasTensor):
                    raise TypeError(
                        f"[{owner}] {where}[{i}] is a {type(t).__name__}; expected a symbolic "
                        "tensor (from rnnkit.layers.Input or a layer called on one)"
                    )
        for i, t in enumerate(inputs):
            if t._node is None or not t._node.is_input:
                raise ValueError(
                    f"[{owner}] inputs[{i}] ({t.name}) is not the output of "
                    "rnnkit.layers.Input: a model's inputs must be Input tensors"
                )
        if len({id(t) for t in inputs}) != len(inputs):
            raise ValueError(f"[{owner}] the same Input tensor is given twice in inputs")
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        known = {id(t) for t in inputs}
        order: list[Node] = []
        state: dict[int, int] = {}  # node id -> 1 visiting, 2 done

        def visit(t: KerasTensor, path: list[str]) -> None:
            if id(t) in known:
                return
            node = t._node
            assert node is not None
            if node.is_input:
                done = [n.layer.name for n in order]
                reader = " -> ".join(reversed(path)) or "the outputs"
                raise ValueError(
                    f"[{owner}] graph disconnected: the value of {t.name} (Input "
                    f"{node.layer.name!r}), read by {reader}, "
                    "is not among the model's inputs. Layers reached without it: "
                    f"{', '.join(done) or 'none'}"
                )
            mark = state.get(id(node))
            if mark == 2:
                return
            for src in node.inputs:
                visit(src, [*path, node.layer.name])
            state[id(node)] = 2
            order.append(node)

        for t in outputs:
            visit(t, [])
        self.nodes = order
        counts: dict[int, int] = {}
        for node in order:
            counts[id(node.layer)] = counts.get(id(node.layer), 0) + 1
        self.shared = {lid for lid, c in counts.items() if c > 1}
        #: The nodes that read each tensor (by id), in node order.
        self.readers: dict[int, list[Node]] = {}
        for node in order:
            for t in node.inputs:
                readers = self.readers.setdefault(id(t), [])
                if all(n is not node for n in readers):
                    readers.append(node)

    def layers(self) -> list[Layer]:
        """Every layer once, in Keras 3's order (so that ``get_weights`` lists the weights in
        the order Keras does for the same graph): by decreasing depth (the longest path to an
        output), and at equal depth in the order a depth-first walk from the outputs first
        meets them."""
        post: list[Node] = []
        first_seen: dict[int, int] = {}
        done: set[int] = set()
        inputs = {id(t) for t in self.inputs}

        def walk(t: KerasTensor) -> None:
            node = t._node
            assert node is not None
            if id(node) in done:
                return
            first_seen.setdefault(id(node.layer), len(first_seen))
            if not node.is_input and id(t) not in inputs:
                for src in node.inputs:
                    walk(src)
            done.add(id(node))
            post.append(node)

        for t in self.outputs:
            walk(t)
        node_depth: dict[int, int] = {}
        layer_depth: dict[int, int] = {}
        layer_of: dict[int, Layer] = {}
        for node in reversed(post):
            depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
            layer_depth[id(node.layer)] = depth
            layer_of[id(node.layer)] = node.layer
            node_depth[id(node)] = depth
            if node.is_input:
                continue
            for src in node.inputs:
                parent = src._node
                assert parent is not None
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
        for t in self.inputs:  # inputs no output depends on
            assert t._node is not None
            layer = t._node.layer
            if id(layer) not in layer_depth:
                layer_depth[id(layer)] = 0
                first_seen[id(layer)] = -1
                layer_of[id(layer)] = layer
        return sorted(
            layer_of.values(), key=lambda lay: (-layer_depth[id(lay)], first_seen[id(lay)])
        )

    def forward(self, xs: list[Array], training: bool) -> list[Array]:
        """The outputs for inputs ``xs``; ``last_masks`` then holds the outputs' time-step
        masks (None where an output has none)."""
        values: dict[int, Array] = {id(t): x for t, x in zip(self.inputs, xs)}
        masks: dict[int, Array | None] = {}
        for node in self.nodes:
            outs, out_masks = node.call(
                [values[id(t)] for t in node.inputs],
                training,
                [masks.get(id(t)) for t in node.inputs[: node.n_main]],
            )
            if training and id(node.layer) in self.shared:
                node.saved = node.layer._detach_call_state()
            for t, a, m in zip(node.outputs, outs, out_masks):
                values[id(t)] = a
                masks[id(t)] = m
        self.last_masks = [masks.get(id(t)) for t in self.outputs]
        return [values[id(t)] for t in self.outputs]

    def trainable_flags(self) -> dict[int, bool]:
        """Whether each node's output depends on a trainable weight (so needs a gradient)."""
        needs: dict[int, bool] = {id(t): False for t in self.inputs}
        for node in self.nodes:
            layer = node.layer
            own = bool(layer.trainable and layer.parameters())
            flag = own or any(needs.get(id(t), False) for t in node.inputs)
            for t in node.outputs:
                needs[id(t)] = flag
        return needs

    def backward(
        self,
        grads: list[Array | None],
        needs: dict[int, bool],
        from_logits: dict[int, Any] | None = None,
    ) -> None:
        """Backward from the outputs' gradients; accumulates every layer's weight gradients.

        ``from_logits`` maps an output tensor's id to the Dense whose pre-activation the
        gradient is for (softmax/sigmoid fused into cross-entropy)."""
        acc: dict[int, Array] = {}
        logits = from_logits or {}
        fused_grads: dict[int, Array] = {}
        for t, g in zip(self.outputs, grads):
            if g is None:
                continue
            if id(t) in logits:
                fused_grads[id(t._node)] = g
            elif id(t) in acc:
                acc[id(t)] = acc[id(t)] + g
            else:
                acc[id(t)] = g
        for node in reversed(self.nodes):
            if not needs.get(id(node.outputs[0]), False):
                continue
            douts = [acc.pop(id(t), None) for t in node.outputs]
            fused = fused_grads.get(id(node))
            if fused is None and all(d is None for d in douts):
                continue
            if node.saved is not None:
                node.layer._restore_call_state(node.saved)
                node.saved = None
            need_dx = any(needs.get(id(t), False) for t in node.inputs)
            if fused is not None:
                # (only outputs no other node reads are fused: douts[0] is None)
                dense = node.layer
                dx = dense.backward_from_logits(fused.reshape(-1, dense.units), need_dx)
                dins: list[Array | None] = [dx]
            else:
                dins = node.layer._node_backward(douts, need_dx, node)
            if not need_dx:
                continue
            for t, d in zip(node.inputs, dins):
                if d is None or not needs.get(id(t), False):
                    continue
                acc[id(t)] = d if id(t) not in acc else acc[id(t)] + d
