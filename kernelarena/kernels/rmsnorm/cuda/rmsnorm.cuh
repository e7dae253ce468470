// RMSNorm and fused add + RMSNorm CUDA kernels for 2-byte floats (bf16, fp16), float32 accumulation.
//
//   rmsnorm:            out = x * rsqrt(mean(x^2) + eps) * w
//   fused_add_rmsnorm:  s = x + r;  residual_out = s;  out = s * rsqrt(mean(s^2) + eps) * w
//
// The norm of the fused variant uses s in float32 (not s rounded to the storage type). Outputs may alias
// inputs (out == x, residual_out == residual): every element is read and then written by the same thread.
//
// Self-contained (CUDA runtime headers only): this file is one of the sources of the dataset's CUDA
// solutions and of the library's torch extension.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace kernelarena_rmsnorm {

// Elements in one 16-byte access of a 2-byte type.
constexpr int kVecElems = 8;
// The register-resident scalar fallback keeps this many elements per thread (256 threads: 16384 per row).
constexpr int kFallbackThreads = 256;
constexpr int kFallbackPerThread = 64;
constexpr int kMaxHidden = kFallbackThreads * kFallbackPerThread;

struct RmsnormParams {
  const void* x;
  int64_t x_row_stride;
  const void* residual;  // fused only
  int64_t residual_row_stride;
  const void* weight;
  void* out;
  int64_t out_row_stride;
  void* residual_out;  // fused only
  int64_t residual_out_row_stride;
  int64_t rows;
  int hidden;
  float eps;
};

// Kernel parameters from any tensor type with data_ptr(), size(i) and stride(i) (torch::Tensor in the PyTorch
// binding, tvm::ffi::TensorView in the TVM-FFI one). The bindings check shapes and dtypes first.
template <bool FUSED, typename Tensor>
RmsnormParams make_params(const Tensor& x, const Tensor* residual, const Tensor& weight, const Tensor& out,
                          const Tensor* residual_out, float eps) {
  RmsnormParams p{};
  p.x = x.data_ptr();
  p.x_row_stride = x.stride(0);
  p.weight = weight.data_ptr();
  p.out = out.data_ptr();
  p.out_row_stride = out.stride(0);
  if constexpr (FUSED) {
    p.residual = residual->data_ptr();
    p.residual_row_stride = residual->stride(0);
    p.residual_out = residual_out->data_ptr();
    p.residual_out_row_stride = residual_out->stride(0);
  }
  p.rows = x.size(0);
  p.hidden = static_cast<int>(x.size(1));
  p.eps = eps;
  return p;
}

template <typename T>
struct Pair;
template <>
struct Pair<__nv_bfloat16> {
  using type = __nv_bfloat162;
  static __device__ __forceinline__ float2 to_float2(type v) { return __bfloat1622float2(v); }
  static __device__ __forceinline__ type from_float2(float2 f) { return __float22bfloat162_rn(f); }
  static __device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 from_float(float f) { return __float2bfloat16_rn(f); }
};
template <>
struct Pair<__half> {
  using type = __half2;
  static __device__ __forceinline__ float2 to_float2(type v) { return __half22float2(v); }
  static __device__ __forceinline__ type from_float2(float2 f) { return __float22half2_rn(f); }
  static __device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half from_float(float f) { return __float2half_rn(f); }
};

template <typename T>
__device__ __forceinline__ void unpack8(uint4 raw, float (&f)[kVecElems]) {
  const auto* p = reinterpret_cast<const typename Pair<T>::type*>(&raw);
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    float2 t = Pair<T>::to_float2(p[k]);
    f[2 * k] = t.x;
    f[2 * k + 1] = t.y;
  }
}

template <typename T>
__device__ __forceinline__ uint4 pack8(const float (&f)[kVecElems]) {
  uint4 raw;
  auto* p = reinterpret_cast<typename Pair<T>::type*>(&raw);
#pragma unroll
  for (int k = 0; k < 4; ++k) p[k] = Pair<T>::from_float2(make_float2(f[2 * k], f[2 * k + 1]));
  return raw;
}

