"""C++ and CUDA solutions, bindings torch and tvm-ffi: real compiler runs, sharing one cache per module."""

from __future__ import annotations

import os

import pytest
import torch

from kernelarena.build import BuildCache, build_solution
from kernelarena.errors import BuildError, UnsupportedError

from .conftest import cxx_available, make_solution, nvcc_available

pytestmark = pytest.mark.skipif(not cxx_available(), reason="needs a C++ compiler (c++)")

TVM_FFI_ADD_CPP = """
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/function.h>

void run(tvm::ffi::TensorView a, tvm::ffi::TensorView b, tvm::ffi::TensorView out) {
  const float* x = static_cast<const float*>(a.data_ptr());
  const float* y = static_cast<const float*>(b.data_ptr());
  float* z = static_cast<float*>(out.data_ptr());
  for (int64_t i = 0; i < a.size(0); ++i) z[i] = x[i] + y[i];
}
TVM_FFI_DLL_EXPORT_TYPED_FUNC(run, run);
"""

TORCH_ADD_CPP = """
#include <torch/python.h>  // lighter than torch/extension.h: half the compile time
#include "scale.h"

void run(at::Tensor a, at::Tensor b, at::Tensor out) {
  auto x = a.accessor<float, 1>(), y = b.accessor<float, 1>();
  auto z = out.accessor<float, 1>();
  for (int64_t i = 0; i < a.size(0); ++i) z[i] = kScale * (x[i] + y[i]);
}
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("run", &run); }
"""

TVM_FFI_ADD_CU = """
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/function.h>

__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}

void run(tvm::ffi::TensorView a, tvm::ffi::TensorView b, tvm::ffi::TensorView out) {
  int64_t n = a.size(0);
  add_kernel<<<(n + 255) / 256, 256>>>(static_cast<const float*>(a.data_ptr()),
      static_cast<const float*>(b.data_ptr()), static_cast<float*>(out.data_ptr()), n);
}
TVM_FFI_DLL_EXPORT_TYPED_FUNC(run, run);
"""

# The CUDA kernel alone in the .cu file and the binding in a .cpp (a common layout): nvcc then never parses
# torch's headers, which takes it over a minute on a 2-core machine.
CUDA_ADD_KERNEL = """
#include <cstdint>
#include <cuda_runtime.h>

__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}

void launch_add(const float* a, const float* b, float* out, int64_t n) {
  add_kernel<<<(n + 255) / 256, 256>>>(a, b, out, n);
}
"""

TORCH_ADD_BINDING = """
#include <cstdint>
#include <torch/python.h>

void launch_add(const float* a, const float* b, float* out, int64_t n);

void run(at::Tensor a, at::Tensor b, at::Tensor out) {
  launch_add(a.data_ptr<float>(), b.data_ptr<float>(), out.data_ptr<float>(), a.numel());
}
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("run", &run); }
"""

# One .cu file with torch/extension.h, as many FlashInfer-Bench solutions are written.
TORCH_ADD_CU = """
#include <torch/extension.h>

__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}

void run(torch::Tensor a, torch::Tensor b, torch::Tensor out) {
  int64_t n = a.numel();
  add_kernel<<<(n + 255) / 256, 256>>>(a.data_ptr<float>(), b.data_ptr<float>(), out.data_ptr<float>(), n);
}
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("run", &run); }
"""


def tvm_ffi_cpp_add(name="cpp_tvm_add"):
    return make_solution(name, "cpp", "add.cpp::run", {"add.cpp": TVM_FFI_ADD_CPP}, binding="tvm-ffi")


def torch_cpp_add():
    return make_solution("cpp_torch_add", "cpp", "add.cpp::run",
                         {"add.cpp": TORCH_ADD_CPP, "scale.h": "constexpr float kScale = 1.0f;\n"}, binding="torch")


def cuda_add(binding, source):
    return make_solution(f"cuda_{binding}_add", "cuda", "add.cu::run", {"add.cu": source},
                         binding=binding, target_hardware=["cuda"])


