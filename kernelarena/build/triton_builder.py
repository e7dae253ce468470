"""Triton solutions: a Python package whose kernels are ``@triton.jit`` functions.

On a CPU target the kernels run under Triton's interpreter. Triton decides between compiling and
interpreting when a ``@triton.jit`` function is created, from ``TRITON_INTERPRET``; so building a Triton
solution for the CPU sets ``TRITON_INTERPRET=1`` in this process's environment before importing it, and
leaves it set: every ``@triton.jit`` function created afterwards in this process is interpreted too. Build
CPU and GPU Triton solutions in different processes (the bench runs one worker per device).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from .. import env
from ..errors import BuildError
from ..schema import Solution
from ..schema.solution import Language
from .python_builder import PythonBuilder
from .toolchain import BuildTarget, package_version, python_version

INTERPRET_ENV = env.TRITON_INTERPRET


class TritonBuilder(PythonBuilder):
    """Builds ``language: triton``; interpreted on the CPU, compiled by Triton's JIT on a GPU."""

    name = "triton"
    language = Language.TRITON

    def toolchain(self, solution: Solution, target: BuildTarget) -> Dict[str, Optional[str]]:
        return {"python": python_version(), "torch": package_version("torch"), "triton": package_version("triton")}

    def check_available(self, solution: Solution, target: BuildTarget) -> None:
        if package_version("triton") is None:
            raise BuildError(solution.name, "triton is not installed (pip install triton)")

    def load(
        self, solution: Solution, target: BuildTarget, src_dir: Path, out_dir: Path, module_name: str
    ) -> Callable[..., Any]:
        if not target.is_cuda:
            os.environ[INTERPRET_ENV] = "1"
        return super().load(solution, target, src_dir, out_dir, module_name)
