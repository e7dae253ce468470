"""The CUDA and TileLang RMSNorm sources build where the toolchain exists (compile only: no GPU needed)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from kernelarena.errors import BuildError
from kernelarena.kernels.rmsnorm import cuda as cuda_impl

NVCC = shutil.which("nvcc") or (shutil.which("nvcc", path="/usr/local/cuda/bin"))
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found")


def nvcc_compile(source: Path, out: Path, *include_dirs: str, defines=()) -> None:
    cmd = [NVCC, "-std=c++17", "-O3", "-arch=sm_90", "-c", str(source), "-o", str(out), "-I", str(cuda_impl.SOURCE_DIR)]
    cmd += [f"-I{d}" for d in include_dirs] + [f"-D{d}" for d in defines]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]


@needs_nvcc
@pytest.mark.parametrize("op", ["rmsnorm", "fused_add_rmsnorm"])
def test_tvm_ffi_entries_compile(op, tmp_path):
    tvm_ffi = pytest.importorskip("tvm_ffi")
    root = Path(tvm_ffi.__file__).parent
    nvcc_compile(cuda_impl.TVM_FFI_ENTRIES[op], tmp_path / f"{op}.o", str(root / "include"),
                 str(root / "3rdparty" / "dlpack" / "include"))


@needs_nvcc
@pytest.mark.skipif(os.environ.get("KERNELARENA_SLOW_TESTS") != "1",
                    reason="about 90 s (torch's headers); set KERNELARENA_SLOW_TESTS=1")
def test_torch_binding_compiles(tmp_path):
    import sysconfig

    from torch.utils.cpp_extension import include_paths

    # A CPU-only torch wheel lacks this generated header of its CUDA build; its content is one define.
    stub = tmp_path / "stub" / "c10" / "cuda" / "impl"
    stub.mkdir(parents=True)
    (stub / "cuda_cmake_macros.h").write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
    nvcc_compile(cuda_impl.TORCH_BINDING, tmp_path / "torch.o", str(tmp_path / "stub"), *include_paths(),
                 sysconfig.get_paths()["include"],
                 defines=("TORCH_EXTENSION_NAME=kernelarena_rmsnorm_test", "TORCH_API_INCLUDE_EXTENSION_H"))


@pytest.mark.parametrize("hidden,fused", [(4096, False), (8192, True)])
def test_tilelang_lowers_to_vectorized_cuda(hidden, fused):
    pytest.importorskip("tilelang")
    from kernelarena.kernels.rmsnorm import tilelang as tilelang_impl

    source = tilelang_impl.cuda_source(hidden, "bfloat16", fused)
    assert "__global__" in source
    assert "uint4" in source  # 16-byte global accesses
    assert ("ROut" in source) == fused


def test_builds_go_under_the_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("KERNELARENA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cuda_impl, "find_nvcc", lambda: None)
    with pytest.raises(BuildError, match="nvcc not found"):
        cuda_impl.build_launcher("90a")


@needs_nvcc
@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="launches with null pointers: only where no GPU can run them")
def test_python_launcher_builds_imports_and_checks_its_arguments(monkeypatch, tmp_path):
    """The CPython binding (the library's "cuda" backend) builds without torch's headers and imports on a
    machine without a GPU; its argument checks answer before any CUDA call."""
    monkeypatch.setenv("KERNELARENA_CACHE_DIR", str(tmp_path))
    path = cuda_impl.build_launcher("90a")
    assert path.is_file() and path.is_relative_to(tmp_path)
    assert cuda_impl.build_launcher("90a") == path  # cached by source hash: no second build
    launch = cuda_impl.load_launcher(path).launch
    args = [0, 0, 0, 4096, 0, 0, 0, 0, 4096, 0, 0, 0, 4096, 1e-6, 0]  # zero rows: nothing to launch
    assert launch(*args) is None
    with pytest.raises(TypeError, match="takes 15 to 17 arguments, got 3"):
        launch(*args[:3])
    assert launch(*args, 256) is None  # threads per row, chosen (benchmarks/bench_rmsnorm.py --sweep)
    assert launch(*args, 0, 1) is None  # programmatic dependent launch
    with pytest.raises(ValueError, match="threads_per_row 96"):
        launch(*args, 96)
    with pytest.raises(ValueError, match="hidden must be in 1..16384"):
        launch(*args[:12], 16385, *args[13:])
    with pytest.raises(ValueError, match="dtype code 2"):
        launch(0, 2, *args[2:])
    with pytest.raises(RuntimeError, match="rmsnorm kernel launch failed"):  # no device to launch on
        launch(*args[:11], 1, *args[12:])
