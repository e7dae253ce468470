"""The Builder interface and the registry that picks one builder per solution.

Lookup order: builders registered with ``register_builder`` (latest first), then those other packages declare
as entry points in the group ``kernelarena.builders`` (each a Builder subclass), then the built-in ones. The
first whose ``can_build`` accepts the solution builds it, so a plugin can take over a built-in language.
"""

from __future__ import annotations

import threading
import warnings
from abc import ABC, abstractmethod
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, List, Optional, Type, Union

from ..errors import BuildError
from ..schema import Solution
from .toolchain import BuildTarget, python_version

ENTRY_POINT_GROUP = "kernelarena.builders"


class Builder(ABC):
    """Turns one kind of solution into a callable.

    The build cache drives a builder in three steps, each given the per-solution folders: ``src_dir`` holds
    the solution's sources as written, ``out_dir`` is for artifacts. The folders are renamed between
    ``compile`` and ``load`` (a build happens in a staging folder), so artifacts must not rely on absolute
    paths to each other.

    1. ``compile``: make the artifacts (runs once per cache key, under the key's file lock);
    2. ``unavailable_reason``: None when the artifacts can run on the target, else why not;
    3. ``load``: return the entry function from the artifacts (once per process).
    """

    name: ClassVar[str]
    """Short identifier, part of the cache key and of folder names: letters, digits and '_' only."""

    @abstractmethod
    def can_build(self, solution: Solution) -> bool:
        """True when this builder handles ``solution`` (its language, binding, ...)."""

    def toolchain(self, solution: Solution, target: BuildTarget) -> Dict[str, Optional[str]]:
        """Versions of everything whose change must invalidate a cached build."""
        return {"python": python_version()}

    def check_available(self, solution: Solution, target: BuildTarget) -> None:
        """Raise BuildError naming what is missing (a package, a compiler) to build ``solution``."""

    @abstractmethod
    def compile(
        self, solution: Solution, target: BuildTarget, src_dir: Path, out_dir: Path, module_name: str
    ) -> str:
        """Build the artifacts into ``out_dir``; return the build log. Raise BuildError (with the log) on
        failure. ``module_name`` is unique to the cache key: name packages and extensions after it, so two
        solutions never collide."""

    def unavailable_reason(self, solution: Solution, target: BuildTarget) -> Optional[str]:
        """None when the built solution can run on ``target``; otherwise a sentence saying why not."""
        return None

    @abstractmethod
    def load(
        self, solution: Solution, target: BuildTarget, src_dir: Path, out_dir: Path, module_name: str
    ) -> Callable[..., Any]:
        """Return the entry function (``module_name`` as given to ``compile``). Raise BuildError when
        loading fails."""


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
        # Imported here: the built-in builders import this module for Builder.
        from .python_builder import PythonBuilder
        from .tilelang_builder import TileLangBuilder
        from .torch_extension_builder import TorchExtensionBuilder
        from .triton_builder import TritonBuilder
        from .tvm_ffi_builder import TvmFfiBuilder

        _builtins = [PythonBuilder(), TritonBuilder(), TileLangBuilder(), TorchExtensionBuilder(), TvmFfiBuilder()]
    return _builtins
