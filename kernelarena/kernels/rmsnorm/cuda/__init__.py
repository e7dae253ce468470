"""The CUDA RMSNorm kernels (rmsnorm.cuh) and their three bindings, each built once per source version.

- ``launcher_module()``: rmsnorm_python.cu, a CPython module without torch's headers (built with nvcc in
  seconds); the library's "cuda" backend calls its ``launch`` with plain integers, the cheapest launch we have.
- ``extension()``: rmsnorm_torch.cu through ``torch.utils.cpp_extension`` (about a minute: torch's headers);
  the dataset's CUDA solution with binding ``torch``.
- ``tvm_ffi_module(op)``: the TVM-FFI entries, the dataset's CUDA solutions with binding ``tvm-ffi``.

Builds go under ``<cache>/<binding>/<name with a hash of the sources>`` (cache: kernelarena.build.toolchain's
``default_cache_root``), so an edited kernel is rebuilt and an unchanged one is loaded from the cache.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import importlib.util
import os
import subprocess
import sysconfig
import tempfile
from pathlib import Path

from kernelarena.build.toolchain import default_cache_root, find_nvcc
from kernelarena.errors import BuildError

SOURCE_DIR = Path(__file__).resolve().parent
KERNEL_HEADER = SOURCE_DIR / "rmsnorm.cuh"
PYTHON_BINDING = SOURCE_DIR / "rmsnorm_python.cu"
TORCH_BINDING = SOURCE_DIR / "rmsnorm_torch.cu"
TVM_FFI_HEADER = SOURCE_DIR / "rmsnorm_tvm_ffi.cuh"
TVM_FFI_ENTRIES = {"rmsnorm": SOURCE_DIR / "rmsnorm_tvm_ffi.cu",
                   "fused_add_rmsnorm": SOURCE_DIR / "fused_add_rmsnorm_tvm_ffi.cu"}
LAUNCHER_MODULE = "kernelarena_rmsnorm_launch"  # PyInit_ name in rmsnorm_python.cu
DTYPE_CODES = {"bfloat16": 0, "float16": 1}  # the launcher's dtype argument


def sources_digest(paths, extra: str = "") -> str:
    """First 12 hex digits of a SHA-256 over the files' names and contents (and ``extra``)."""
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def launcher_nvcc_command(arch: str, output: str) -> list[str]:
    """The nvcc line that builds rmsnorm_python.cu for ``arch`` (e.g. "90a") into the module ``output``.

    Raises BuildError when nvcc or Python's headers are missing."""
    nvcc = find_nvcc()
    if nvcc is None:
        raise BuildError("rmsnorm_cuda", "nvcc not found: the CUDA RMSNorm launcher cannot be built")
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").is_file():
        raise BuildError("rmsnorm_cuda", f"Python.h not found in {include}: install Python's development headers")
    return [str(nvcc), "-O3", "-std=c++17", f"-gencode=arch=compute_{arch},code=sm_{arch}", "--shared",
            "-Xcompiler", "-fPIC", f"-I{include}", f"-I{SOURCE_DIR}", "-o", output, str(PYTHON_BINDING)]


def build_launcher(arch: str) -> Path:
    """Build (unless cached) the launcher module for ``arch``; returns its path. BuildError with nvcc's log."""
    name = f"{LAUNCHER_MODULE}_{sources_digest([KERNEL_HEADER, PYTHON_BINDING], arch)}"
    path = default_cache_root() / "rmsnorm_launcher" / name / f"{LAUNCHER_MODULE}.so"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    command = launcher_nvcc_command(arch, "")
    fd, temporary = tempfile.mkstemp(prefix=f"{LAUNCHER_MODULE}.", suffix=".so.tmp", dir=path.parent)
    os.close(fd)
    try:
        command[command.index("-o") + 1] = temporary
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if result.returncode:
            raise BuildError("rmsnorm_cuda", f"nvcc failed on {PYTHON_BINDING.name} (exit {result.returncode})",
                             log=result.stderr[-8000:])
        os.replace(temporary, path)  # atomic: a concurrent build of the same sources writes the same module
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def load_launcher(path: Path):
    """Import the launcher module at ``path``."""
    loader = importlib.machinery.ExtensionFileLoader(LAUNCHER_MODULE, str(path))
    spec = importlib.util.spec_from_file_location(LAUNCHER_MODULE, str(path), loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=None)
def launcher_module(arch: str):
    """The launcher module for ``arch`` (built on first use). Raises BuildError when that fails."""
    path = build_launcher(arch)
    try:
        return load_launcher(path)
    except ImportError as exc:
        raise BuildError("rmsnorm_cuda", f"cannot import {path}", log=str(exc)) from exc


@functools.lru_cache(maxsize=None)
def extension():
    """The built torch extension (functions ``rmsnorm``, ``fused_add_rmsnorm``, ``run``).

    Raises BuildError with the compiler's output when the build fails."""
    from torch.utils.cpp_extension import load

    name = f"kernelarena_rmsnorm_{sources_digest([KERNEL_HEADER, TORCH_BINDING])}"
    build_dir = default_cache_root() / "torch_extensions" / name
    build_dir.mkdir(parents=True, exist_ok=True)
    try:
        return load(
            name=name,
            sources=[str(TORCH_BINDING)],
            extra_include_paths=[str(SOURCE_DIR)],
            extra_cuda_cflags=["-O3"],
            build_directory=str(build_dir),
            verbose=False,
        )
    except (RuntimeError, OSError, ImportError) as exc:
        raise BuildError("rmsnorm_cuda", f"building {TORCH_BINDING.name} failed", log=str(exc)) from exc


@functools.lru_cache(maxsize=None)
def tvm_ffi_module(op: str):
    """Build (cached by source hash) and load the TVM-FFI entry of ``op`` ("rmsnorm" or
    "fused_add_rmsnorm"); its ``run`` is the dataset's destination-passing entry point."""
    import tvm_ffi
    import tvm_ffi.cpp

    entry = TVM_FFI_ENTRIES[op]
    name = f"kernelarena_{op}_tvm_ffi_{sources_digest([KERNEL_HEADER, TVM_FFI_HEADER, entry])}"
    build_dir = default_cache_root() / "tvm_ffi" / name
    library = build_dir / f"{name}.so"
    if not library.is_file():
        try:
            library = Path(tvm_ffi.cpp.build(name=name, cuda_files=[str(entry)], extra_include_paths=[str(SOURCE_DIR)],
                                             build_directory=str(build_dir)))
        except Exception as exc:  # tvm_ffi raises plain RuntimeError/CalledProcessError with the log
            raise BuildError(f"{op}_cuda_tvm_ffi", f"building {entry.name} failed", log=str(exc)) from exc
    return tvm_ffi.load_module(str(library))