def cuda_torch_split_add():
    return make_solution("cuda_torch_split_add", "cuda", "binding.cpp::run",
                         {"kernel.cu": CUDA_ADD_KERNEL, "binding.cpp": TORCH_ADD_BINDING},
                         binding="torch", target_hardware=["cuda"])


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One cache for the module: a compiled extension is reused by the tests after the first."""
    return BuildCache(tmp_path_factory.mktemp("native_cache"))


def add_inputs(device="cpu"):
    a, b = torch.randn(37, device=device), torch.randn(37, device=device)
    return a, b, torch.zeros_like(a)


def test_cpp_tvm_ffi_builds_and_runs_on_cpu(shared_cache):
    runnable = build_solution(tvm_ffi_cpp_add(), device="cpu", cache=shared_cache)
    a, b, out = add_inputs()
    runnable(a, b, out)  # torch tensors go in through DLPack, no copy
    torch.testing.assert_close(out, a + b)
    assert runnable.can_run_on("cpu") and not runnable.from_cache
    assert (runnable.build_dir / "manifest.json").is_file()
    assert build_solution(tvm_ffi_cpp_add(), device="cpu", cache=shared_cache).from_cache


def test_cpp_torch_extension_builds_and_runs_on_cpu(shared_cache):
    runnable = build_solution(torch_cpp_add(), device="cpu", cache=shared_cache)
    a, b, out = add_inputs()
    runnable(a, b, out)
    torch.testing.assert_close(out, a + b)
    assert runnable.can_run_on("cpu")
    # A new in-memory cache over the same folder loads the built extension instead of compiling.
    assert build_solution(torch_cpp_add(), device="cpu", cache=BuildCache(shared_cache.root)).from_cache


def test_cpp_compile_error_carries_the_compiler_log(shared_cache):
    broken = TVM_FFI_ADD_CPP.replace("z[i] = x[i] + y[i];", "z[i] = x[i] + undeclared_name;")
    with pytest.raises(BuildError, match="tvm-ffi build failed") as caught:
        build_solution(make_solution("cpp_broken", "cpp", "add.cpp::run", {"add.cpp": broken}), cache=shared_cache)
    assert "undeclared_name" in caught.value.log and "error" in caught.value.log
    assert not list((shared_cache.root / "build").glob(".cpp*")), "a failed build leaves no staging folder"


def test_torch_extension_error_carries_the_compiler_log(shared_cache):
    # A missing header stops the compiler at once, before it parses torch's headers (keeps the test fast).
    broken = '#include "no_such_header.h"\n' + TORCH_ADD_CPP
    solution = make_solution("cpp_torch_broken", "cpp", "add.cpp::run", {"add.cpp": broken}, binding="torch")
    with pytest.raises(BuildError, match="torch extension build failed") as caught:
        build_solution(solution, cache=shared_cache)
    assert "no_such_header.h" in caught.value.log


def test_missing_entry_symbol(shared_cache):
    solution = make_solution("cpp_no_entry", "cpp", "add.cpp::launch", {"add.cpp": TVM_FFI_ADD_CPP})
    with pytest.raises(BuildError, match="exports no 'launch'"):
        build_solution(solution, cache=shared_cache)


@pytest.mark.skipif(not nvcc_available(), reason="needs nvcc")
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the compile-only path of a machine without a GPU")
def test_cuda_tvm_ffi_compiles_without_gpu_and_refuses_to_run(shared_cache):
    runnable = build_solution(cuda_add("tvm-ffi", TVM_FFI_ADD_CU), device="cpu", cache=shared_cache)
    assert not runnable.can_run_on("cpu") and not runnable.can_run_on("cuda")
    assert "needs a CUDA device" in runnable.unavailable_reason
    assert (runnable.build_dir / "out" / "add.cu.o").stat().st_size > 0  # nvcc did compile it
    with pytest.raises(UnsupportedError, match="needs a CUDA device"):
        runnable(*add_inputs())


@pytest.mark.skipif(not nvcc_available(), reason="needs nvcc")
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the compile-only path of a machine without a GPU")
def test_cuda_compile_error_without_gpu_is_a_build_error(shared_cache):
    broken = cuda_add("tvm-ffi", TVM_FFI_ADD_CU.replace("out[i] = a[i] + b[i];", "out[i] = a[i] + b;"))
    with pytest.raises(BuildError, match="compiling add.cu failed") as caught:
        build_solution(broken, device="cpu", cache=shared_cache)
    assert "nvcc" in caught.value.log and "add.cu" in caught.value.log and "error" in caught.value.log


@pytest.mark.skipif(not nvcc_available(), reason="needs nvcc")
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the compile-only path of a machine without a GPU")
def test_cuda_torch_extension_compiles_without_gpu(shared_cache):
    runnable = build_solution(cuda_torch_split_add(), device="cpu", cache=shared_cache)
    assert not runnable.can_run_on("cpu")
    objects = {p.name for p in (runnable.build_dir / "out").glob("*.o")}
    assert objects == {"kernel.cu.o", "binding.cpp.o"}


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("KERNELARENA_SLOW_TESTS"),
                    reason="slow (over a minute): set KERNELARENA_SLOW_TESTS=1")
@pytest.mark.skipif(not nvcc_available(), reason="needs nvcc")
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the compile-only path of a machine without a GPU")
def test_cuda_file_including_torch_extension_compiles_without_gpu(shared_cache):
    # nvcc over torch/extension.h with torch's flags (C++20, its defines): about 110 s on a 2-core machine.
    runnable = build_solution(cuda_add("torch", TORCH_ADD_CU), device="cpu", cache=shared_cache)
    assert (runnable.build_dir / "out" / "add.cu.o").stat().st_size > 0


@pytest.mark.gpu
@pytest.mark.parametrize("make", [lambda: cuda_add("tvm-ffi", TVM_FFI_ADD_CU), lambda: cuda_add("torch", TORCH_ADD_CU),
                                  cuda_torch_split_add], ids=["tvm-ffi", "torch", "torch-split"])
def test_cuda_solution_runs_on_gpu(shared_cache, make):
    runnable = build_solution(make(), device="cuda", cache=shared_cache)
    a, b, out = add_inputs("cuda")
    runnable(a, b, out)
    torch.testing.assert_close(out, a + b)
    assert runnable.can_run_on("cuda") and not runnable.can_run_on("cpu")
    major, minor = torch.cuda.get_device_capability()
    assert runnable.target.cache_tag == f"cuda-sm{major}{minor}"
