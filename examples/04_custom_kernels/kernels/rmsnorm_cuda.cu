// RMSNorm in CUDA C++: one block of 256 threads per row; each thread sums the squares of a strided slice of
// the row in float32, a warp shuffle then shared memory reduce the sums, and each thread scales its slice.
#include <c10/cuda/CUDAStream.h>
#include <cuda_bf16.h>
#include <torch/extension.h>

constexpr int kThreads = 256;

__global__ void rmsnorm_kernel(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* out, int hidden,
                               float eps) {
  const __nv_bfloat16* row = x + static_cast<int64_t>(blockIdx.x) * hidden;
  __nv_bfloat16* out_row = out + static_cast<int64_t>(blockIdx.x) * hidden;
  float sum = 0.f;
  for (int i = threadIdx.x; i < hidden; i += kThreads) {
    float v = __bfloat162float(row[i]);
    sum += v * v;
  }
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffff, sum, offset);
  __shared__ float warp_sums[kThreads / 32];
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = sum;
  __syncthreads();
  float total = 0.f;
  for (int i = 0; i < kThreads / 32; ++i) total += warp_sums[i];
  const float inv_rms = rsqrtf(total / hidden + eps);
  for (int i = threadIdx.x; i < hidden; i += kThreads) {
    out_row[i] = __float2bfloat16(__bfloat162float(row[i]) * inv_rms * __bfloat162float(w[i]));
  }
}

void run(torch::Tensor hidden_states, torch::Tensor weight, torch::Tensor output) {
  TORCH_CHECK(hidden_states.is_cuda() && hidden_states.is_contiguous(), "hidden_states: a contiguous CUDA tensor");
  TORCH_CHECK(hidden_states.scalar_type() == at::kBFloat16, "hidden_states: bfloat16 only");
  const int rows = hidden_states.size(0), hidden = hidden_states.size(1);
  if (rows == 0) return;
  rmsnorm_kernel<<<rows, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      reinterpret_cast<const __nv_bfloat16*>(hidden_states.data_ptr()),
      reinterpret_cast<const __nv_bfloat16*>(weight.data_ptr()),
      reinterpret_cast<__nv_bfloat16*>(output.data_ptr()), hidden, 1e-6f);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("run", &run); }
