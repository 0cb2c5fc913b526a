"""Name/config lookup of the small Keras objects rnnkit.regularizers and rnnkit.constraints
define: ``get`` from None, a name, a Keras config dict, a class or an instance; Keras 3's
serialized form and back."""

from __future__ import annotations

from typing import Any


class Registry:
    """The lookups of one kind of object (``kind``: "regularizer", "constraint") of base
    class ``base``, Keras module ``module``; ``by_name`` maps class names and aliases to
    classes. ``on_function``: the message for a plain function (None: not special)."""

    def __init__(
        self, kind: str, base: type, module: str, by_name: dict[str, type], on_function: str | None
    ) -> None:
        self.kind, self.base, self.module = kind, base, module
        self.by_name, self.on_function = by_name, on_function
        self.classes = sorted({c.__name__ for c in by_name.values()})

    def get(self, identifier: Any, owner: str, argument: str) -> Any:
        if identifier is None or isinstance(identifier, self.base):
            return identifier
        if isinstance(identifier, type) and issubclass(identifier, self.base):
            return identifier()
        if isinstance(identifier, str):
            cls = self.by_name.get(identifier)
            if cls is None:
                raise ValueError(
                    f"[{owner}] {argument}={identifier!r} is not a {self.kind} rnnkit has "
                    f"({', '.join(sorted(self.by_name))})"
                )
            return cls()
        if isinstance(identifier, dict):
            return self.deserialize(identifier, owner, argument)
        if self.on_function is not None and callable(identifier):
            raise TypeError(f"[{owner}] {argument}: {self.on_function}")
        raise TypeError(
            f"[{owner}] {argument} must be None, a name or a {self.base.__module__}."
            f"{self.base.__name__}; got {type(identifier).__name__}"
        )

    def serialize(self, obj: Any) -> dict[str, Any] | None:
        """Keras 3's form: ``{"module", "class_name", "config", "registered_name"}``."""
        if obj is None:
            return None
        return {
            "module": self.module,
            "class_name": type(obj).__name__,
            "config": obj.get_config(),
            "registered_name": None,
        }

    def deserialize(self, config: dict[str, Any], owner: str, argument: str) -> Any:
        name = config.get("class_name")
        cls = self.by_name.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ValueError(
                f"[{owner}] {argument}: {self.kind} class {name!r} is not supported by rnnkit "
                f"({', '.join(self.classes)})"
            )
        inner = config.get("config") or {}
        if not isinstance(inner, dict):
            raise ValueError(f"[{owner}] {argument}: the config of {name!r} must be a dict")
        try:
            return cls.from_config(dict(inner))
        except TypeError as e:
            raise ValueError(f"[{owner}] {argument}: {e}") from None