// Compile-time tuning knobs; benchmarks/diag_rmsnorm_variants.py builds the launcher with each value and times it
// against FlashInfer. STREAMING_LOADS=1 reads x and residual with evict-first loads (__ldcs); 0 (the default) with
// plain loads, as FlashInfer's kernels: on the H200 the fused op back to back at 32768 x 4096 / 8192 ran 266.4 /
// 525.0 us plain against 270.9 / 533.9 evict-first (results/diag_rmsnorm_variants_2026-12-04_h200.md). 2 (diag):
// cached in L2 only (__ldcg).
// PDL_EARLY=1 lets the next kernel launched with PDL be scheduled as soon as this one starts; 0 (the default) after
// its last store, where FlashInfer's norm kernels do: never slower there, and rmsnorm 1024 x 4096 back to back
// 5.0 against 6.3 us.
#ifndef KERNELARENA_RMSNORM_STREAMING_LOADS
#define KERNELARENA_RMSNORM_STREAMING_LOADS 0
#endif
#ifndef KERNELARENA_RMSNORM_PDL_EARLY
#define KERNELARENA_RMSNORM_PDL_EARLY 0
#endif
// STREAMING_STORES=1 writes out and residual_out with evict-first stores (__stcs); 0 (the default) plain stores.
// MIN_BLOCK: the vectorized kernel's smallest block (rows of fewer threads share a block), 128 by default.
#ifndef KERNELARENA_RMSNORM_STREAMING_STORES
#define KERNELARENA_RMSNORM_STREAMING_STORES 0
#endif
#ifndef KERNELARENA_RMSNORM_MIN_BLOCK
#define KERNELARENA_RMSNORM_MIN_BLOCK 128
#endif
// WEIGHT_LATE=1 loads the weight after the row's reduction instead of with x and residual, 0 with them; -1 (the
// default) late for the fused op at 4 or 8 vectors a thread. At 8 the early weight takes 32 of the thread's 159
// registers (96 without it: five blocks of 128 threads on an SM instead of three, so more rows in flight) for an
// L1/L2 round trip after the reduction: back to back on the H200, 8192 / 16384 x 4096 ran 67.7 / 131.8 us late
// against 68.5 / 133.1 early, FlashInfer 69.0 / 134.2 (results/diag_rmsnorm_variants_2026-12-04_h200_session27.md);
// at 8192 wide (2 vectors a thread) late was up to 1% slower. At 4 (session 28) see default_threads_per_row.
#ifndef KERNELARENA_RMSNORM_WEIGHT_LATE
#define KERNELARENA_RMSNORM_WEIGHT_LATE -1
#endif
// Two more knobs were timed in session 28 and removed (commit b7d22f6 has them): unused dynamic shared memory a
// block to hold 4 / 3 / 2 blocks an SM took 11% / 7-10% / 38-39% longer, and launch bounds for 6-8 blocks of 128
// threads an SM spilled and took 29-75% longer (results/diag_rmsnorm_variants_2026-12-04_h200_session28_*.md).

__device__ __forceinline__ uint4 load_row_vec(const void* row, int v) {
#if KERNELARENA_RMSNORM_STREAMING_LOADS == 2
  return __ldcg(reinterpret_cast<const uint4*>(row) + v);  // cached in L2 only (diag)
#elif KERNELARENA_RMSNORM_STREAMING_LOADS
  return __ldcs(reinterpret_cast<const uint4*>(row) + v);
#else
  return reinterpret_cast<const uint4*>(row)[v];
#endif
}

__device__ __forceinline__ void store_row_vec(void* row, int v, uint4 value) {
#if KERNELARENA_RMSNORM_STREAMING_STORES
  __stcs(reinterpret_cast<uint4*>(row) + v, value);
#else
  reinterpret_cast<uint4*>(row)[v] = value;
#endif
}

// Programmatic dependent launch (sm90+): a kernel launched with PDL may start while the kernel before it on the
// stream finishes. It waits here for that kernel's completion (and its writes) before touching global memory, and
// lets the next kernel launch (pdl_release_late, or here with PDL_EARLY), so that the next launch's latency
// overlaps this grid's end. No-ops when the kernel was launched without PDL, and below sm90.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#if KERNELARENA_RMSNORM_PDL_EARLY
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
#endif
}

