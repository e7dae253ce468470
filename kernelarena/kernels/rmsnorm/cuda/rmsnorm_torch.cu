// PyTorch binding of the RMSNorm kernels in rmsnorm.cuh.
//
// Exports, for the library (eps and threads-per-row as arguments):
//   rmsnorm(x, weight, out, eps, threads_per_row)
//   fused_add_rmsnorm(x, residual, weight, out, residual_out, eps, threads_per_row)
// and `run`, the dataset's destination-passing entry point (eps = 1e-6), overloaded on its arity:
//   run(hidden_states, weight, output)                                        -> rmsnorm_h*
//   run(hidden_states, residual, weight, output, residual_out)                -> fused_add_rmsnorm_h*
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>

#include "rmsnorm.cuh"

namespace {

using kernelarena_rmsnorm::RmsnormParams;

void check_rows(const torch::Tensor& t, const torch::Tensor& like, const char* name) {
  TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor");
  TORCH_CHECK(t.dim() == 2, name, " must be 2-D [rows, hidden], got ", t.dim(), " dims");
  TORCH_CHECK(t.sizes() == like.sizes(), name, " has shape ", t.sizes(), ", expected ", like.sizes());
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), name, " has dtype ", t.scalar_type(), ", expected ",
              like.scalar_type());
  TORCH_CHECK(t.stride(1) == 1, name, " must be contiguous along the hidden dimension");
}

template <bool FUSED>
void launch(const torch::Tensor& x, const torch::Tensor* residual, const torch::Tensor& weight,
            torch::Tensor& out, torch::Tensor* residual_out, double eps, int64_t threads_per_row) {
  check_rows(x, x, "x");
  TORCH_CHECK(x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf,
              "x must be bfloat16 or float16, got ", x.scalar_type());
  TORCH_CHECK(weight.is_cuda() && weight.dim() == 1 && weight.size(0) == x.size(1) && weight.is_contiguous(),
              "weight must be a contiguous CUDA tensor of shape [", x.size(1), "]");
  TORCH_CHECK(weight.scalar_type() == x.scalar_type(), "weight dtype must match x");
  check_rows(out, x, "out");
  if constexpr (FUSED) {
    check_rows(*residual, x, "residual");
    check_rows(*residual_out, x, "residual_out");
  }
  const RmsnormParams p = kernelarena_rmsnorm::make_params<FUSED>(x, residual, weight, out, residual_out,
                                                                  static_cast<float>(eps));
  TORCH_CHECK(p.hidden > 0 && p.hidden <= kernelarena_rmsnorm::kMaxHidden, "hidden size ", x.size(1),
              " is outside 1..", kernelarena_rmsnorm::kMaxHidden);
  const c10::cuda::CUDAGuard guard(x.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  cudaError_t err;
  if (x.scalar_type() == at::kBFloat16)
    err = kernelarena_rmsnorm::launch_rmsnorm<__nv_bfloat16, FUSED>(p, static_cast<int>(threads_per_row), stream);
  else
    err = kernelarena_rmsnorm::launch_rmsnorm<__half, FUSED>(p, static_cast<int>(threads_per_row), stream);
  TORCH_CHECK(err == cudaSuccess, "rmsnorm kernel launch failed: ", cudaGetErrorString(err));
}

void rmsnorm(torch::Tensor x, torch::Tensor weight, torch::Tensor out, double eps, int64_t threads_per_row) {
  launch<false>(x, nullptr, weight, out, nullptr, eps, threads_per_row);
}

void fused_add_rmsnorm(torch::Tensor x, torch::Tensor residual, torch::Tensor weight, torch::Tensor out,
                       torch::Tensor residual_out, double eps, int64_t threads_per_row) {
  launch<true>(x, &residual, weight, out, &residual_out, eps, threads_per_row);
}

constexpr double kDatasetEps = 1e-6;

void run_rmsnorm(torch::Tensor hidden_states, torch::Tensor weight, torch::Tensor output) {
  rmsnorm(hidden_states, weight, output, kDatasetEps, 0);
}

void run_fused_add_rmsnorm(torch::Tensor hidden_states, torch::Tensor residual, torch::Tensor weight,
                           torch::Tensor output, torch::Tensor residual_out) {
  fused_add_rmsnorm(hidden_states, residual, weight, output, residual_out, kDatasetEps, 0);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  namespace py = pybind11;
  m.def("rmsnorm", &rmsnorm, "out = rmsnorm(x) * weight", py::arg("x"), py::arg("weight"), py::arg("out"),
        py::arg("eps"), py::arg("threads_per_row"));
  m.def("fused_add_rmsnorm", &fused_add_rmsnorm, "residual_out = x + residual; out = rmsnorm(residual_out) * weight",
        py::arg("x"), py::arg("residual"), py::arg("weight"), py::arg("out"), py::arg("residual_out"), py::arg("eps"),
        py::arg("threads_per_row"));
  m.def("run", &run_rmsnorm, "dataset entry for rmsnorm_h*", py::arg("hidden_states"), py::arg("weight"),
        py::arg("output"));
  m.def("run", &run_fused_add_rmsnorm, "dataset entry for fused_add_rmsnorm_h*", py::arg("hidden_states"),
        py::arg("residual"), py::arg("weight"), py::arg("output"), py::arg("residual_out"));
}
