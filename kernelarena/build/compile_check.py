"""Compiling C++/CUDA sources to object files only: how a CUDA solution is built on a machine without a GPU.

Without a GPU the solution cannot run, but nvcc can still compile it for the target arch, so syntax and type
errors surface as a build failure with the compiler's log instead of waiting for a GPU machine.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import List, Sequence

from ..errors import BuildError
from .toolchain import cxx_compiler, find_nvcc, gencode_flag

CUDA_SUFFIXES = (".cu",)
CXX_SUFFIXES = (".cpp", ".cc", ".cxx", ".c")


def split_sources(paths: Sequence[Path]) -> tuple[List[Path], List[Path]]:
    """(C/C++ files, CUDA files) among ``paths``, by suffix; headers and other files are neither."""
    cxx = [p for p in paths if p.suffix in CXX_SUFFIXES]
    cuda = [p for p in paths if p.suffix in CUDA_SUFFIXES]
    return cxx, cuda


def compile_objects(
    solution: str,
    *,
    cxx_files: Sequence[Path],
    cuda_files: Sequence[Path],
    out_dir: Path,
    include_dirs: Sequence[str],
    system_include_dirs: Sequence[str],
    defines: Sequence[str] = (),
    cxx_std: str,
    cuda_arch: str,
    extra_cuda_flags: Sequence[str] = (),
) -> str:
    """Compile every file to ``out_dir/<name>.o`` (C++ with the host compiler, CUDA with nvcc for
    ``cuda_arch``), with no linking. ``include_dirs``: the solution's own; ``system_include_dirs``: libraries'.
    Returns the combined compiler output.

    Raises BuildError with that output when a file fails or nvcc is needed but absent.
    """
    # Library headers as system headers: their warnings would bury the solution's own.
    includes = [f"-I{path}" for path in include_dirs]
    includes += [flag for path in system_include_dirs for flag in ("-isystem", str(path))]
    macros = [f"-D{d}" for d in defines]
    commands = []
    for path in cxx_files:
        commands.append([cxx_compiler(), f"-std={cxx_std}", "-O3", "-fPIC", *includes, *macros,
                         "-c", str(path), "-o", str(out_dir / (path.name + ".o"))])
    if cuda_files:
        nvcc = find_nvcc()
        if nvcc is None:
            raise BuildError(solution, "nvcc not found (set CUDA_HOME or put nvcc on PATH) to compile "
                                       + ", ".join(p.name for p in cuda_files))
        for path in cuda_files:
            commands.append([nvcc, f"-std={cxx_std}", "-O3", "-Xcompiler", "-fPIC", gencode_flag(cuda_arch),
                             *extra_cuda_flags, *includes, *macros,
                             "-c", str(path), "-o", str(out_dir / (path.name + ".o"))])
    log = []
    for command in commands:
        completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=out_dir)
        log.append("$ " + " ".join(command) + "\n" + completed.stdout + completed.stderr)
        if completed.returncode != 0:
            raise BuildError(solution, f"compiling {Path(command[-3]).name} failed "
                                       f"(exit {completed.returncode})", log="\n".join(log))
    return "\n".join(log)