__device__ __forceinline__ void pdl_release_late() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && !KERNELARENA_RMSNORM_PDL_EARLY
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

// Sum of v over the `group` threads of each row (group: a power of two <= 32, or a multiple of 32).
// For groups wider than a warp the warps' partial sums meet in shared memory: one barrier, reached by
// every thread of the block (the callers never return early).
__device__ __forceinline__ float row_sum(float v, int group, float* warp_sums) {
  const int width = group < 32 ? group : 32;
  for (int offset = width >> 1; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  if (group <= 32) return v;
  const int warp = threadIdx.x >> 5;
  const int warps_per_row = group >> 5;
  if ((threadIdx.x & 31) == 0) warp_sums[warp] = v;
  __syncthreads();
  const int first = (warp / warps_per_row) * warps_per_row;
  float total = 0.f;
  for (int i = 0; i < warps_per_row; ++i) total += warp_sums[first + i];
  return total;
}

// Vectorized kernel: rows of `group` threads, each thread owning up to VECS 16-byte vectors of its row,
// all loads issued before the reduction. Needs hidden % 8 == 0 and 16-byte aligned rows.
template <typename T, int VECS, bool FUSED>
__global__ void rmsnorm_vec_kernel(RmsnormParams p, int group) {
  __shared__ float warp_sums[32];
  pdl_wait();
  const int lane = threadIdx.x % group;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / group) + threadIdx.x / group;
  const bool row_ok = row < p.rows;
  const int nvec = p.hidden / kVecElems;

  const T* x = static_cast<const T*>(p.x) + row * p.x_row_stride;
  const T* w = static_cast<const T*>(p.weight);
  constexpr bool kWeightLate =
      KERNELARENA_RMSNORM_WEIGHT_LATE < 0 ? (FUSED && VECS >= 4) : KERNELARENA_RMSNORM_WEIGHT_LATE != 0;
  uint4 raw_x[VECS], raw_r[VECS], raw_w[kWeightLate ? 1 : VECS];
#pragma unroll
  for (int i = 0; i < VECS; ++i) {
    const int v = lane + i * group;
    if (row_ok && v < nvec) {
      // x and residual are read once (evict-first when STREAMING_LOADS is 1); the weight is shared by all rows
      // and stays cached (read here, or after the reduction: WEIGHT_LATE).
      raw_x[i] = load_row_vec(x, v);
      if constexpr (FUSED) {
        const T* r = static_cast<const T*>(p.residual) + row * p.residual_row_stride;
        raw_r[i] = load_row_vec(r, v);
      }
      if constexpr (!kWeightLate) raw_w[i] = __ldg(reinterpret_cast<const uint4*>(w) + v);
    }
  }

  float vals[VECS][kVecElems];
  float sum_sq = 0.f;
#pragma unroll
  for (int i = 0; i < VECS; ++i) {
    const int v = lane + i * group;
    if (row_ok && v < nvec) {
      unpack8<T>(raw_x[i], vals[i]);
      if constexpr (FUSED) {
        float r[kVecElems];
        unpack8<T>(raw_r[i], r);
#pragma unroll
        for (int k = 0; k < kVecElems; ++k) vals[i][k] += r[k];
        T* r_out = static_cast<T*>(p.residual_out) + row * p.residual_out_row_stride;
        store_row_vec(r_out, v, pack8<T>(vals[i]));
      }
#pragma unroll
      for (int k = 0; k < kVecElems; ++k) sum_sq += vals[i][k] * vals[i][k];
    }
  }

  const float rstd = rsqrtf(row_sum(sum_sq, group, warp_sums) / static_cast<float>(p.hidden) + p.eps);
  T* out = static_cast<T*>(p.out) + row * p.out_row_stride;
#pragma unroll
  for (int i = 0; i < VECS; ++i) {
    const int v = lane + i * group;
    if (row_ok && v < nvec) {
      float wf[kVecElems];
      if constexpr (kWeightLate) {
        unpack8<T>(__ldg(reinterpret_cast<const uint4*>(w) + v), wf);
      } else {
        unpack8<T>(raw_w[i], wf);
      }
#pragma unroll
      for (int k = 0; k < kVecElems; ++k) vals[i][k] = vals[i][k] * rstd * wf[k];
      store_row_vec(out, v, pack8<T>(vals[i]));
    }
  }
  pdl_release_late();
}

