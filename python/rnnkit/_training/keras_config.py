"""Keras model configs to rnnkit layers and back, option by option.

Reading: a Keras ``Sequential`` config, as Keras 3 writes it (``config.json`` of a ``.keras``
file: ``module``/``class_name``/``config``/``registered_name`` entries, ``DTypePolicy``
dtypes, an ``InputLayer`` first) or as Keras 2 / tf.keras wrote it (the ``model_config``
attribute of an ``.h5`` file: ``batch_input_shape``, string dtypes), becomes a list of
unbuilt rnnkit layers. Every layer class and every option is checked against what rnnkit
computes; anything else raises :class:`KerasConfigError` naming the layer, its class, the
option and its value. Options with no effect on the outputs (``implementation``,
``use_cudnn``, ``zero_output_for_mask`` without masks, initializers once weights are loaded)
are accepted; initializers rnnkit does not have by name fall back to the layer's default,
since the file's weights replace them.

Writing: an rnnkit ``Sequential`` becomes a Keras 3 config (for ``.keras``) or a Keras 2
style one (for legacy ``.h5``, which Keras 3 and tf.keras both read).
"""

from __future__ import annotations

import re
from typing import Any

from .. import layers as layers_module
from .. import losses as losses_module
from .. import metrics as metrics_module
from .. import optimizers as optimizers_module
from .base import Layer
from .core_layers import InputLayer
from .saving import ModelFileError

#: Values an option unknown to rnnkit may hold and still be ignored (a disabled feature).
_OFF = (None, False, 0, 0.0, "", (), [], {})


class KerasConfigError(ModelFileError):
    """A Keras config names a layer, option or value rnnkit does not compute."""


