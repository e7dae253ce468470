"""Turning a Solution into a callable: one builder per language, a registry, and a build cache.

    runnable = build_solution(solution, device="cuda:0")
    runnable(*inputs)

See docs/builders.md for the cache layout, the entry-point group for new languages, and what happens to
CUDA solutions on a machine without a GPU.
"""

from __future__ import annotations

from typing import Optional

from ..schema import Solution
from .builder import Builder
from .cache import BuildCache, default_cache
from .registry import find_builder, register_builder
from .runnable import Runnable
from .toolchain import BuildTarget, resolve_target

__all__ = ["BuildCache", "BuildTarget", "Builder", "Runnable", "build_solution", "register_builder"]


def build_solution(solution: Solution, device: str = "cpu", cache: Optional[BuildCache] = None) -> Runnable:
    """Build ``solution`` for ``device`` ("cpu", "cuda", "cuda:N") and return it as a Runnable.

    ``cache``: where builds are kept; None uses the process default (root from ``$KERNELARENA_CACHE_DIR``).
    Raises BuildError (with the compiler log in ``.log``) when no builder accepts the solution, a dependency
    is missing or the build fails; UnsupportedError for a device this machine does not have.
    """
    target = resolve_target(device)
    builder = find_builder(solution)
    return (cache if cache is not None else default_cache()).build(solution, builder, target)
