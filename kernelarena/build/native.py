"""What the two C++/CUDA builders (torch extension, tvm-ffi) share: which sources they compile, when a
solution needs a GPU, and the toolchain that goes into their cache key."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..errors import BuildError
from ..schema import Solution
from ..schema.solution import Language
from .compile_check import split_sources
from .toolchain import BuildTarget, cxx_compiler, cxx_version, find_nvcc, nvcc_version, python_version

NATIVE_LANGUAGES = (Language.CUDA, Language.CPP)


def has_cuda_sources(solution: Solution) -> bool:
    return any(Path(s.path).suffix == ".cu" for s in solution.sources)


def needs_cuda_device(solution: Solution) -> bool:
    """A ``cuda`` solution, or any solution with a .cu file, runs only on a GPU."""
    return solution.spec.language == Language.CUDA or has_cuda_sources(solution)


def source_files(solution: Solution, src_dir: Path) -> Tuple[List[Path], List[Path]]:
    """(C/C++ files, CUDA files) of the solution as written under ``src_dir``; BuildError when neither."""
    cxx, cuda = split_sources([src_dir / s.path for s in solution.sources])
    if not cxx and not cuda:
        raise BuildError(solution.name, "no .cpp/.cc/.cxx/.c or .cu file among the sources to compile")
    return cxx, cuda


def native_toolchain(solution: Solution, **libraries: Optional[str]) -> Dict[str, Optional[str]]:
    versions: Dict[str, Optional[str]] = {"python": python_version(), "cxx": cxx_version(), **libraries}
    if has_cuda_sources(solution):
        versions["nvcc"] = nvcc_version()
    return versions


def check_compilers(solution: Solution) -> None:
    """BuildError naming the missing compiler: the host C++ compiler always, nvcc for .cu files."""
    if shutil.which(cxx_compiler()) is None:
        raise BuildError(solution.name, f"C++ compiler {cxx_compiler()!r} not found (set CXX or install g++)")
    if has_cuda_sources(solution) and find_nvcc() is None:
        raise BuildError(solution.name, "nvcc not found (set CUDA_HOME or put nvcc on PATH) to compile .cu files")


def unavailable_without_gpu(solution: Solution, target: BuildTarget) -> Optional[str]:
    if needs_cuda_device(solution) and not target.is_cuda:
        return (f"a CUDA solution needs a CUDA device; on this machine the build only compiled it "
                f"(sm_{target.cuda_arch.replace('.', '')}, not linked) to check the sources")
    return None