def keras_snake_case(name: str) -> str:
    """Keras's ``to_snake_case`` (the weight-path names of a ``.keras`` file)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def keras_major(version: Any) -> int:
    """Major Keras version from a ``keras_version`` string (3 when unknown)."""
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    match = re.match(r"\s*(\d+)", str(version)) if version is not None else None
    return int(match.group(1)) if match else 3


# ------------------------------------------------------------------ option tables
#: The regularizer and constraint options (rnnkit.regularizers, rnnkit.constraints).
_REGULARIZED = (
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
)
_RECURRENT_RULES = (
    *_REGULARIZED,
    "recurrent_regularizer",
    "recurrent_constraint",
)
#: Per Keras class: options passed to the rnnkit layer, options that must keep their
#: "off" value, options ignored (no effect on what rnnkit computes).
_LAYERS: dict[str, dict[str, tuple[str, ...]]] = {
    "Dense": {
        "pass": (
            "units",
            "activation",
            "use_bias",
            "kernel_initializer",
            "bias_initializer",
            *_REGULARIZED,
        ),
        "off": ("lora_rank", "quantization_config"),
        "ignore": ("lora_alpha",),
    },
    "Dropout": {"pass": ("rate", "noise_shape", "seed"), "off": (), "ignore": ()},
    "Embedding": {
        "pass": (
            "input_dim",
            "output_dim",
            "embeddings_initializer",
            "input_length",
            "mask_zero",
            "embeddings_regularizer",
            "activity_regularizer",
            "embeddings_constraint",
        ),
        "off": (
            "lora_rank",
            "sparse",
            "quantization_config",
        ),
        "ignore": ("lora_alpha",),
    },
    "Flatten": {"pass": (), "off": (), "ignore": ()},
    "Conv1D": {
        "pass": (
            "filters",
            "kernel_size",
            "strides",
            "padding",
            "data_format",
            "dilation_rate",
            "groups",
            "activation",
            "use_bias",
            "kernel_initializer",
            "bias_initializer",
            *_REGULARIZED,
        ),
        "off": ("lora_rank",),
        "ignore": ("lora_alpha",),
    },
    "MaxPooling1D": {
        "pass": ("pool_size", "strides", "padding", "data_format"),
        "off": (),
        "ignore": (),
    },
    "AveragePooling1D": {
        "pass": ("pool_size", "strides", "padding", "data_format"),
        "off": (),
        "ignore": (),
    },
    "GlobalAveragePooling1D": {"pass": ("data_format", "keepdims"), "off": (), "ignore": ()},
    "GlobalMaxPooling1D": {"pass": ("data_format", "keepdims"), "off": (), "ignore": ()},
    "LayerNormalization": {
        "pass": (
            "axis",
            "epsilon",
            "center",
            "scale",
            "beta_initializer",
            "gamma_initializer",
            "beta_regularizer",
            "gamma_regularizer",
            "beta_constraint",
            "gamma_constraint",
        ),
        "off": ("rms_scaling",),
        "ignore": (),
    },
    "BatchNormalization": {
        "pass": (
            "axis",
            "momentum",
            "epsilon",
            "center",
            "scale",
            "beta_initializer",
            "gamma_initializer",
            "moving_mean_initializer",
            "moving_variance_initializer",
            "beta_regularizer",
            "gamma_regularizer",
            "beta_constraint",
            "gamma_constraint",
            "synchronized",
        ),
        "off": ("renorm",),
        "ignore": ("renorm_clipping", "renorm_momentum"),
    },
    "Reshape": {"pass": ("target_shape",), "off": (), "ignore": ()},
    "Activation": {"pass": ("activation",), "off": (), "ignore": ()},
    "SpatialDropout1D": {"pass": ("rate", "seed"), "off": (), "ignore": ()},
    "GaussianNoise": {"pass": ("stddev", "seed"), "off": (), "ignore": ()},
    "UpSampling1D": {"pass": ("size",), "off": (), "ignore": ()},
    "ZeroPadding1D": {"pass": ("padding", "data_format"), "off": (), "ignore": ()},
    "Cropping1D": {"pass": ("cropping",), "off": (), "ignore": ()},
    "Concatenate": {"pass": ("axis",), "off": (), "ignore": ()},
    "Add": {"pass": (), "off": (), "ignore": ()},
    "Subtract": {"pass": (), "off": (), "ignore": ()},
    "Multiply": {"pass": (), "off": (), "ignore": ()},
    "Average": {"pass": (), "off": (), "ignore": ()},
    "Maximum": {"pass": (), "off": (), "ignore": ()},
    "Minimum": {"pass": (), "off": (), "ignore": ()},
    "Dot": {"pass": ("axes", "normalize"), "off": (), "ignore": ()},
    "Attention": {"pass": ("use_scale", "score_mode", "dropout", "seed"), "off": (), "ignore": ()},
    "AdditiveAttention": {"pass": ("use_scale", "dropout"), "off": (), "ignore": ("seed",)},
    "Permute": {"pass": ("dims",), "off": (), "ignore": ()},
    "Masking": {"pass": ("mask_value",), "off": (), "ignore": ()},
    "RepeatVector": {"pass": ("n",), "off": (), "ignore": ()},
    "LSTM": {
        "pass": (
            "units",
            "activation",
            "recurrent_activation",
            "use_bias",
            "kernel_initializer",
            "recurrent_initializer",
            "bias_initializer",
            "unit_forget_bias",
            "dropout",
            "recurrent_dropout",
            "seed",
            "return_sequences",
            "return_state",
            "go_backwards",
            "stateful",
            "unroll",
            *_RECURRENT_RULES,
        ),
        "off": ("time_major",),
        "ignore": ("implementation", "use_cudnn", "zero_output_for_mask"),
    },
}
_LAYERS["GRU"] = {
    "pass": (*(k for k in _LAYERS["LSTM"]["pass"] if k != "unit_forget_bias"), "reset_after"),
    "off": _LAYERS["LSTM"]["off"],
    "ignore": _LAYERS["LSTM"]["ignore"],
}
_LAYERS["SimpleRNN"] = {
    "pass": tuple(
        k for k in _LAYERS["LSTM"]["pass"] if k not in ("unit_forget_bias", "recurrent_activation")
    ),
    "off": _LAYERS["LSTM"]["off"],
    "ignore": ("zero_output_for_mask",),
}
#: Recurrent classes (their own options, and what Bidirectional may wrap).
RECURRENT = ("LSTM", "GRU", "SimpleRNN")
#: Options whose values are initializer identifiers.
_INITIALIZER_KEYS = (
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "embeddings_initializer",
    "beta_initializer",
    "gamma_initializer",
    "moving_mean_initializer",
    "moving_variance_initializer",
)
#: Options whose values are activation identifiers.
_ACTIVATION_KEYS = ("activation", "recurrent_activation")
#: Options every layer has.
_COMMON = ("name", "trainable", "dtype")
_SUPPORTED_DTYPES = ("float32", "float64")


class _Reader:
    """Translates one model config; ``where`` prefixes every message."""

    def __init__(self, where: str, keras_version: Any) -> None:
        self.where = where
        self.major = keras_major(keras_version)

    def fail(self, what: str) -> KerasConfigError:
        return KerasConfigError(f"[load_model] {self.where}: {what}")

    # ----------------------------------------------------------------- values
    def dtype_name(self, value: Any, owner: str, *, data: bool = False) -> str | None:
        """A float dtype policy (or, for InputLayer data, any numeric dtype) as a name."""
        if value is None:
            return None
        name = value
        if isinstance(value, dict):
            cfg = value.get("config")
            name = cfg.get("name") if isinstance(cfg, dict) else None
        if not isinstance(name, str):
            raise self.fail(f"{owner}: dtype {value!r} is not understood")
        if data and re.fullmatch(r"u?int(8|16|32|64)|bool", name):
            return name
        if name not in _SUPPORTED_DTYPES:
            raise self.fail(
                f"{owner}: dtype policy {name!r} is not supported; rnnkit computes in "
                f"{' or '.join(_SUPPORTED_DTYPES)}"
            )
        return name

    def initializer(self, value: Any) -> str | None:
        """An rnnkit initializer name, or None for the layer's default (weights are loaded)."""
        from . import initializers

        name = value.get("class_name") if isinstance(value, dict) else value
        if not isinstance(name, str):
            return None
        try:
            return initializers.resolve(keras_snake_case(name), "", "")
        except ValueError:
            return None

    def activation(self, value: Any, owner: str, key: str) -> Any:
        if isinstance(value, dict):
            # Keras 3 may serialise a built-in activation as a function object.
            inner = value.get("config")
            if value.get("class_name") == "function" and isinstance(inner, str):
                value = inner
            else:
                raise self.fail(f"{owner}: {key}={value!r} (a custom activation) is not supported")
        if self.major < 3 and value == "hard_sigmoid":
            raise self.fail(
                f"{owner}: {key}='hard_sigmoid' from Keras {self.major} means "
                "clip(0.2 x + 0.5, 0, 1); rnnkit implements Keras 3's clip(x / 6 + 0.5, 0, 1), "
                "so this model's outputs would differ"
            )
        return value

    # ----------------------------------------------------------------- layers
    def layer(self, entry: Any, index: int) -> Layer:
        if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
            raise self.fail(f"layer #{index} is not a {{class_name, config}} entry")
        cls = entry.get("class_name")
        if not isinstance(cls, str):
            raise self.fail(f"layer #{index}: class_name must be a string; got {cls!r:.100}")
        config = dict(entry.get("config") or {})
        name = config.get("name", f"#{index}")
        owner = f"layer {name!r} ({cls})"
        if cls in ("Sequential", "Functional", "Model"):
            raise self.fail(f"{owner}: nested models are not supported; flatten the layers")
        if cls == "Bidirectional":
            return self.bidirectional(config, owner)
        if cls == "TimeDistributed":
            inner = self.layer(config.get("layer"), index)
            kwargs = {k: config[k] for k in ("name", "trainable") if k in config}
            try:
                return layers_module.TimeDistributed(inner, **kwargs)
            except (TypeError, ValueError, NotImplementedError) as e:
                raise self.fail(f"{owner}: {e}") from None
        if cls == "InputLayer":
            return self.input_layer(config, owner)
        table = _LAYERS.get(cls)  # type: ignore[arg-type]
        if table is None:
            supported = ", ".join(sorted([*_LAYERS, "Bidirectional", "InputLayer"]))
            raise self.fail(
                f"{owner}: layer class {cls!r} is not supported by rnnkit ({supported})"
            )
        kwargs = self.options(cls, config, owner, table)
        try:
            return layers_module.LAYER_CLASSES[cls](**kwargs)
        except (TypeError, ValueError, NotImplementedError) as e:
            raise self.fail(f"{owner}: {e}") from None

    def options(
        self, cls: str, config: dict[str, Any], owner: str, table: dict[str, tuple[str, ...]]
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        for key, value in config.items():
            if key in table["pass"]:
                if key in _INITIALIZER_KEYS:
                    init = self.initializer(value)
                    if init is not None:
                        kwargs[key] = init
                    continue
                if key in _ACTIVATION_KEYS:
                    value = self.activation(value, owner, key)
                if key == "noise_shape" and value is not None:
                    value = tuple(value)
                kwargs[key] = value
            elif key in table["off"]:
                if value not in _OFF:
                    raise self.fail(f"{owner}: {key}={value!r} is not supported by rnnkit")
            elif key in table["ignore"]:
                continue
            elif key == "name":
                kwargs["name"] = value
            elif key == "trainable":
                kwargs["trainable"] = bool(value)
            elif key == "dtype":
                kwargs["dtype"] = self.dtype_name(value, owner)
            elif key in ("batch_input_shape", "batch_shape"):
                if value is not None:
                    kwargs["batch_input_shape"] = self.shape(value, owner, key)
            elif key == "input_shape" and value is not None:
                kwargs["input_shape"] = self.shape(value, owner, key)
            elif key == "data_format" and cls == "Flatten":
                if value not in (None, "channels_last"):
                    raise self.fail(f"{owner}: data_format={value!r} is not supported")
            elif value not in _OFF:
                raise self.fail(f"{owner}: option {key}={value!r} is not known to rnnkit")
        return kwargs

    def shape(self, value: Any, owner: str, key: str) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)) or not all(
            s is None or (isinstance(s, int) and not isinstance(s, bool) and s > 0) for s in value
        ):
            raise self.fail(f"{owner}: {key}={value!r} is not a shape")
        return tuple(value)

    def input_layer(self, config: dict[str, Any], owner: str) -> InputLayer:
        shape = config.get("batch_shape", config.get("batch_input_shape"))
        if shape is None:
            raise self.fail(f"{owner}: no batch_shape")
        shape = self.shape(shape, owner, "batch_shape")
        if len(shape) < 2:
            raise self.fail(f"{owner}: batch_shape={list(shape)} has no feature axis")
        for key in ("sparse", "ragged", "optional"):
            if config.get(key) not in _OFF:
                raise self.fail(f"{owner}: {key}={config[key]!r} is not supported by rnnkit")
        dtype = self.dtype_name(config.get("dtype"), owner, data=True)
        float_dtype = dtype if dtype in _SUPPORTED_DTYPES else None
        int_dtype = dtype is not None and dtype not in _SUPPORTED_DTYPES
        try:
            return InputLayer(
                batch_shape=shape,
                dtype="int64" if int_dtype else float_dtype,
                name=config.get("name"),
            )
        except (TypeError, ValueError) as e:
            raise self.fail(f"{owner}: {e}") from None

    def bidirectional(self, config: dict[str, Any], owner: str) -> Layer:
        inner = config.get("layer")
        if not isinstance(inner, dict) or inner.get("class_name") not in RECURRENT:
            cls = inner.get("class_name") if isinstance(inner, dict) else inner
            raise self.fail(
                f"{owner}: wraps {cls!r}; rnnkit's Bidirectional wraps LSTM, GRU or SimpleRNN"
            )
        merge = config.get("merge_mode", "concat")
        if merge not in ("concat", "sum", "mul", "ave"):
            raise self.fail(
                f"{owner}: merge_mode={merge!r} is not supported (concat, sum, mul, ave)"
            )
        for key, value in config.items():
            known = ("layer", "backward_layer", "merge_mode", *_COMMON, "batch_input_shape")
            if key not in known and value not in _OFF:
                raise self.fail(f"{owner}: option {key}={value!r} is not known to rnnkit")
        forward_cfg = dict(inner.get("config") or {})
        forward_kw = self.options(
            inner["class_name"], forward_cfg, owner, _LAYERS[inner["class_name"]]
        )
        if forward_kw.get("go_backwards"):
            raise self.fail(f"{owner}: the wrapped layer has go_backwards=True")
        backward = config.get("backward_layer")
        if backward is not None:
            self.check_mirror(backward, inner["class_name"], forward_kw, owner)
        cls = layers_module.LAYER_CLASSES[inner["class_name"]]
        kwargs: dict[str, Any] = {"merge_mode": merge}
        for key in ("name", "trainable"):
            if key in config:
                kwargs[key] = config[key]
        if "dtype" in config:
            kwargs["dtype"] = self.dtype_name(config["dtype"], owner)
        if config.get("batch_input_shape") is not None:
            kwargs["batch_input_shape"] = self.shape(config["batch_input_shape"], owner, "shape")
        try:
            return layers_module.Bidirectional(cls(**forward_kw), **kwargs)
        except (TypeError, ValueError, NotImplementedError) as e:
            raise self.fail(f"{owner}: {e}") from None

    def check_mirror(self, backward: Any, cls: str, forward_kw: dict[str, Any], owner: str) -> None:
        """A Keras Bidirectional stores its backward layer; rnnkit supports the mirror only."""
        if not isinstance(backward, dict) or backward.get("class_name") != cls:
            got = backward.get("class_name") if isinstance(backward, dict) else backward
            raise self.fail(
                f"{owner}: backward_layer of class {got!r} differs from the forward {cls}"
            )
        back_kw = self.options(cls, dict(backward.get("config") or {}), owner, _LAYERS[cls])
        if not back_kw.get("go_backwards"):
            raise self.fail(f"{owner}: backward_layer must have go_backwards=True")
        skip = ("name", "go_backwards", "batch_input_shape", *_INITIALIZER_KEYS)
        differ = sorted(
            k
            for k in set(forward_kw) | set(back_kw)
            if k not in skip and forward_kw.get(k) != back_kw.get(k)
        )
        if differ:
            raise self.fail(
                f"{owner}: a backward_layer that is not the mirror of the forward layer is "
                f"not supported (it differs in {', '.join(differ)})"
            )


