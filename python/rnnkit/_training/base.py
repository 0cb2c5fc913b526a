"""The Layer base class shared by every Keras-shaped layer.

A layer maps ``x -> y`` in ``forward``, and after a forward with ``training=True`` maps
``dL/dy -> dL/dx`` in ``backward`` while accumulating ``dL/dw`` into ``gradients()``
(``zero_grad()`` clears them). ``parameters()`` are the live arrays the optimizer updates in
place, in the layer's internal layout; ``get_weights()`` / ``set_weights()`` speak Keras's
layout and names. Shapes are batch-first; ``None`` marks the batch dimension (and any
dimension left free, such as time) in shape tuples.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

Array = np.ndarray
Shape = tuple  # tuple[int | None, ...]

if TYPE_CHECKING:  # for type checkers only: the keyword arguments every layer takes
    from typing_extensions import TypedDict

    class LayerOptions(TypedDict, total=False):
        """``**kwargs`` of every Keras-shaped layer (see :class:`Layer`)."""

        name: str | None
        trainable: bool
        dtype: Any
        input_shape: Shape | None
        input_dim: int | None
        batch_input_shape: Shape | None
        batch_size: int | None

    class RecurrentOptions(LayerOptions, total=False):
        """``**kwargs`` LSTM, GRU and SimpleRNN pass on to their shared base."""

        kernel_initializer: str
        recurrent_initializer: str
        bias_initializer: str
        kernel_regularizer: Any
        recurrent_regularizer: Any
        bias_regularizer: Any
        activity_regularizer: Any
        kernel_constraint: Any
        recurrent_constraint: Any
        bias_constraint: Any
        dropout: float
        recurrent_dropout: float
        seed: int | None
        return_sequences: bool
        return_state: bool
        go_backwards: bool
        stateful: bool
        unroll: bool
        use_cudnn: Any


_name_counts: dict[str, int] = {}


def unique_name(base: str) -> str:
    """Keras-style auto names: ``dense``, ``dense_1``, ``dense_2`` ... per process."""
    n = _name_counts.get(base, 0)
    _name_counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def clear_session() -> None:
    """Reset the automatic layer and model name counters (like ``keras.backend.clear_session``)."""
    _name_counts.clear()


def snake_case(name: str) -> str:
    """Keras's automatic layer names: ``SimpleRNN`` -> ``simple_rnn``, ``Conv1D`` ->
    ``conv1d``, ``GlobalAveragePooling1D`` -> ``global_average_pooling1d``."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s)
    return s.lower()


def resolve_dtype(dtype: Any, owner: str) -> np.dtype:
    """float32 (default) or float64; anything else raises TypeError."""
    if dtype is None:
        return np.dtype(np.float32)
    try:
        d = np.dtype(dtype)
    except (TypeError, ValueError):
        d = None
    # (not `d not in (...)`: np.dtype(float64) == None is True, numpy reads None as float64)
    if d is None or d not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"[{owner}] dtype must be 'float32' or 'float64'; got {dtype!r}")
    return d


def format_shape(shape: Shape) -> str:
    return (
        "("
        + ", ".join("None" if s is None else str(s) for s in shape)
        + (",)" if len(shape) == 1 else ")")
    )


def expected_shape_text(shape: Shape) -> str:
    """``(batch, 10, 1)`` for ``(None, 10, 1)``; free non-batch dims read ``time``/``any``."""
    parts = ["batch"]
    for i, s in enumerate(shape[1:]):
        parts.append(str(s) if s is not None else ("time" if i == 0 else "any"))
    return "(" + ", ".join(parts) + ")"


#: The modes ``quantize`` accepts. Keras 3's quantize modes (int8, float8, int4) store integer
#: or 8-bit weights with scales; bfloat16 is not among them, Keras expresses it as a dtype
#: policy. rnnkit calls the conversion of trained float32 weights to bfloat16 a quantize mode
#: too, since like Keras's modes it converts weights once, for inference.
QUANTIZATION_MODES = ("bfloat16",)


def check_quantization_mode(owner: str, mode: Any) -> str:
    if not isinstance(mode, str):
        raise TypeError(f"[{owner}] quantize mode must be a string; got {mode!r}")
    if mode not in QUANTIZATION_MODES:
        raise ValueError(
            f"[{owner}] quantize mode {mode!r} is not supported; rnnkit has "
            + ", ".join(repr(m) for m in QUANTIZATION_MODES)
            + " (Keras's int8/float8/int4 are not implemented)"
        )
    return mode


