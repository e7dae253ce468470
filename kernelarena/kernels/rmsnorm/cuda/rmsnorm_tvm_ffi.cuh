// TVM-FFI binding helpers for the RMSNorm kernels in rmsnorm.cuh: argument checks and the launch on the
// caller's stream. The dataset's tvm-ffi solutions include this from a one-line entry file that exports
// `run` (rmsnorm_tvm_ffi.cu and fused_add_rmsnorm_tvm_ffi.cu).
#pragma once

#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/extra/c_env_api.h>
#include <tvm/ffi/function.h>

#include "rmsnorm.cuh"

namespace kernelarena_rmsnorm {

constexpr float kDatasetEps = 1e-6f;

inline bool is_half_width_float(DLDataType t, int code) { return t.code == code && t.bits == 16 && t.lanes == 1; }

inline void check_rows(const tvm::ffi::TensorView& t, const tvm::ffi::TensorView& like, const char* name) {
  if (t.device().device_type != kDLCUDA) TVM_FFI_THROW(ValueError) << name << " must be a CUDA tensor";
  if (t.ndim() != 2) TVM_FFI_THROW(ValueError) << name << " must be 2-D [rows, hidden]";
  if (t.size(0) != like.size(0) || t.size(1) != like.size(1))
    TVM_FFI_THROW(ValueError) << name << " has a shape other than hidden_states'";
  if (t.dtype().code != like.dtype().code || t.dtype().bits != like.dtype().bits)
    TVM_FFI_THROW(ValueError) << name << " has a dtype other than hidden_states'";
  if (t.stride(1) != 1) TVM_FFI_THROW(ValueError) << name << " must be contiguous along the hidden dimension";
}

template <bool FUSED>
void launch_tvm_ffi(tvm::ffi::TensorView x, const tvm::ffi::TensorView* residual, tvm::ffi::TensorView weight,
                    tvm::ffi::TensorView out, const tvm::ffi::TensorView* residual_out) {
  check_rows(x, x, "hidden_states");
  check_rows(out, x, "output");
  if (weight.ndim() != 1 || weight.size(0) != x.size(1) || weight.stride(0) != 1)
    TVM_FFI_THROW(ValueError) << "weight must be contiguous of shape [hidden_size]";
  if constexpr (FUSED) {
    check_rows(*residual, x, "residual");
    check_rows(*residual_out, x, "residual_out");
  }
  const RmsnormParams p = kernelarena_rmsnorm::make_params<FUSED>(x, residual, weight, out, residual_out,
                                                                  kDatasetEps);
  auto stream = static_cast<cudaStream_t>(TVMFFIEnvGetStream(x.device().device_type, x.device().device_id));
  cudaError_t err;
  if (is_half_width_float(x.dtype(), kDLBfloat))
    err = launch_rmsnorm<__nv_bfloat16, FUSED>(p, 0, stream);
  else if (is_half_width_float(x.dtype(), kDLFloat))
    err = launch_rmsnorm<__half, FUSED>(p, 0, stream);
  else
    TVM_FFI_THROW(TypeError) << "hidden_states must be bfloat16 or float16";
  if (err != cudaSuccess) TVM_FFI_THROW(RuntimeError) << "rmsnorm kernel launch failed: " << cudaGetErrorString(err);
}

}  // namespace kernelarena_rmsnorm