def is_functional(config: Any) -> bool:
    return isinstance(config, dict) and config.get("class_name") in ("Functional", "Model")


def _tensor_ref(value: Any, fail: Any, owner: str) -> list[Any]:
    """A Keras 3 ``__keras_tensor__`` record as ``[layer, node, index]``."""
    if not isinstance(value, dict) or value.get("class_name") != "__keras_tensor__":
        raise fail(f"{owner}: expected a tensor reference; got {value!r:.100}")
    history = (value.get("config") or {}).get("keras_history")
    if not isinstance(history, (list, tuple)) or len(history) != 3:
        raise fail(f"{owner}: a tensor reference without keras_history: {value!r:.100}")
    return list(history)


def _graph_refs(value: Any, fail: Any, owner: str) -> tuple[list[list[Any]], bool]:
    """A node argument: one tensor or a list of them, as references (and whether a list)."""
    if isinstance(value, (list, tuple)):
        return [_tensor_ref(v, fail, owner) for v in value], True
    return [_tensor_ref(value, fail, owner)], False


def functional_from_keras_config(config: Any, keras_version: Any, where: str) -> Any:
    """Rebuild a Keras 3 functional model (``keras.Model(inputs, outputs)``) as an rnnkit
    :class:`~rnnkit.models.Functional` (built; weights as initialized)."""
    from ..models import Functional

    reader = _Reader(where, keras_version)
    body = config.get("config")
    if not isinstance(body, dict) or not isinstance(body.get("layers"), list):
        raise reader.fail("the functional model config has no layers list")
    made: list[Layer] = []
    inbound: dict[str, list[dict[str, Any]]] = {}
    for index, entry in enumerate(body["layers"]):
        layer = reader.layer(entry, index)
        made.append(layer)
        owner = f"layer {layer.name!r}"
        nodes = entry.get("inbound_nodes") or []
        if not isinstance(nodes, list):
            raise reader.fail(f"{owner}: inbound_nodes must be a list")
        specs = []
        for node in nodes:
            if not isinstance(node, dict) or "args" not in node:
                raise reader.fail(
                    f"{owner}: inbound nodes in Keras 2's format are not supported (save the "
                    "model with Keras 3)"
                )
            args = node.get("args") or []
            if len(args) != 1:
                raise reader.fail(f"{owner}: a call with {len(args)} positional arguments")
            refs, listed = _graph_refs(args[0], reader.fail, owner)
            kw_refs: dict[str, Any] = {}
            values: dict[str, Any] = {}
            for key, value in (node.get("kwargs") or {}).items():
                if key == "training" or (key == "mask" and value is None):
                    continue
                if key in layer._tensor_call_kwargs:
                    if value is not None:
                        kw_refs[key] = _graph_refs(value, reader.fail, owner)[0]
                elif key in layer._value_call_kwargs:
                    values[key] = value
                else:
                    raise reader.fail(
                        f"{owner}: call argument {key}={value!r:.60} is not supported"
                    )
            specs.append({"args": refs, "list": listed, "kwargs": kw_refs, "values": values})
        inbound[layer.name] = specs

    def refs(key: str) -> tuple[list[Any], bool]:
        value = body.get(key)
        if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
            return [value], False
        if not isinstance(value, list) or not value:
            raise reader.fail(f"{key} must list the model's tensors")
        return list(value), True

    inputs, list_in = refs("input_layers")
    outputs, list_out = refs("output_layers")
    try:
        return Functional._assemble(
            made, inbound, inputs, outputs, list_in, list_out, body.get("name"), owner="load_model"
        )
    except (TypeError, ValueError, KeyError, NotImplementedError) as e:
        raise reader.fail(f"the graph cannot be rebuilt: {e}") from None