class Layer:
    """Base class: naming, dtype, build-on-first-call, weights I/O and config.

    Parameters
    ----------
    name : str, optional
        Unique name; defaults to the snake-cased class name plus a counter.
    trainable : bool
        When False, ``fit`` leaves this layer's weights unchanged.
    dtype : {"float32", "float64"}
        Dtype of weights, outputs and gradients. Inputs are cast to it, as Keras does.
    input_shape : tuple, optional
        Shape of one sample (without the batch axis); lets the layer build before data.
    input_dim : int, optional
        Shorthand for ``input_shape=(input_dim,)``.
    batch_input_shape, batch_size : optional
        Keras 2 spellings; ``batch_input_shape`` includes the batch axis.
    """

    #: Keras names of the tensors ``get_weights`` returns, in order.
    weight_names: tuple[str, ...] = ()
    #: Whether inputs are floating point (cast to ``dtype``) or integer indices.
    _float_input = True

    def __init__(
        self,
        *,
        name: str | None = None,
        trainable: bool = True,
        dtype: Any = None,
        input_shape: Shape | None = None,
        input_dim: int | None = None,
        batch_input_shape: Shape | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        cls = type(self).__name__
        if kwargs:
            raise TypeError(f"[{cls}] unexpected keyword argument(s): {', '.join(sorted(kwargs))}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"[{cls}] name must be a string; got {type(name).__name__}")
        self.name: str = name if name is not None else unique_name(snake_case(cls))
        self.trainable: bool = bool(trainable)
        self.dtype: np.dtype = resolve_dtype(dtype, cls)
        self.built: bool = False
        self._build_input_shape: Shape | None = None
        #: The layer's calls in graphs (functional API), see ``functional.Node``.
        self._nodes: list[Any] = []
        hint: Shape | None = None
        if batch_input_shape is not None:
            hint = tuple(batch_input_shape)
        elif input_shape is not None:
            hint = (batch_size, *tuple(input_shape))
        elif input_dim is not None:
            hint = (batch_size, int(input_dim))
        if hint is not None:
            for s in hint[1:]:
                if s is not None and (not isinstance(s, (int, np.integer)) or s <= 0):
                    raise ValueError(
                        f"[{cls}] input_shape entries must be positive ints or None; "
                        f"got {format_shape(hint[1:])}"
                    )
            hint = tuple(None if s is None else int(s) for s in hint)
        #: (batch, ...) shape given at construction, used by Sequential to build early.
        self.input_shape_hint: Shape | None = hint

    # ----------------------------------------------------------------- to override
    def build(self, input_shape: Shape) -> None:
        """Create the weights for inputs of ``input_shape`` (batch axis first, may be None)."""
        self._build_input_shape = tuple(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def forward(self, x: Array, training: bool = False) -> Array:
        """Compute the output; with ``training=True`` also keep what backward needs."""
        raise NotImplementedError

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        raise NotImplementedError(f"[{type(self).__name__}] has no backward")

    def parameters(self) -> list[Array]:
        """The live trainable arrays (internal layout), updated in place by optimizers."""
        return []

    def gradients(self) -> list[Array]:
        """Accumulated ``dL/dw`` arrays, one per ``parameters()`` entry, same shapes."""
        return []

    def zero_grad(self) -> None:
        """Clear the accumulated gradients."""

    def _keras_weights(self) -> list[Array]:
        """Weights in Keras's layout (may be views; ``get_weights`` copies)."""
        return []

    def _set_keras_weights(self, weights: list[Array]) -> None:
        """Write validated, dtype-cast Keras-layout weights into the live parameters."""

    def _keras_from_parameters(self, arrays: list[Array]) -> list[Array]:
        """Arrays shaped like ``parameters()`` (optimizer slots) in Keras's weight layout."""
        return list(arrays)

    def _parameters_from_keras(self, weights: list[Array]) -> list[Array]:
        """The inverse of ``_keras_from_parameters``."""
        return list(weights)

    def _config(self) -> dict[str, Any]:
        """Layer-specific constructor arguments for ``get_config``."""
        return {}

    #: The mode ``quantize`` converted the layer's weights to, or None.
    quantization_mode: str | None = None

    def quantize(self, mode: str) -> None:
        """Convert the weights for inference (Keras 3's ``layer.quantize``); see
        ``Sequential.quantize``. Layers without weights to convert are left as they are."""
        mode = check_quantization_mode(f"{type(self).__name__} {self.name!r}", mode)
        if not self.built:
            raise RuntimeError(
                f"[{type(self).__name__} {self.name!r}] quantize before the layer is built; call "
                "it on data or pass input_shape first"
            )
        if self.dtype != np.float32:
            raise TypeError(
                f"[{type(self).__name__} {self.name!r}] quantize('{mode}') needs float32 weights; "
                f"this layer is {self.dtype.name}"
            )
        if self._quantize(mode):
            self.quantization_mode = mode

    def _quantize(self, mode: str) -> bool:
        """Convert this layer's weights (validated mode, built, float32); whether it did."""
        return False

    def _refuse_quantized_training(self, training: bool) -> None:
        if training and self.quantization_mode is not None:
            raise RuntimeError(
                f"[{type(self).__name__} {self.name!r}] weights quantized to "
                f"{self.quantization_mode} are for inference only; train a float32 model "
                "and quantize it afterwards"
            )

    # --------------------------------------------- regularizers, constraints (training)
    #: Keras's ``activity_regularizer`` of layers that take one (see ``_activity_forward``).
    activity_regularizer: Any = None
    #: The activity penalty of the last forward (Keras 3: regularizer(output) / batch size).
    _activity_loss: float = 0.0

    def _weight_rules(self) -> list[tuple[int, Any, Any]]:
        """``(index into parameters(), regularizer or None, constraint or None)`` for each
        trainable parameter that has a regularizer or a constraint."""
        return []

    def _penalty(self) -> float:
        """What this layer adds to the loss: its trainable weights' regularizer penalties
        (as Keras 3, only while the layer is trainable) plus the last forward's activity
        penalty."""
        total = float(self._activity_loss)
        if self.trainable and self.built:
            rules = [(i, r) for i, r, _ in self._weight_rules() if r is not None]
            if rules:
                params = self.parameters()
                for i, reg in rules:
                    total += reg(params[i])
        return total

    def _add_penalty_gradients(self) -> None:
        """Add the weight penalties' gradients to ``gradients()`` (once per training step,
        after the backward pass)."""
        if not (self.trainable and self.built):
            return
        rules = [(i, r) for i, r, _ in self._weight_rules() if r is not None]
        if not rules:
            return
        params, grads = self.parameters(), self.gradients()
        for i, reg in rules:
            grads[i] += reg.gradient(params[i])

    def _apply_constraints(self) -> None:
        """Project the constrained weights, in place (after each optimizer step, as Keras)."""
        if not (self.trainable and self.built):
            return
        params = self.parameters()
        for i, _, con in self._weight_rules():
            if con is not None:
                params[i][...] = con(params[i])

    def _activity_forward(self, out: Any, training: bool) -> None:
        """Record the activity penalty of ``out`` (an array or a list of arrays)."""
        reg = self.activity_regularizer
        if reg is None:
            return
        tensors = out if isinstance(out, (list, tuple)) else [out]
        self._activity_loss = float(
            sum(reg(t) / (t.shape[0] if t.ndim and t.shape[0] else 1) for t in tensors)
        )
        self._activity_outputs = list(tensors) if training else None

    def _activity_backward(self, dy: Any) -> Any:
        """``dy`` plus the activity penalty's gradient (same structure as the output)."""
        reg = self.activity_regularizer
        outs = getattr(self, "_activity_outputs", None)
        if reg is None or outs is None:
            return dy

        def add(d: Any, t: Array) -> Array:
            g = reg.gradient(t) / t.dtype.type(t.shape[0] if t.ndim and t.shape[0] else 1)
            return g if d is None else d + g.reshape(np.shape(d))

        if isinstance(dy, (list, tuple)):
            return [add(d, t) for d, t in zip(dy, outs)]
        return add(dy, outs[0])

    # ------------------------------------------------------------------ shared API
    #: Keyword arguments of ``__call__`` that take tensors (symbolic or arrays), in order,
    #: e.g. ``initial_state`` of the recurrent layers; ``forward`` receives them by name.
    _tensor_call_kwargs: tuple[str, ...] = ()
    #: Keyword arguments of ``__call__`` that take plain values (flags), passed to forward.
    _value_call_kwargs: tuple[str, ...] = ()
    #: Whether the layer takes a list of inputs (merge and attention layers).
    _multi_input = False

    def __call__(self, x: Any, training: bool = False, **kwargs: Any) -> Any:
        """Run the layer on ``x`` (building it first if needed) and return the output.

        On symbolic tensors (``rnnkit.layers.Input(...)`` and what layers return for them)
        the layer is added to a graph instead and the result is symbolic: the functional API
        (:class:`rnnkit.Model`).
        """
        from . import functional

        owner = f"{type(self).__name__} {self.name!r}"
        allowed = (*self._tensor_call_kwargs, *self._value_call_kwargs)
        if self._mask_aware:
            allowed = (*allowed, "mask")
        unknown = sorted(k for k in kwargs if k not in allowed)
        if unknown:
            raise TypeError(
                f"[{owner}] unexpected call argument(s): {', '.join(unknown)}"
                + (f"; this layer takes {', '.join(allowed)}" if allowed else "")
            )
        if functional.any_symbolic(x, kwargs):
            if "mask" in kwargs:
                raise TypeError(
                    f"[{owner}] mask= is for calls on arrays; in a graph, masks come from "
                    "Embedding(mask_zero=True) or Masking and follow the tensors"
                )
            return functional.symbolic_call(self, x, kwargs)
        if self._multi_input:
            if not isinstance(x, (list, tuple)) or not x:
                raise TypeError(f"[{owner}] expects a list of input arrays")
            x = [self._convert_input(a, f"x[{i}]") for i, a in enumerate(x)]
            if not self.built:
                self.build([(None, *a.shape[1:]) for a in x])
            self._check_input_shape([a.shape for a in x])
        else:
            x = self._convert_input(x, "x")
            if not self.built:
                self.build((None, *x.shape[1:]))
            self._check_input_shape(x.shape)
        for key in self._tensor_call_kwargs:
            value = kwargs.get(key)
            if value is not None:
                if not isinstance(value, (list, tuple)):
                    value = [value]
                kwargs[key] = [np.asarray(v, dtype=self.dtype) for v in value]
        return self.forward(x, training=training, **kwargs)

    # ----------------------------------------------------------------------- masks
    #: Whether ``forward`` takes ``mask=`` (a (batch, time) bool array of the steps to use):
    #: the recurrent layers, Bidirectional and the attention layers.
    _mask_aware = False
    #: Whether the layer hands its input's time-step mask on unchanged (Keras's
    #: ``supports_masking`` for layers that act on each step: Dense, Dropout ...).
    _passes_mask = False

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        """The time-step mask of the output, from the input's (Keras's ``compute_mask``):
        passed on by layers that act on each step, dropped by the others."""
        return mask if self._passes_mask else None

    def _output_masks(self, inputs: Any, mask: Any, call_kwargs: dict[str, Any]) -> Any:
        """The output masks of a call (a list for layers with several outputs)."""
        return self.compute_mask(inputs, mask)

    # ------------------------------------------------------- graphs (functional API)
    def _output_shapes(self, input_shape: Any, call_kwargs: dict[str, Any]) -> Any:
        """The output shape for a symbolic call: one shape, or a list of shapes for layers
        that return several arrays (``return_state``)."""
        return self.compute_output_shape(input_shape)

    def _check_call_tensors(self, key: str, shapes: list[Shape], input_shape: Any) -> None:
        """Check the shapes of a tensor keyword argument (``initial_state``) of a call."""

    def _node_backward(
        self, douts: list[Array | None], need_dx: bool, node: Any
    ) -> list[Array | None]:
        """Gradients for a graph node's inputs (main inputs, then tensor keyword arguments,
        in ``node.inputs`` order) from its outputs' gradients (None: no gradient)."""
        outs = node.output_arrays
        filled = [np.zeros_like(o) if d is None else d for d, o in zip(douts, outs)]
        dy: Any = filled if node.multi_output else filled[0]
        dx = self._backward(dy, need_dx)
        if self._multi_input:
            return list(dx) if dx is not None else [None] * node.n_main
        return [dx]

    def _detach_call_state(self) -> list[tuple[Any, dict[str, Any]]]:
        """Take what a training forward left for its backward, so that a layer shared by
        several graph nodes can run the backward of each: a shallow copy of the attributes of
        this layer, of the layers it wraps and of their core modules. Their forward caches
        are then let go (``_cache = None``), so that the next call's forward allocates new
        ones instead of reusing this one's memory."""
        saved: list[tuple[Any, dict[str, Any]]] = []
        todo: list[Any] = [self]
        while todo:
            obj = todo.pop()
            if any(obj is s for s, _ in saved):
                continue
            attrs = dict(vars(obj))
            saved.append((obj, attrs))
            for v in attrs.values():
                if isinstance(v, Layer) or (
                    v is not None and hasattr(v, "_cache") and hasattr(v, "_core")
                ):
                    todo.append(v)
        for obj, attrs in saved:
            if "_cache" in attrs:
                obj._cache = None
        return saved

    @staticmethod
    def _restore_call_state(saved: list[tuple[Any, dict[str, Any]]]) -> None:
        for obj, attrs in saved:
            vars(obj).update(attrs)

    def backward(self, dy: Any) -> Array | None:
        """``dL/dx`` for the last ``forward(..., training=True)``; accumulates ``dL/dw``.

        Returns None for layers whose input is not differentiable (Embedding indices).
        """
        if isinstance(dy, (list, tuple)):
            dy = [None if d is None else np.asarray(d, dtype=self.dtype) for d in dy]
        else:
            dy = np.asarray(dy, dtype=self.dtype)
        return self._backward(dy, True)

    def _convert_input(self, x: Any, argument: str) -> Array:
        owner = f"{type(self).__name__} {self.name!r}"
        if self._float_input:
            arr = np.asarray(x)
            if arr.dtype.kind not in "fiub":
                raise TypeError(f"[{owner}] {argument} must be numeric; got dtype {arr.dtype}")
            return np.asarray(arr, dtype=self.dtype)
        return _as_indices(x, owner, argument)

    def _check_input_shape(self, shape: Any, argument: str = "x") -> None:
        # Only the rank and the feature (last) axis are fixed for most layers: Dense and the
        # recurrent layers accept any batch size and any number of time steps.
        expected = self._build_input_shape
        if expected is None:
            return
        ok = len(shape) == len(expected) and (expected[-1] is None or expected[-1] == shape[-1])
        if not ok:
            raise ValueError(
                f"[{type(self).__name__} {self.name!r}] {argument} has shape "
                f"{format_shape(shape)}; expected {expected_shape_text(expected)}"
            )

    def get_weights(self) -> list[Array]:
        """Copies of the weights in Keras's layout and order (see ``weight_names``)."""
        return [np.array(w, dtype=self.dtype, copy=True) for w in self._keras_weights()]

    def set_weights(self, weights: list[Any]) -> None:
        """Set the weights from arrays in Keras's layout; shapes are checked first.

        Values are cast to the layer's dtype. Nothing changes if any shape is wrong.
        """
        owner = f"{type(self).__name__} {self.name!r}"
        if not self.built:
            raise RuntimeError(
                f"[{owner}] set_weights before the layer is built; call it on data or "
                "pass input_shape first"
            )
        current = self._keras_weights()
        weights = list(weights)
        if len(weights) != len(current):
            raise ValueError(
                f"[{owner}] set_weights got {len(weights)} arrays; expected {len(current)} "
                f"({', '.join(self._weight_labels())})"
            )
        converted = []
        for label, w, cur in zip(self._weight_labels(), weights, current):
            arr = np.asarray(w)
            if arr.shape != cur.shape:
                raise ValueError(
                    f"[{owner}] weight {label} has shape {format_shape(arr.shape)}; expected "
                    f"{format_shape(cur.shape)}"
                )
            if arr.dtype.kind not in "fiu":
                raise TypeError(f"[{owner}] weight {label} has non-numeric dtype {arr.dtype}")
            converted.append(np.asarray(arr, dtype=self.dtype))
        self._set_keras_weights(converted)

    def _weight_labels(self) -> list[str]:
        return list(self.weight_names)

    def _planned_weight_shapes(self, input_shape: Shape) -> list[tuple[int, ...]] | None:
        """The Keras-layout weight shapes this layer would build for ``input_shape``, without
        building it (for checking a file against its config), or None to let
        ``untrusted.weight_shapes`` work them out."""
        return None

    def weight_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of ``get_weights()`` without copying."""
        return [tuple(w.shape) for w in self._keras_weights()]

    def count_params(self) -> int:
        """Number of scalars in the Keras-layout weights (what ``summary`` shows)."""
        return int(sum(int(np.prod(s)) for s in self.weight_shapes()))

    def _count_trainable(self) -> int:
        """The scalars of count_params that training changes (summary's "Trainable params")."""
        return self.count_params() if self.trainable else 0

    @property
    def output_shape(self) -> Shape:
        if self._build_input_shape is None:
            raise AttributeError(f"[{self.name}] output_shape: the layer is not built")
        return self.compute_output_shape(self._build_input_shape)

    @property
    def input_shape(self) -> Shape:
        if self._build_input_shape is None:
            raise AttributeError(f"[{self.name}] input_shape: the layer is not built")
        return self._build_input_shape

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as JSON-compatible values (Keras-style)."""
        config: dict[str, Any] = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype.name,
        }
        if self.input_shape_hint is not None:
            config["batch_input_shape"] = list(self.input_shape_hint)
        config.update(self._config())
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    def __reduce__(self) -> tuple[Any, ...]:
        weights = self.get_weights() if self.built else None
        return (
            _rebuild_layer,
            (type(self), self.get_config(), self._build_input_shape, weights),
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}, built={self.built}>"


class SequenceInput:
    """Mixin of the layers whose inputs are (batch, steps, features): building them on any
    other rank raises ValueError."""

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                f"[{type(self).__name__} {self.name!r}] expects inputs (batch, steps, features); "  # type: ignore[attr-defined]
                f"got {format_shape(input_shape)}"
            )
        super().build(input_shape)  # type: ignore[misc]


class OwnWeights:
    """Mixin of the layers that keep their trainable weights in ``self._params`` and their
    gradients, same shapes, in ``self._grads`` (Conv1D, the attention layers, the
    normalizations), Keras's layout being the internal one unless a layer says otherwise."""

    _params: list[Array]
    _grads: list[Array]
    built: bool

    def parameters(self) -> list[Array]:
        return list(self._params) if self.built else []

    def gradients(self) -> list[Array]:
        return list(self._grads) if self.built else []

    def zero_grad(self) -> None:
        if self.built:
            for g in self._grads:
                g[...] = 0

    def _keras_weights(self) -> list[Array]:
        return list(self._params) if self.built else []

    def _set_keras_weights(self, weights: list[Array]) -> None:
        for p, w in zip(self._params, weights):
            p[...] = w


def _rebuild_layer(
    cls: type[Layer], config: dict[str, Any], shape: Shape | None, weights: list[Array] | None
) -> Layer:
    layer = cls.from_config(config)
    if shape is not None:
        layer.build(tuple(shape))
        if weights is not None:
            layer.set_weights(weights)
    return layer


def _as_indices(x: Any, owner: str, argument: str) -> Array:
    """Integer index array; float input must hold whole numbers (Keras casts to int)."""
    arr = np.asarray(x)
    if arr.dtype.kind in "iu":
        return arr
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"[{owner}] {argument} must hold integer indices; got fractions")
        return arr.astype(np.int64)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    raise TypeError(f"[{owner}] {argument} must be an integer array; got dtype {arr.dtype}")


def resolve_rules(layer: Layer, owner: str, **given: Any) -> None:
    """Set ``layer.<key>`` to the regularizer (``*_regularizer``) or constraint
    (``*_constraint``) object each keyword names (None stays None)."""
    from .. import constraints, regularizers

    for key, value in given.items():
        if key.endswith("_regularizer"):
            obj = regularizers.get(value, owner, key)
        else:
            obj = constraints.get(value, owner, key)
        setattr(layer, key, obj)


def rules_config(layer: Layer, keys: tuple[str, ...]) -> dict[str, Any]:
    """The Keras 3 config entries of the regularizers/constraints ``keys`` of ``layer``."""
    from .. import constraints, regularizers

    out: dict[str, Any] = {}
    for key in keys:
        value = getattr(layer, key, None)
        module = regularizers if key.endswith("_regularizer") else constraints
        out[key] = module.serialize(value)
    return out
