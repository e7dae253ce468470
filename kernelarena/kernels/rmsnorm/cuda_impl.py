"""Builds and loads the CUDA RMSNorm kernels (rmsnorm.cuh) as a PyTorch extension, once per source version.

The extension is built by ``torch.utils.cpp_extension.load`` from ``rmsnorm_torch.cu`` into
``$KERNELARENA_CACHE_DIR/torch_extensions/<name>`` (default cache dir: ``$XDG_CACHE_HOME/kernelarena`` or
``~/.cache/kernelarena``). The name carries a hash of the sources, so an edited kernel is rebuilt and an
unchanged one is loaded from the cache (about a minute for the first build: torch's headers dominate).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from kernelarena import env
from kernelarena.errors import BuildError

SOURCE_DIR = Path(__file__).resolve().parent
KERNEL_HEADER = SOURCE_DIR / "rmsnorm.cuh"
TORCH_BINDING = SOURCE_DIR / "rmsnorm_torch.cu"
TVM_FFI_HEADER = SOURCE_DIR / "rmsnorm_tvm_ffi.cuh"
TVM_FFI_ENTRIES = {"rmsnorm": SOURCE_DIR / "rmsnorm_tvm_ffi.cu",
                   "fused_add_rmsnorm": SOURCE_DIR / "fused_add_rmsnorm_tvm_ffi.cu"}


def cache_dir() -> Path:
    """Root of kernelarena's build cache: $KERNELARENA_CACHE_DIR, else $XDG_CACHE_HOME/kernelarena, else
    ~/.cache/kernelarena."""
    return env.cache_root()


def _sources_digest(paths) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@functools.lru_cache(maxsize=None)
def extension():
    """The built torch extension (functions ``rmsnorm``, ``fused_add_rmsnorm``, ``run``).

    Raises BuildError with the compiler's output when the build fails."""
    from torch.utils.cpp_extension import load

    name = f"kernelarena_rmsnorm_{_sources_digest([KERNEL_HEADER, TORCH_BINDING])}"
    build_dir = cache_dir() / "torch_extensions" / name
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
    name = f"kernelarena_{op}_tvm_ffi_{_sources_digest([KERNEL_HEADER, TVM_FFI_HEADER, entry])}"
    build_dir = cache_dir() / "tvm_ffi" / name
    library = build_dir / f"{name}.so"
    if not library.is_file():
        try:
            library = Path(tvm_ffi.cpp.build(name=name, cuda_files=[str(entry)], extra_include_paths=[str(SOURCE_DIR)],
                                             build_directory=str(build_dir)))
        except Exception as exc:  # tvm_ffi raises plain RuntimeError/CalledProcessError with the log
            raise BuildError(f"{op}_cuda_tvm_ffi", f"building {entry.name} failed", log=str(exc)) from exc
    return tvm_ffi.load_module(str(library))