def layers_from_keras_config(
    config: Any, keras_version: Any, where: str
) -> tuple[str | None, list[Layer], tuple[Any, ...] | None]:
    """Translate a Keras model config to ``(model name, rnnkit layers, build shape)``.

    The layers are unbuilt (nothing is allocated); an InputLayer, if any, comes first. The
    build shape is the config's ``build_input_shape`` (or ``build_config``), when given.
    """
    reader = _Reader(where, keras_version)
    if not isinstance(config, dict):
        raise reader.fail("the model config is not a JSON object")
    cls = config.get("class_name")
    if cls in ("Functional", "Model"):
        raise reader.fail(
            "it holds a functional Keras model (keras.Model(inputs, outputs)); rnnkit "
            "loads Sequential models only until its functional API exists"
        )
    if cls != "Sequential":
        raise reader.fail(
            f"the model class {cls!r} is not supported: rnnkit rebuilds Keras Sequential "
            "models (a subclassed model cannot be rebuilt from its config)"
        )
    body = config.get("config")
    if isinstance(body, list):  # Keras 2.0-2.2 wrote the layer list itself
        body = {"layers": body}
    if not isinstance(body, dict) or not isinstance(body.get("layers"), list):
        raise reader.fail("the Sequential config has no layer list")
    for key in ("dtype",):
        if key in body:
            reader.dtype_name(body[key], "the model")
    built = [reader.layer(entry, k) for k, entry in enumerate(body["layers"])]
    shape = body.get("build_input_shape")
    if shape is None and isinstance(config.get("build_config"), dict):
        shape = config["build_config"].get("input_shape")
    build_shape = None
    if shape is not None:
        build_shape = reader.shape(shape, "the model", "build_input_shape")
    name = body.get("name")
    return (name if isinstance(name, str) else None), built, build_shape


