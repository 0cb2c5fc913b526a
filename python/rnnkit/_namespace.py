"""What a Keras-shaped namespace says about a name it does not have.

Every public module ends with ``__getattr__ = missing_attribute(__name__, __all__)``, so
``keras.layers.Conv1D`` fails with an AttributeError that names ``Conv1D`` and says rnnkit
does not provide it (and lists what the module has), rather than a bare AttributeError.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NoReturn


def missing_attribute(
    module: str, names: Sequence[str], submodules: Sequence[str] = (), shown: str | None = None
) -> Callable[[str], NoReturn]:
    """A module ``__getattr__`` for ``module`` whose public names are ``names``;
    ``submodules`` are subpackages that exist but are imported only on request; ``shown``
    is the public spelling of the module when its file is private."""
    shown = shown or module.removeprefix("rnnkit.")
    public = sorted(n for n in names if not n.startswith("_"))

    def __getattr__(name: str) -> NoReturn:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        if name in submodules:
            raise AttributeError(
                f"module {module!r} has no attribute {name!r}: {module}.{name} is imported "
                f"on request (it needs an optional extra); run `import {module}.{name}`"
            )
        raise AttributeError(
            f"module {module!r} has no attribute {name!r}: rnnkit does not provide "
            f"{shown}.{name}. It has: {', '.join(public)}"
        )

    return __getattr__