// Scalar fallback for any hidden size up to kMaxHidden and any alignment: one row per block, the row kept
// in registers (so an in-place fused call never re-reads a residual it has overwritten).
template <typename T, bool FUSED>
__global__ void __launch_bounds__(kFallbackThreads) rmsnorm_scalar_kernel(RmsnormParams p) {
  __shared__ float warp_sums[32];
  pdl_wait();
  const int64_t row = blockIdx.x;
  const T* x = static_cast<const T*>(p.x) + row * p.x_row_stride;
  const T* w = static_cast<const T*>(p.weight);
  float vals[kFallbackPerThread];
  float sum_sq = 0.f;
#pragma unroll
  for (int i = 0; i < kFallbackPerThread; ++i) {
    const int c = threadIdx.x + i * kFallbackThreads;
    vals[i] = 0.f;
    if (c < p.hidden) {
      vals[i] = Pair<T>::to_float(x[c]);
      if constexpr (FUSED) {
        const T* r = static_cast<const T*>(p.residual) + row * p.residual_row_stride;
        vals[i] += Pair<T>::to_float(r[c]);
        static_cast<T*>(p.residual_out)[row * p.residual_out_row_stride + c] = Pair<T>::from_float(vals[i]);
      }
      sum_sq += vals[i] * vals[i];
    }
  }
  const float rstd = rsqrtf(row_sum(sum_sq, kFallbackThreads, warp_sums) / static_cast<float>(p.hidden) + p.eps);
  T* out = static_cast<T*>(p.out) + row * p.out_row_stride;
#pragma unroll
  for (int i = 0; i < kFallbackPerThread; ++i) {
    const int c = threadIdx.x + i * kFallbackThreads;
    if (c < p.hidden) out[c] = Pair<T>::from_float(vals[i] * rstd * Pair<T>::to_float(w[c]));
  }
  pdl_release_late();
}

// Threads per row for the vectorized kernel, read off the H100 sweep (docs/rmsnorm.md): 4 vectors (64 bytes
// of x) per thread, and 8 for rmsnorm rows of 8192+ elements when there are many rows: more independent loads
// in flight per thread beat more threads (rmsnorm 32768x8192: 128 threads 362 us, 256 threads 389 us), but
// with few rows the row's loads spread over more threads win (1x8192: 256 threads 5.4 us, 128 threads 6.2;
// 1024x8192: 17.7 vs 18.9; 8192x8192: 101.9 vs 96.0).
constexpr int64_t kFewRows = 2048;
// The fused op at 4096 wide up to this many rows takes 4 vectors a thread, beyond it 8 (default_threads_per_row).
constexpr int64_t kFusedMidRows = 12288;

inline int default_threads_per_row(int hidden, bool fused, int64_t rows) {
  const int nvec = hidden / kVecElems;
  int per_thread = (!fused && nvec >= 1024 && rows > kFewRows) ? 8 : 4;
  // The fused op over many rows, back to back on the H200 (results/diag_rmsnorm_variants_2026-12-04_h200*.md):
  // 8 vectors a thread at 4096 (32768 rows: 261.7 us against 265.6 with 4, FlashInfer 262.7), 2 at 8192 (521.8
  // against 525.0, FlashInfer 526.5). At 4096 over 2048-12288 rows 4 vectors (the weight read late) instead: on five
  // fresh allocations each, timed in turn, 67.7 against 68.4 us with 8 at 8192 rows and 100.1 against 100.7 at 12288
  // (FlashInfer 68.2 / 100.1), while 8 stay ahead at 16384 (132.1 against 132.7;
  // results/diag_ties_2026-12-04_h200_session28_threshold.md).
  if (fused && rows > kFewRows && nvec >= 512) per_thread = nvec >= 1024 ? 2 : (rows > kFusedMidRows ? 8 : 4);
  int group = 8;  // at least 8 threads per row, so a warp covers at most 4 rows
  while (group < 1024 && group * per_thread < nvec) group *= 2;
  return group;
}