# ----------------------------------------------------------------- compile configs
def _strip_module(entry: Any) -> Any:
    if isinstance(entry, dict) and "class_name" in entry:
        name = entry["class_name"]
        if isinstance(name, str) and name.startswith("Custom>"):
            name = name[len("Custom>") :]
        return {"class_name": name, "config": dict(entry.get("config") or {})}
    return entry


def _optimizer(entry: Any, where: str) -> optimizers_module.Optimizer:
    if isinstance(entry, str):
        return optimizers_module.get(entry)
    entry = _strip_module(entry)
    if not isinstance(entry, dict):
        raise ValueError(f"optimizer {entry!r} is not understood")
    config = entry["config"]
    if not config.get("use_ema"):
        config.pop("ema_momentum", None)
        config.pop("ema_overwrite_frequency", None)
    for key in ("jit_compile", "is_legacy_optimizer"):
        config.pop(key, None)
    if config.get("decay", 0.0) == 0.0:
        config.pop("decay", None)
    lr = config.get("learning_rate")
    if isinstance(lr, dict):
        sched = _strip_module(lr)
        sched["config"].pop("name", None)
        config["learning_rate"] = sched
    if entry["class_name"] not in optimizers_module.CLASSES:
        raise ValueError(
            f"optimizer {entry['class_name']!r} is not supported by rnnkit "
            f"({', '.join(sorted(optimizers_module.CLASSES))})"
        )
    return optimizers_module.deserialize(entry)


