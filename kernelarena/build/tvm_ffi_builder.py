"""C++/CUDA solutions with binding ``tvm-ffi`` (also the default when no binding is given).

The entry file exports its function with ``TVM_FFI_DLL_EXPORT_TYPED_FUNC(run, run);`` taking
``tvm::ffi::TensorView`` arguments. tvm_ffi accepts torch tensors directly (through DLPack, no copy) and
hands returned tensors back as torch tensors, so the entry function is called with no wrapper.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

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
from .toolchain import BuildTarget, package_version

TVM_FFI_CXX_STD = "c++17"
ARCH_ENV = "TVM_FFI_CUDA_ARCH_LIST"
# tvm_ffi.cpp.build reads the arch from the environment only; builds that set it take turns.
_arch_env_lock = threading.Lock()


class TvmFfiBuilder(Builder):
    """Builds ``cuda``/``cpp`` with ``binding: tvm-ffi`` or no binding, with -O3 for the device's arch."""

    name = "tvm_ffi"

    def can_build(self, solution: Solution) -> bool:
        return solution.spec.language in NATIVE_LANGUAGES and solution.spec.binding in (None, Binding.TVM_FFI)

    def toolchain(self, solution: Solution, target: BuildTarget) -> Dict[str, Optional[str]]:
        return native_toolchain(solution, tvm_ffi=package_version("apache-tvm-ffi"))

    def check_available(self, solution: Solution, target: BuildTarget) -> None:
        if package_version("apache-tvm-ffi") is None:
            raise BuildError(solution.name, "apache-tvm-ffi is not installed (pip install apache-tvm-ffi)")
        check_compilers(solution)

    def compile(
        self, solution: Solution, target: BuildTarget, src_dir: Path, out_dir: Path, module_name: str
    ) -> str:
        import tvm_ffi.cpp
        from tvm_ffi import libinfo

        cxx, cuda = source_files(solution, src_dir)
        if unavailable_without_gpu(solution, target):
            return compile_objects(
                solution.name,
                cxx_files=cxx,
                cuda_files=cuda,
                out_dir=out_dir,
                include_dirs=[str(src_dir)],
                system_include_dirs=[libinfo.find_include_path(), libinfo.find_dlpack_include_path()],
                cxx_std=TVM_FFI_CXX_STD,
                cuda_arch=target.cuda_arch,
            )
        try:
            with _cuda_arch(target.cuda_arch if cuda else None):
                tvm_ffi.cpp.build(
                    name=module_name,
                    cpp_files=[str(p) for p in cxx],
                    cuda_files=[str(p) for p in cuda],
                    extra_cflags=["-O3"],
                    extra_cuda_cflags=["-O3"],
                    extra_include_paths=[str(src_dir)],
                    build_directory=str(out_dir),
                    backend="cuda" if cuda else None,
                )
        except Exception as exc:  # tvm_ffi raises RuntimeError("ninja exited with status ...: <output>")
            raise BuildError(solution.name, "tvm-ffi build failed", log=str(exc)) from exc
        ninja_log = out_dir / ".ninja_log"
        return ninja_log.read_text() if ninja_log.is_file() else ""

    def unavailable_reason(self, solution: Solution, target: BuildTarget) -> Optional[str]:
        return unavailable_without_gpu(solution, target)

    def load(
        self, solution: Solution, target: BuildTarget, src_dir: Path, out_dir: Path, module_name: str
    ) -> Callable[..., Any]:
        import tvm_ffi

        library = out_dir / f"{module_name}.so"
        try:
            module = tvm_ffi.load_module(str(library))
        except Exception as exc:
            raise BuildError(solution.name, f"loading {library} failed: {exc}") from exc
        fn = getattr(module, solution.entry_symbol, None)
        if fn is None:
            raise BuildError(solution.name, f"the library exports no {solution.entry_symbol!r}; export it with "
                                            f"TVM_FFI_DLL_EXPORT_TYPED_FUNC({solution.entry_symbol}, ...)")
        return fn


@contextmanager
def _cuda_arch(arch: Optional[str]) -> Iterator[None]:
    """Set TVM_FFI_CUDA_ARCH_LIST to ``arch`` for the duration (nothing when ``arch`` is None)."""
    if arch is None:
        yield
        return
    with _arch_env_lock:
        previous = os.environ.get(ARCH_ENV)
        os.environ[ARCH_ENV] = arch
        try:
            yield
        finally:
            if previous is None:
                del os.environ[ARCH_ENV]
            else:
                os.environ[ARCH_ENV] = previous