inline bool is_aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }

// kernel<<<grid, block, 0, stream>>>(p, extra...), with programmatic dependent launch when `pdl` (sm90+ only: the
// caller checks; the kernels wait for the kernel before them first, see pdl_wait).
template <typename... Args, typename... Given>
cudaError_t launch_kernel(void (*kernel)(Args...), dim3 grid, dim3 block, cudaStream_t stream, bool pdl,
                          Given... args) {
  if (!pdl) {
    kernel<<<grid, block, 0, stream>>>(args...);
    return cudaGetLastError();
  }
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, kernel, args...);
}

// Launches the kernel for p on stream. threads_per_row: 0 picks default_threads_per_row; otherwise a power
// of two in [8, 1024]. pdl: programmatic dependent launch (sm90+ only, which the caller checks). Returns
// cudaErrorInvalidValue for an unsupported request.
template <typename T, bool FUSED>
cudaError_t launch_rmsnorm(const RmsnormParams& p, int threads_per_row, cudaStream_t stream, bool pdl = false) {
  if (p.hidden <= 0 || p.hidden > kMaxHidden) return cudaErrorInvalidValue;
  if (p.rows == 0) return cudaSuccess;
  bool vec_ok = p.hidden % kVecElems == 0 && is_aligned16(p.x) && is_aligned16(p.weight) &&
                is_aligned16(p.out) && p.x_row_stride % kVecElems == 0 && p.out_row_stride % kVecElems == 0;
  if (FUSED)
    vec_ok = vec_ok && is_aligned16(p.residual) && is_aligned16(p.residual_out) &&
             p.residual_row_stride % kVecElems == 0 && p.residual_out_row_stride % kVecElems == 0;
  if (!vec_ok) {
    if (p.rows > 0x7fffffffLL) return cudaErrorInvalidValue;
    return launch_kernel(rmsnorm_scalar_kernel<T, FUSED>, dim3(static_cast<unsigned>(p.rows)),
                         dim3(kFallbackThreads), stream, pdl, p);
  }
  const int nvec = p.hidden / kVecElems;
  const int group = threads_per_row > 0 ? threads_per_row : default_threads_per_row(p.hidden, FUSED, p.rows);
  if (group < 8 || group > 1024 || (group & (group - 1)) != 0) return cudaErrorInvalidValue;
  const int vecs = (nvec + group - 1) / group;
  // Blocks of at least MIN_BLOCK threads (several short rows per block) and at most 1024.
  constexpr int kMinBlock = KERNELARENA_RMSNORM_MIN_BLOCK;
  static_assert(kMinBlock >= 32 && kMinBlock <= 1024 && (kMinBlock & (kMinBlock - 1)) == 0,
                "KERNELARENA_RMSNORM_MIN_BLOCK: a power of two in [32, 1024]");
  const int rows_per_block = group >= kMinBlock ? 1 : kMinBlock / group;
  const int64_t blocks = (p.rows + rows_per_block - 1) / rows_per_block;
  if (blocks > 0x7fffffffLL) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(blocks)), block(group * rows_per_block);
  if (vecs <= 1) return launch_kernel(rmsnorm_vec_kernel<T, 1, FUSED>, grid, block, stream, pdl, p, group);
  if (vecs <= 2) return launch_kernel(rmsnorm_vec_kernel<T, 2, FUSED>, grid, block, stream, pdl, p, group);
  if (vecs <= 4) return launch_kernel(rmsnorm_vec_kernel<T, 4, FUSED>, grid, block, stream, pdl, p, group);
  if (vecs <= 8) return launch_kernel(rmsnorm_vec_kernel<T, 8, FUSED>, grid, block, stream, pdl, p, group);
  return cudaErrorInvalidValue;
}

}  // namespace kernelarena_rmsnorm