def _loss(entry: Any) -> losses_module.Loss | None:
    if entry is None or isinstance(entry, str):
        return None if entry is None else losses_module.get(entry)
    entry = _strip_module(entry)
    if not isinstance(entry, dict):
        raise ValueError(f"loss {entry!r} is not understood")
    config = entry["config"]
    if config.get("reduction") in ("auto", "sum_over_batch_size", None):
        config.pop("reduction", None)
    if config.get("dtype") is None:
        config.pop("dtype", None)
    if config.get("ignore_class", 0) is None:
        config.pop("ignore_class")
    if config.get("axis", -1) == -1:  # the crossentropies' class axis: rnnkit's is the last
        config.pop("axis", None)
    if entry["class_name"] not in losses_module.CLASSES:
        raise ValueError(
            f"loss {entry['class_name']!r} is not supported by rnnkit "
            f"({', '.join(sorted(losses_module.CLASSES))})"
        )
    return losses_module.deserialize(entry)


def _metric(entry: Any) -> Any:
    if isinstance(entry, str):
        return entry
    entry = _strip_module(entry)
    if isinstance(entry, dict):
        config = entry["config"]
        if entry["class_name"] == "MeanMetricWrapper" and isinstance(config.get("fn"), str):
            return config.get("name") or config["fn"]
        name = config.get("name")
        if isinstance(name, str):
            return name
    raise ValueError(f"metric {entry!r} is not understood")


def compile_args_from_keras(config: Any, where: str, n_outputs: int = 1) -> dict[str, Any]:
    """``compile()`` arguments from a Keras 3 ``compile_config`` or a Keras 2
    ``training_config`` (``optimizer_config`` key), for a model of ``n_outputs`` outputs (a
    loss, loss weight and metric list per output, as lists or dicts keyed by output name).
    Unsupported entries raise ValueError."""
    if not isinstance(config, dict):
        raise ValueError("the compile config is not a JSON object")
    weights = config.get("loss_weights")
    if weights not in _OFF and n_outputs == 1 and not isinstance(weights, (list, dict)):
        raise ValueError(f"loss_weights={weights!r} is not supported for one output")
    optimizer = config.get("optimizer", config.get("optimizer_config"))

    def metric_names(items: Any) -> list[Any]:
        names = [_metric(item) for item in (items if isinstance(items, list) else [items])]
        for m in names:
            if m.lower() not in ("accuracy", "acc"):
                metrics_module.get(m)
        return names

    def metric_arg(raw: Any) -> Any:
        if isinstance(raw, dict) and "class_name" not in raw:  # keyed by output name
            return {k: metric_names(v) for k, v in raw.items() if v is not None}
        if not isinstance(raw, list):
            raw = [raw]
        if n_outputs > 1 and any(isinstance(m, list) for m in raw):
            return [[] if m is None else metric_names(m) for m in raw]
        return [name for m in raw for name in metric_names(m)]  # Keras 2 nests its list

    metrics = metric_arg(config.get("metrics") or [])
    weighted = metric_arg(config.get("weighted_metrics") or [])
    loss = config.get("loss")
    if isinstance(loss, dict) and "class_name" not in loss:  # keyed by output name
        loss_arg: Any = {k: _loss(v) for k, v in loss.items()}
    elif isinstance(loss, list):
        loss_arg = [_loss(v) for v in loss]
    else:
        loss_arg = _loss(loss)
    return {
        "optimizer": _optimizer(optimizer, where),
        "loss": loss_arg,
        "metrics": metrics or None,
        "weighted_metrics": weighted or None,
        "loss_weights": None if weights in _OFF else weights,
    }


