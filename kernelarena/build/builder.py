"""The Builder interface: what every language's builder implements (the registry in registry.py picks one)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, Optional

from ..schema import Solution
from .toolchain import BuildTarget, python_version


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
