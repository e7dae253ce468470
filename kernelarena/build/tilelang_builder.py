"""TileLang solutions: a Python package whose kernels TileLang compiles for the GPU at first call."""

from __future__ import annotations

import importlib
from typing import Dict, Optional

from ..errors import BuildError
from ..schema import Solution
from ..schema.solution import Language
from .python_builder import PythonBuilder
from .toolchain import BuildTarget, package_version, python_version


class TileLangBuilder(PythonBuilder):
    """Builds ``language: tilelang``. TileLang kernels run on CUDA devices only: on a CPU target the build
    checks that tilelang imports and the sources byte-compile, and the Runnable says it needs a GPU."""

    name = "tilelang"
    language = Language.TILELANG

    def toolchain(self, solution: Solution, target: BuildTarget) -> Dict[str, Optional[str]]:
        return {"python": python_version(), "torch": package_version("torch"), "tilelang": package_version("tilelang")}

    def check_available(self, solution: Solution, target: BuildTarget) -> None:
        if package_version("tilelang") is None:
            raise BuildError(solution.name, "tilelang is not installed (pip install tilelang==0.1.15)")
        try:
            importlib.import_module("tilelang")
        except Exception as exc:  # installed but broken (missing shared library, wrong torch): say so
            raise BuildError(solution.name, f"tilelang is installed but does not import: {exc!r}") from exc

    def unavailable_reason(self, solution: Solution, target: BuildTarget) -> Optional[str]:
        if not target.is_cuda:
            return "a TileLang solution needs a CUDA device; this build only checked that its sources compile"
        return None