# ------------------------------------------------------------------------ writing
def _layer_config(layer: Layer, keras3: bool) -> dict[str, Any]:
    config = layer.get_config()
    config.pop("batch_input_shape", None)
    if isinstance(layer, layers_module.Bidirectional):
        inner = _layer_config(layer.layer, keras3)
        inner["name"] = config["layer"]["config"]["name"]
        # Keras 3 reads the wrapped layer with its module, in legacy files too.
        config["layer"] = {
            "module": "keras.layers",
            "class_name": type(layer.layer).__name__,
            "config": inner,
            "registered_name": None,
        }
    if not keras3 and type(layer).__name__ in RECURRENT and config.get("seed") is None:
        config.pop("seed", None)  # tf.keras's recurrent layers take no seed
    if type(layer).__name__ == "SpatialDropout1D":
        config.pop("trainable", None)  # Keras 3's takes rate, seed, name and dtype only
    return config


def _entry(layer: Layer, keras3: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "class_name": type(layer).__name__,
        "config": _layer_config(layer, keras3),
    }
    if keras3:
        entry = {"module": "keras.layers", **entry, "registered_name": None}
        if layer.built and layer._build_input_shape is not None:
            entry["build_config"] = {"input_shape": list(layer._build_input_shape)}
    return entry


def _input_entry(model: Any, keras3: bool) -> dict[str, Any] | None:
    shape = model._build_input_shape if model.built else model._declared_input_shape()
    if shape is None:
        return None
    first = model._input_layer or model.layers[0]
    dtype = "int32" if not first._float_input else model.layers[0].dtype.name
    name = model._input_layer.name if model._input_layer is not None else "input_layer"
    key = "batch_shape" if keras3 else "batch_input_shape"
    config = {key: list(shape), "dtype": dtype, "sparse": False, "name": name}
    if keras3:
        return {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": config,
            "registered_name": None,
        }
    return {"class_name": "InputLayer", "config": config}


def _graph_config(model: Any) -> dict[str, Any]:
    """The Keras 3 config of an rnnkit graph model (``keras.Model(inputs, outputs)``)."""
    nodes_of = model._model_nodes()

    def ref(t: Any) -> list[Any]:
        layer = t._node.layer
        index = next(i for i, n in enumerate(nodes_of[id(layer)]) if n is t._node)
        return [layer.name, index, t._index]

    def tensor(t: Any) -> dict[str, Any]:
        return {
            "class_name": "__keras_tensor__",
            "config": {"shape": list(t.shape), "dtype": t.dtype.name, "keras_history": ref(t)},
        }

    entries = []
    for layer in model.layers:
        if isinstance(layer, InputLayer):
            t = layer.output
            entry: dict[str, Any] = {
                "module": "keras.layers",
                "class_name": "InputLayer",
                "config": {
                    "batch_shape": list(t.shape),
                    "dtype": "int32" if layer._int_input else layer.dtype.name,
                    "sparse": False,
                    "name": layer.name,
                },
                "registered_name": None,
            }
            inbound: list[Any] = []
        else:
            entry = _entry(layer, True)
            if type(layer).__name__ == "TimeDistributed":
                inner = entry["config"]["layer"]
                entry["config"]["layer"] = {
                    "module": "keras.layers",
                    "class_name": inner["class_name"],
                    "config": _layer_config(layer.layer, True),
                    "registered_name": None,
                }
            inbound = []
            for node in nodes_of[id(layer)]:
                main = [tensor(t) for t in node.inputs[: node.n_main]]
                kwargs: dict[str, Any] = dict(node.call_kwargs)
                at = node.n_main
                for key, count in node.kw_counts.items():
                    kwargs[key] = [tensor(t) for t in node.inputs[at : at + count]]
                    at += count
                inbound.append({"args": [main if node.list_input else main[0]], "kwargs": kwargs})
        entry["name"] = layer.name
        entry["inbound_nodes"] = inbound
        entries.append(entry)
    ins = [ref(t) for t in model.inputs]
    outs = [ref(t) for t in model.outputs]
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": model.name,
            "trainable": model.trainable,
            "layers": entries,
            "input_layers": ins if model._list_inputs else ins[0],
            "output_layers": outs if model._list_outputs else outs[0],
        },
        "registered_name": "Functional",
    }


