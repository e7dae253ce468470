"""The registry that picks one builder per solution (the Builder interface is in builder.py).

Lookup order: builders registered with ``register_builder`` (latest first), then those other packages declare
as entry points in the group ``kernelarena.builders`` (each a Builder subclass), then the built-in ones. The
first whose ``can_build`` accepts the solution builds it, so a plugin can take over a built-in language.
"""

from __future__ import annotations

import threading
import warnings
from importlib import metadata
from typing import List, Optional, Type, Union

from ..errors import BuildError
from ..schema import Solution
from .builder import Builder
from .python_builder import PythonBuilder
from .tilelang_builder import TileLangBuilder
from .torch_extension_builder import TorchExtensionBuilder
from .triton_builder import TritonBuilder
from .tvm_ffi_builder import TvmFfiBuilder

ENTRY_POINT_GROUP = "kernelarena.builders"


BuilderLike = Union[Builder, Type[Builder]]

# Re-entrant: a plugin module may call register_builder while its entry point is being loaded.
_lock = threading.RLock()
_registered: List[Builder] = []
_plugins: Optional[List[Builder]] = None
_builtins: Optional[List[Builder]] = None


def register_builder(builder: BuilderLike) -> BuilderLike:
    """Put ``builder`` (a Builder subclass or instance) ahead of every other builder.

    Usable as a class decorator. Returns its argument.
    """
    instance = builder() if isinstance(builder, type) else builder
    if not isinstance(instance, Builder):
        raise TypeError(f"{builder!r} is not a kernelarena.build.Builder")
    with _lock:
        _registered.insert(0, instance)
    return builder


def unregister_builder(builder: BuilderLike) -> None:
    """Remove builders registered with ``register_builder`` (the instance, or all of a class)."""
    with _lock:
        _registered[:] = [
            b
            for b in _registered
            if not (b is builder or (isinstance(builder, type) and type(b) is builder))
        ]


def find_builder(solution: Solution) -> Builder:
    """The builder for ``solution``. Raises BuildError when none accepts it."""
    for builder in _all_builders():
        if builder.can_build(solution):
            return builder
    spec = solution.spec
    binding = f", binding {spec.binding.value}" if spec.binding else ""
    raise BuildError(solution.name, f"no builder for language {spec.language.value}{binding}")


def _all_builders() -> List[Builder]:
    with _lock:
        return list(_registered) + _load_plugins() + _load_builtins()


def _load_plugins() -> List[Builder]:
    global _plugins
    if _plugins is None:
        _plugins = []
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                cls = entry_point.load()
                instance = cls() if isinstance(cls, type) else cls
                if not isinstance(instance, Builder):
                    raise TypeError(f"{cls!r} is not a kernelarena.build.Builder")
            except Exception as exc:  # a broken plugin must not stop the built-in languages
                warnings.warn(
                    f"builder entry point {entry_point.name!r} ({entry_point.value}) failed to load and is"
                    f" skipped: {type(exc).__name__}: {exc}",
                    RuntimeWarning,
                    stacklevel=3,
                )
                continue
            _plugins.append(instance)
    return _plugins


def _load_builtins() -> List[Builder]:
    global _builtins
    if _builtins is None:
        _builtins = [PythonBuilder(), TritonBuilder(), TileLangBuilder(), TorchExtensionBuilder(), TvmFfiBuilder()]
    return _builtins
