"""C++/CUDA solutions with binding ``torch``: a PyTorch extension built by torch.utils.cpp_extension.

The entry file exports its function with ``PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("run", &run); }``;
``TORCH_EXTENSION_NAME`` is defined by the build (a name unique to the cache key).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import sysconfig
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from ..errors import BuildError
from ..schema import Solution
from ..schema.solution import Binding
from .builder import Builder
from .compile_check import compile_objects
from .native import (
    NATIVE_LANGUAGES,
    check_compilers,
    native_toolchain,
    source_files,
    unavailable_without_gpu,
)
from .toolchain import BuildTarget, gencode_flag, package_version

# torch.utils.cpp_extension builds with C++20 from torch 2.10 on; the compile-only check matches it.
TORCH_CXX_STD = "c++20"
# Flags torch.utils.cpp_extension gives nvcc (COMMON_NVCC_FLAGS), so the CPU-only check sees the same code.
TORCH_NVCC_FLAGS = (
    "-D__CUDA_NO_HALF_OPERATORS__",
    "-D__CUDA_NO_HALF_CONVERSIONS__",
    "-D__CUDA_NO_BFLOAT16_CONVERSIONS__",
    "-D__CUDA_NO_HALF2_OPERATORS__",
    "--expt-relaxed-constexpr",
)


class TorchExtensionBuilder(Builder):
    """Builds ``cuda``/``cpp`` with ``binding: torch``, compiled with -O3 for the device's arch."""

    name = "torch_ext"

    def can_build(self, solution: Solution) -> bool:
        return solution.spec.language in NATIVE_LANGUAGES and solution.spec.binding == Binding.TORCH

    def toolchain(self, solution: Solution, target: BuildTarget) -> Dict[str, Optional[str]]:
        return native_toolchain(solution, torch=package_version("torch"))

    def check_available(self, solution: Solution, target: BuildTarget) -> None:
        check_compilers(solution)

    def compile(
        self, solution: Solution, target: BuildTarget, src_dir: Path, out_dir: Path, module_name: str
    ) -> str:
        cxx, cuda = source_files(solution, src_dir)
        if unavailable_without_gpu(solution, target):
            return self._compile_only(solution, target, src_dir, out_dir, module_name)
        from torch.utils import cpp_extension

        try:
            cpp_extension.load(
                name=module_name,
                sources=[str(p) for p in cxx + cuda],
                extra_cflags=["-O3"],
                # An explicit -gencode also stops torch from adding its own arch list.
                extra_cuda_cflags=["-O3", gencode_flag(target.cuda_arch)] if cuda else None,
                extra_include_paths=[str(src_dir)],
                build_directory=str(out_dir),
                with_cuda=bool(cuda),
                verbose=False,
            )
        except Exception as exc:  # torch raises RuntimeError("Error building extension ...: <ninja output>")
            raise BuildError(solution.name, "torch extension build failed", log=str(exc)) from exc
        ninja_log = out_dir / ".ninja_log"
        return ninja_log.read_text() if ninja_log.is_file() else ""

    @staticmethod
    def _compile_only(solution: Solution, target: BuildTarget, src_dir: Path, out_dir: Path, module_name: str) -> str:
        from torch.utils import cpp_extension

        cxx, cuda = source_files(solution, src_dir)
        python_include = sysconfig.get_path("include", scheme="posix_prefix")
        torch_includes = cpp_extension.include_paths("cpu")
        return compile_objects(
            solution.name,
            cxx_files=cxx,
            cuda_files=cuda,
            out_dir=out_dir,
            include_dirs=[str(src_dir)],
            system_include_dirs=[*torch_includes, *_cpu_wheel_shims(torch_includes[0], out_dir), python_include],
            defines=[f"TORCH_EXTENSION_NAME={module_name}", "TORCH_API_INCLUDE_EXTENSION_H"],
            cxx_std=TORCH_CXX_STD,
            cuda_arch=target.cuda_arch,
            extra_cuda_flags=TORCH_NVCC_FLAGS,
        )

    def unavailable_reason(self, solution: Solution, target: BuildTarget) -> Optional[str]:
        return unavailable_without_gpu(solution, target)


    def load(
        self, solution: Solution, target: BuildTarget, src_dir: Path, out_dir: Path, module_name: str
    ) -> Callable[..., Any]:
        import torch  # noqa: F401  (loads libtorch, which the extension links against)

        module = sys.modules.get(module_name)  # cpp_extension.load imported it when this process compiled it
        if module is None:
            library = out_dir / f"{module_name}.so"
            if not library.is_file():
                raise BuildError(solution.name, f"built extension {library} is missing")
            loader = importlib.machinery.ExtensionFileLoader(module_name, str(library))
            spec = importlib.util.spec_from_file_location(module_name, library, loader=loader)
            module = importlib.util.module_from_spec(spec)
            try:
                loader.exec_module(module)
            except Exception as exc:
                raise BuildError(solution.name, f"loading {library.name} failed: {exc}") from exc
            sys.modules[module_name] = module
        fn = getattr(module, solution.entry_symbol, None)
        if fn is None:
            exported = sorted(n for n in dir(module) if not n.startswith("_"))
            raise BuildError(solution.name, f"the extension exports no {solution.entry_symbol!r} "
                                            f"(it exports {exported}); check m.def(...) in PYBIND11_MODULE")
        return fn


def _cpu_wheel_shims(torch_include: str, out_dir: Path) -> List[str]:
    """Include folders that stand in for headers a CPU-only torch wheel leaves out.

    c10/cuda/CUDAMacros.h (reached from c10/cuda/CUDAStream.h, CUDAGuard.h) includes
    c10/cuda/impl/cuda_cmake_macros.h, which CMake generates only in CUDA builds of torch; without it a
    solution that uses torch's CUDA stream cannot even be checked. In a CUDA build it defines one macro.
    """
    if (Path(torch_include) / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h").is_file():
        return []
    shim = out_dir / "cpu_torch_shim"
    header = shim / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
    header.parent.mkdir(parents=True, exist_ok=True)
    header.write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
    return [str(shim)]