def keras_model_config(model: Any, keras3: bool = True) -> dict[str, Any]:
    """The Keras config of an rnnkit Sequential: Keras 3 style (``.keras``) or Keras 2 style
    (``model_config`` of a legacy ``.h5``); of a graph model, Keras 3 style only."""
    if hasattr(model, "_graph"):
        if not keras3:
            raise NotImplementedError(
                "[save] legacy .h5 files of graph models are not written (their Keras 2 "
                "config format differs); save as *.keras, which Keras 3 opens"
            )
        return _graph_config(model)
    layers = []
    first = _input_entry(model, keras3)
    if first is not None:
        layers.append(first)
    layers += [_entry(layer, keras3) for layer in model.layers]
    dtype = model.layers[0].dtype.name if model.layers else "float32"
    body: dict[str, Any] = {
        "name": model.name,
        "trainable": model.trainable,
        "dtype": dtype,
        "layers": layers,
    }
    if not keras3:
        return {"class_name": "Sequential", "config": body}
    if model.built:
        body["build_input_shape"] = list(model._build_input_shape)
    config: dict[str, Any] = {
        "module": "keras",
        "class_name": "Sequential",
        "config": body,
        "registered_name": None,
    }
    if model.built:
        config["build_config"] = {"input_shape": list(model._build_input_shape)}
    return config


def _keras_optimizer(opt: optimizers_module.Optimizer, keras3: bool) -> dict[str, Any]:
    config = opt.get_config()
    lr = config.get("learning_rate")
    if isinstance(lr, dict):
        lr = {"module": "keras.optimizers.schedules", **lr, "registered_name": None}
        lr["config"] = {**lr["config"], "name": lr["class_name"]}
        config["learning_rate"] = lr  # Keras 3 reads nested objects by module, in h5 too
    if keras3:
        return {
            "module": "keras.optimizers",
            "class_name": type(opt).__name__,
            "config": config,
            "registered_name": None,
        }
    # tf.keras reads h5 optimizers with its legacy classes, which take no weight_decay
    # (and Keras 3 drops the config of tf.keras's "Custom>Adam" spelling, so not that).
    if config.get("weight_decay") is None:
        config.pop("weight_decay", None)
    return {"class_name": type(opt).__name__, "config": config}


def _keras_loss(loss: losses_module.Loss, keras3: bool) -> Any:
    config = loss.get_config()
    if set(config) == {"name"} and config["name"] == type(loss).name:
        return loss.name  # a plain name, as compile(loss="mse") leaves it
    entry = {"class_name": type(loss).__name__, "config": config}
    if keras3:
        entry = {"module": "keras.losses", **entry, "registered_name": None}
    return entry


def keras_compile_config(model: Any, keras3: bool = True) -> dict[str, Any] | None:
    """Keras 3 ``compile_config`` (or, with ``keras3=False``, Keras 2 ``training_config``)."""
    if not model.compiled or model.optimizer is None:
        return None
    groups = [[m if isinstance(m, str) else m.name for m in g] for g in model._metric_ids]
    wgroups = [[m if isinstance(m, str) else m.name for m in g] for g in model._weighted_metric_ids]
    several = model._n_outputs > 1
    metrics: Any = groups if several else groups[0]
    weighted: Any = (wgroups if several else wgroups[0]) if any(wgroups) else None
    if several:
        loss: Any = [None if v is None else _keras_loss(v, keras3) for v in model._losses]
    else:
        loss = None if model.loss is None else _keras_loss(model.loss, keras3)
    opt = _keras_optimizer(model.optimizer, keras3)
    if keras3:
        return {
            "optimizer": opt,
            "loss": loss,
            "loss_weights": model._loss_weights,
            "metrics": metrics,
            "weighted_metrics": weighted,
            "run_eagerly": False,
            "steps_per_execution": 1,
            "jit_compile": False,
        }
    return {
        "loss": loss,
        "metrics": [metrics] if metrics else None,
        "weighted_metrics": [weighted] if weighted and not several else weighted,
        "loss_weights": None,
        "optimizer_config": opt,
    }
