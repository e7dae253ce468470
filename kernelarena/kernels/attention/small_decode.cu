// Split-KV decode attention for small batches over a paged KV cache, in CUDA.
//
// At batch <= 16 decode is bound by memory latency, not bandwidth: a few MB of K/V spread over 132 SMs.
// Two token loops, chosen at build time (KA_MMA):
// - tensor cores (mma_decode_kernel, the default): each warp copies tiles of 16 tokens into its own
//   shared-memory stages with cp.async and computes with mma.sync, the GQA group's heads as A's rows;
// - CUDA cores (small_decode_kernel): a group of D/8 lanes holds one token's head vector (8 elements a
//   lane); each thread keeps the K and V vectors of UNROLL tokens per step, STAGES steps deep, in flight
//   with cp.async, scores all of the group's heads with a shuffle reduction and keeps an online softmax in
//   registers.
// A chunk's page indices are read into shared memory once, when its item starts.
//
// Work item = (request, KV head, KV chunk), numbered request-major; the grid loops over items, so the
// launch does not depend on the batch (CUDA graphs). A request split into several chunks writes float32
// partial outputs and base-2 log-sum-exps to a workspace slot per item; the chunk that finishes last
// (an atomic counter per (request, KV head), reset by that chunk) merges them and writes the output.
//
// The schedule is int32 words on the device, written by small_decode.py's plan:
//   [0] items  [1] chunk tokens  [2] chunks per (request, head) slot  [3] batch,
//   then per request b: [4 + 2b] first page (kv_indptr[b]), [5 + 2b] KV length in tokens.
// Compile-time choices (small_decode.py passes them with -D): KA_DTYPE 0 bf16 / 1 fp16, KA_HEAD_DIM,
// KA_GROUP (query heads per KV head), KA_WARPS, KA_UNROLL (tokens per thread per step), KA_STAGES (steps in
// flight: cp.async copies each thread's own K/V vectors into its private shared-memory slots, so the
// pipeline needs no block-wide barrier and holds STAGES - 1 steps of loads outside the registers), KA_MMA
// (1: the tensor-core token loop, mma_decode_kernel below, in place of the CUDA-core one; it ignores
// KA_UNROLL and keeps STAGES tiles of 16 tokens per warp in flight).

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include <type_traits>

#ifndef KA_DTYPE
#define KA_DTYPE 0
#endif
#ifndef KA_HEAD_DIM
#define KA_HEAD_DIM 128
#endif
#ifndef KA_GROUP
#define KA_GROUP 4
#endif
#ifndef KA_WARPS
#define KA_WARPS 4
#endif
#ifndef KA_UNROLL
#define KA_UNROLL 2
#endif
#ifndef KA_STAGES
#define KA_STAGES 4
#endif
#ifndef KA_MMA
#define KA_MMA 0
#endif
// Page indices of one chunk, staged in shared memory: small_decode.py keeps chunks within
// (KA_MAX_PAGES - 1) pages.
#define KA_MAX_PAGES 256

#define KA_ABI_VERSION 6
// Schedule words a launch may carry in its arguments (batch <= 6), sparing the kernel one dependent read.
#define KA_INLINE_WORDS 16

// Launch arguments as small_decode.py packs them: 8-byte fields only (pointers and integers as int64,
// scales as double), in this order.
struct HostArgs {
  int64_t q, k, v, out, lse, o_part, lse_part, counters, words, kv_indices;  // device addresses (lse 0: none)
  int64_t stride_qt, stride_qh, stride_ot, stride_oh, stride_lt;  // elements
  int64_t stride_kp, stride_kt, stride_kh;  // page, slot, head strides of K and V (elements)
  int64_t num_kv_heads, page_size, window_left, grid;
  double q_scale;  // multiplies q: sm_scale * log2(e), or sm_scale / cap with a soft-cap
  double cap_out;  // 0: no soft-cap; else scores are tanh(q.k) * cap * log2(e)
  int64_t inline_count;  // 0: read the schedule from `words`; else its first words are inline_words
  int32_t inline_words[KA_INLINE_WORDS];
};

namespace {

template <typename T>
struct Params {
  const T* q;
  const T* k;
  const T* v;
  T* out;
  float* lse;
  float* o_part;
  float* lse_part;
  int* counters;
  const int* words;
  const int* kv_indices;
  int64_t stride_qt, stride_qh, stride_ot, stride_oh, stride_lt, stride_kp, stride_kt, stride_kh;
  int num_kv_heads, page_size, window_left;
  float q_scale, cap_out;
  int inline_count, inline_words[KA_INLINE_WORDS];
};

// The schedule's first NT words into shared memory: from the launch's arguments when it carries them (a
// plan for a few requests, launched outside a CUDA graph), else in one read of the device buffer (header
// and the first requests; the buffer is longer).
template <typename T, int NT>
__device__ __forceinline__ void load_schedule_head(const Params<T>& p, int* s_words) {
  const int tid = threadIdx.x;
  if (p.inline_count > 0) {
    if (tid < KA_INLINE_WORDS) s_words[tid] = p.inline_words[tid];
  } else {
    s_words[tid] = p.words[tid];
  }
  __syncthreads();
}

__device__ __forceinline__ float2 to_float2(const __nv_bfloat162& x) { return __bfloat1622float2(x); }
__device__ __forceinline__ float2 to_float2(const __half2& x) { return __half22float2(x); }

// 8 elements of 16 bytes (bf16 or fp16, by the tag's type) as floats.
template <typename T>
__device__ __forceinline__ void to_float8(const uint4& raw, float (&f)[8], T) {
  typedef typename std::conditional<std::is_same<T, __half>::value, __half2, __nv_bfloat162>::type Pair;
  const Pair* h = reinterpret_cast<const Pair*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 x = to_float2(h[i]);
    f[2 * i] = x.x;
    f[2 * i + 1] = x.y;
  }
}

__device__ __forceinline__ uint2 from_float4(float a, float b, float c, float d, __nv_bfloat16) {
  __nv_bfloat162 lo = __floats2bfloat162_rn(a, b), hi = __floats2bfloat162_rn(c, d);
  return make_uint2(*reinterpret_cast<uint32_t*>(&lo), *reinterpret_cast<uint32_t*>(&hi));
}

__device__ __forceinline__ uint2 from_float4(float a, float b, float c, float d, __half) {
  __half2 lo = __floats2half2_rn(a, b), hi = __floats2half2_rn(c, d);
  return make_uint2(*reinterpret_cast<uint32_t*>(&lo), *reinterpret_cast<uint32_t*>(&hi));
}

// 2^(x - m) with m = -inf standing for "no scores yet" (weight 0 instead of NaN).
__device__ __forceinline__ float weight(float x, float m) { return m == -INFINITY ? 0.f : exp2f(x - m); }

// 2^x in one MUFU instruction (no denormal handling: weights below 2^-126 flush to 0, as they may).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// The running maximum before any score: finite, so that exp2(m_old - m_new) needs no -inf guard.
constexpr float kNoScore = -1e30f;

// 16 bytes global -> shared, asynchronously; zero-filled when !valid (nothing is read then).
__device__ __forceinline__ void copy16(void* dst, const void* src, bool valid) {
  const unsigned smem = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void wait_copies() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Sums each token's G partial scores over its TPT lanes (every lane ends with all G sums). A butterfly per
// head costs G x log2(TPT) shuffles and adds; instead, halve the heads each lane carries at each of the
// first log2(G) levels (the lane keeps one half, trades the other with its partner), finish the one head
// left with a plain butterfly, and gather the G sums back: (G - 1) + log2(TPT / G) + G shuffles and
// (G - 1) + log2(TPT / G) adds, 9 and 5 instead of 16 and 16 for G = 4 over 16 lanes.
template <int G, int TPT, int U>
__device__ __forceinline__ void sum_over_token_lanes(float (&sc)[U][G], int dl, int lane) {
  static_assert(G <= TPT, "at most one head per lane after the scatter");
#pragma unroll
  for (int level = 0; (G >> (level + 1)) > 0; ++level) {
    const int o = TPT >> (level + 1), half = G >> (level + 1);
    const bool upper = (dl & o) != 0;
#pragma unroll
    for (int u = 0; u < U; ++u) {
#pragma unroll
      for (int k = 0; k < half; ++k) {
        const float send = upper ? sc[u][k] : sc[u][k + half];
        const float keep = upper ? sc[u][k + half] : sc[u][k];
        sc[u][k] = keep + __shfl_xor_sync(0xffffffffu, send, o);
      }
    }
  }
#pragma unroll
  for (int o = TPT / G / 2; o >= 1; o >>= 1) {
#pragma unroll
    for (int u = 0; u < U; ++u) sc[u][0] += __shfl_xor_sync(0xffffffffu, sc[u][0], o);
  }
  if (G > 1) {
    const int group_lane = lane & ~(TPT - 1);
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const float mine = sc[u][0];
#pragma unroll
      for (int g = 0; g < G; ++g) {
        int from = 0;  // a lane of this token that holds head g's sum: g's bits, level by level
#pragma unroll
        for (int level = 0; (G >> (level + 1)) > 0; ++level) from += (g & (G >> (level + 1))) ? TPT >> (level + 1) : 0;
        sc[u][g] = __shfl_sync(0xffffffffu, mine, group_lane | from);
      }
    }
  }
}

// Dynamic shared memory of one block: the K/V staging slots, reused for the warps' partial states.
template <int D, int G, int NW, int U, int S>
constexpr int shared_bytes() {
  return S * 2 * U * NW * 32 * 16 > NW * G * D * 4 ? S * 2 * U * NW * 32 * 16 : NW * G * D * 4;
}

// Per-block shared state of an item besides the staging buffers: the chunk's page indices, each warp's
// running maxima and sums per head, and whether this block merges the request's chunks.
template <int G, int NW>
struct ItemState {
  int pages[KA_MAX_PAGES];
  float m[NW][G];
  float l[NW][G];
  int last;
};

// Where an item's keys lie: request b, KV head h (bh = b * heads + h), its chunk [t0, t1) of the request's
// tokens, the pages that chunk spans and the request's first page in kv_indices.
struct ItemSpan {
  int b, h, bh, splits, t0, t1, page0, first_page, n_pages;
};

// Locates `item` in the schedule (its header words are in s_words, the first NT of them); false when the
// item's chunk lies past its request's keys (nothing to do: uniform over the block).
template <typename T, int NT>
__device__ __forceinline__ bool locate_item(const Params<T>& p, const int* s_words, int item, int chunk, int slots,
                                            ItemSpan& it) {
  const int split = item % slots;
  it.bh = item / slots;
  it.h = it.bh % p.num_kv_heads;
  it.b = it.bh / p.num_kv_heads;
  const int at = 4 + 2 * it.b;
  it.page0 = at + 1 < NT ? s_words[at] : p.words[at];
  const int kv_len = at + 1 < NT ? s_words[at + 1] : p.words[at + 1];
  const int lo = p.window_left >= 0 ? max(0, kv_len - 1 - p.window_left) : 0;
  it.splits = max(1, (kv_len - lo + chunk - 1) / chunk);
  if (split >= it.splits) return false;
  it.t0 = lo + split * chunk;
  it.t1 = min(kv_len, it.t0 + chunk);
  const int ps = p.page_size;
  it.first_page = it.t0 / ps;
  it.n_pages = it.t1 > it.t0 ? (it.t1 - 1) / ps - it.first_page + 1 : 0;
  return true;
}

// Offset (elements) of token t's row in K or V for page size ps (shift >= 0: ps = 2^shift).
__device__ __forceinline__ int64_t token_offset(int t, int first_page, int ps, int shift, const int* s_pages,
                                                int64_t stride_kp, int stride_kt) {
  const int page = shift >= 0 ? t >> shift : t / ps, slot = shift >= 0 ? t & (ps - 1) : t % ps;
  return (int64_t)s_pages[page - first_page] * stride_kp + slot * stride_kt;
}

// The block's end of an item. Each warp has left its softmax state for the group's heads in shared memory
// (s_acc[warp][g][:] normalised by nothing, running maximum st.m and sum st.l, base 2). Folds the warps
// together and writes the output (one chunk) or the chunk's partial state, and then, in the chunk that
// finishes last, merges every chunk's partial state into the output.
template <typename T, int D, int G, int NW>
__device__ __forceinline__ void finish_item(const Params<T>& p, const float (*s_acc)[G][D], ItemState<G, NW>& st,
                                            int item, int slots,
                                            const ItemSpan& it) {
  constexpr int D4 = D / 4, NT = NW * 32;
  const int tid = threadIdx.x;
  T* out_row = p.out + it.b * p.stride_ot + it.h * G * p.stride_oh;
  for (int e = tid; e < G * D4; e += NT) {
    const int g = e / D4, d = (e % D4) * 4;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < NW; ++w) mx = fmaxf(mx, st.m[w][g]);
    float total = 0.f, o0 = 0.f, o1 = 0.f, o2 = 0.f, o3 = 0.f;
#pragma unroll
    for (int w = 0; w < NW; ++w) {
      const float c = weight(st.m[w][g], mx);
      total += st.l[w][g] * c;
      o0 += s_acc[w][g][d] * c;
      o1 += s_acc[w][g][d + 1] * c;
      o2 += s_acc[w][g][d + 2] * c;
      o3 += s_acc[w][g][d + 3] * c;
    }
    const float inv = total > 0.f ? 1.f / total : 0.f;
    const float lse = total > 0.f ? mx + log2f(total) : -INFINITY;
    if (it.splits == 1) {
      *reinterpret_cast<uint2*>(out_row + g * p.stride_oh + d) = from_float4(o0 * inv, o1 * inv, o2 * inv, o3 * inv, T());
      if (p.lse != nullptr && d == 0) p.lse[it.b * p.stride_lt + it.h * G + g] = lse;
    } else {
      __stcg(reinterpret_cast<float4*>(p.o_part + ((int64_t)item * G + g) * D + d),
             make_float4(o0 * inv, o1 * inv, o2 * inv, o3 * inv));
      if (d == 0) __stcg(p.lse_part + (int64_t)item * G + g, lse);
    }
  }
  if (it.splits == 1) return;
  __threadfence();
  __syncthreads();
  if (tid == 0) st.last = atomicAdd(p.counters + it.bh, 1) == it.splits - 1;
  __syncthreads();
  if (!st.last) return;
  // The last chunk of (request, head) to finish merges every chunk's partial state.
  __threadfence();
  const int64_t first = (int64_t)it.bh * slots;
  constexpr int MB = 16;  // chunks whose partial states are loaded at once (independent L2 reads: one round
                          // for the 16 chunks a head has at batch 1 x 4096 in 128 items)
  for (int e = tid; e < G * D4; e += NT) {
    const int g = e / D4, d = (e % D4) * 4;
    float mx = -INFINITY, total = 0.f;
    float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int c0 = 0; c0 < it.splits; c0 += MB) {
      float ls[MB];
      float4 xs[MB];
#pragma unroll
      for (int j = 0; j < MB; ++j) {
        const int64_t c = first + min(c0 + j, it.splits - 1);
        ls[j] = c0 + j < it.splits ? __ldcg(p.lse_part + c * G + g) : -INFINITY;
        xs[j] = __ldcg(reinterpret_cast<const float4*>(p.o_part + (c * G + g) * D + d));
      }
      float bm = mx;
#pragma unroll
      for (int j = 0; j < MB; ++j) bm = fmaxf(bm, ls[j]);
      const float r = weight(mx, bm);
      total *= r;
      o.x *= r;
      o.y *= r;
      o.z *= r;
      o.w *= r;
#pragma unroll
      for (int j = 0; j < MB; ++j) {
        const float w = weight(ls[j], bm);
        total += w;
        o.x += w * xs[j].x;
        o.y += w * xs[j].y;
        o.z += w * xs[j].z;
        o.w += w * xs[j].w;
      }
      mx = bm;
    }
    const float inv = total > 0.f ? 1.f / total : 0.f;
    *reinterpret_cast<uint2*>(out_row + g * p.stride_oh + d) = from_float4(o.x * inv, o.y * inv, o.z * inv, o.w * inv, T());
    if (p.lse != nullptr && d == 0) p.lse[it.b * p.stride_lt + it.h * G + g] = total > 0.f ? mx + log2f(total) : -INFINITY;
  }
  if (tid == 0) p.counters[it.bh] = 0;  // ready for the next launch
}

// ---------------------------------------------------------------------------------------------------------
// CUDA-core token loop (KA_MMA 0).
template <typename T, int D, int G, int NW, int U, int S>
__global__ void __launch_bounds__(NW * 32) small_decode_kernel(const Params<T> p) {
  constexpr int TPT = D / 8;     // lanes per token (8 elements each)
  constexpr int TPW = 32 / TPT;  // tokens a warp covers per load
  constexpr int STEP = U * NW * TPW;  // tokens per step of the whole block
  static_assert(D % 64 == 0 && D <= 256, "head_dim 64, 128 or 256");
  constexpr int NT = NW * 32;
  static_assert(S >= 2, "at least two stages");

  extern __shared__ uint4 s_dyn[];
  uint4* s_kv = s_dyn;  // [S][2][U][NT]: each thread's own K and V vectors
  float(*s_acc)[G][D] = reinterpret_cast<float(*)[G][D]>(s_dyn);  // [NW][G][D], after the token loop
  __shared__ ItemState<G, NW> st;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int sub = lane / TPT, dl = lane % TPT;
  __shared__ int s_words[NT];
  load_schedule_head<T, NT>(p, s_words);
  const int items = s_words[0], chunk = s_words[1], slots = s_words[2];
  const int ps = p.page_size, stride_kt = (int)p.stride_kt;  // a page's token strides fit in 32 bits
  const float cap_out = p.cap_out;
  const int shift = (ps & (ps - 1)) == 0 ? __ffs(ps) - 1 : -1;  // a power-of-two page size: shifts, no division

  for (int item = blockIdx.x; item < items; item += gridDim.x) {
    ItemSpan it;
    if (!locate_item<T, NT>(p, s_words, item, chunk, slots, it)) continue;  // uniform over the block
    const int b = it.b, h = it.h, t0 = it.t0, t1 = it.t1, first_page = it.first_page;
    for (int j = tid; j < it.n_pages; j += NT) st.pages[j] = __ldg(p.kv_indices + it.page0 + first_page + j);
    float qf[G][8];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p.q + b * p.stride_qt + (h * G + g) * p.stride_qh) + dl);
      to_float8(raw, qf[g], T());
#pragma unroll
      for (int i = 0; i < 8; ++i) qf[g][i] *= p.q_scale;
    }
    // Running maxima start at a finite floor, so the token loop needs no -inf guards (exp2 of a masked
    // score, -inf, is 0; a block without keys keeps l = 0 and gets lse -inf when it is folded).
    float m[G], l[G], acc[G][8];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      m[g] = kNoScore;
      l[g] = 0.f;
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[g][i] = 0.f;
    }
    __syncthreads();  // st.pages
    const T* k_head = p.k + (int64_t)h * p.stride_kh + dl * 8;
    const T* v_head = p.v + (int64_t)h * p.stride_kh + dl * 8;
    const int mine = warp * TPW + sub;  // this thread's token within a step, plus u * NW * TPW
    uint4* slots_mine = s_kv + tid;  // [stage][K, V][u] slots of this thread, NT apart
    // Issue step `i`'s copies into stage i % S (copies past t1 read nothing and fill zeros).
    auto issue = [&](int i) {
      uint4* dst = slots_mine + (i % S) * (2 * U * NT);
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int t = t0 + i * STEP + u * NW * TPW + mine;
        const bool valid = t < t1;
        const int64_t off = valid ? token_offset(t, first_page, ps, shift, st.pages, p.stride_kp, stride_kt) : 0;
        copy16(dst + u * NT, k_head + off, valid);
        copy16(dst + (U + u) * NT, v_head + off, valid);
      }
      commit_copies();
    };
    const int steps = (t1 - t0 + STEP - 1) / STEP;
#pragma unroll
    for (int i = 0; i < S - 1; ++i) issue(i);
    for (int i = 0; i < steps; ++i) {
      issue(i + S - 1);
      wait_copies<S - 1>();  // this thread's copies of step i have landed
      const int base = t0 + i * STEP;
      const uint4* src = slots_mine + (i % S) * (2 * U * NT);
      uint4 kr[U], vr[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        kr[u] = src[u * NT];
        vr[u] = src[(U + u) * NT];
      }
      float sc[U][G];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        float kf[8];
        to_float8(kr[u], kf, T());
#pragma unroll
        for (int g = 0; g < G; ++g) {
          float s = 0.f;
#pragma unroll
          for (int i = 0; i < 8; ++i) s = fmaf(qf[g][i], kf[i], s);
          sc[u][g] = s;
        }
      }
      sum_over_token_lanes<G, TPT, U>(sc, dl, lane);
      if (cap_out != 0.f) {
#pragma unroll
        for (int u = 0; u < U; ++u) {
#pragma unroll
          for (int g = 0; g < G; ++g) sc[u][g] = tanhf(sc[u][g]) * cap_out;
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        if (base + u * NW * TPW + mine >= t1) {
#pragma unroll
          for (int g = 0; g < G; ++g) sc[u][g] = -INFINITY;
        }
      }
      float vf[U][8];
#pragma unroll
      for (int u = 0; u < U; ++u) to_float8(vr[u], vf[u], T());
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float mx = m[g];
#pragma unroll
        for (int u = 0; u < U; ++u) mx = fmaxf(mx, sc[u][g]);
        if (mx != m[g]) {  // rescale only when the running maximum moved (rarely, after the first steps)
          const float scale = fast_exp2(m[g] - mx);
          l[g] *= scale;
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[g][i] *= scale;
          m[g] = mx;
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
          const float w = fast_exp2(sc[u][g] - mx);
          l[g] += w;
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[g][i] = fmaf(w, vf[u][i], acc[g][i]);
        }
      }
    }

    wait_copies<0>();
    __syncthreads();  // every thread is done with its staging slots: s_acc reuses them
    // Fold the warp's token groups together, then the warps through shared memory.
#pragma unroll
    for (int o = TPT; o < 32; o <<= 1) {
#pragma unroll
      for (int g = 0; g < G; ++g) {
        const float om = __shfl_xor_sync(0xffffffffu, m[g], o), ol = __shfl_xor_sync(0xffffffffu, l[g], o);
        float oa[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) oa[i] = __shfl_xor_sync(0xffffffffu, acc[g][i], o);
        const float mn = fmaxf(m[g], om), a = weight(m[g], mn), c = weight(om, mn);
        l[g] = l[g] * a + ol * c;
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[g][i] = acc[g][i] * a + oa[i] * c;
        m[g] = mn;
      }
    }
    if (sub == 0) {
#pragma unroll
      for (int g = 0; g < G; ++g) {
#pragma unroll
        for (int i = 0; i < 8; ++i) s_acc[warp][g][dl * 8 + i] = acc[g][i];
        if (dl == 0) {
          st.m[warp][g] = m[g];
          st.l[warp][g] = l[g];
        }
      }
    }
    __syncthreads();
    finish_item<T, D, G, NW>(p, s_acc, st, item, slots, it);
    __syncthreads();  // shared memory is reused by the next item
  }
}

// ---------------------------------------------------------------------------------------------------------
// Tensor-core token loop (KA_MMA 1). Each warp takes tiles of 16 tokens of the chunk in turn (warp w: tiles
// w, w + NW, ...), copies a tile's K and V rows into its own shared-memory stages with cp.async (S deep;
// only __syncwarp between copy and use), and computes with mma.sync m16n8k16 as in FlashAttention-2:
// S = Q K^T with the group's heads as the 16 rows of A (rows >= G zero: their waste costs nothing here, the
// loop is bound by loads, not by the tensor cores), P = 2^(S - m) as A again, O += P V. K and V rows are
// stored with their 16-byte chunks XOR-swizzled by (token & 7), so ldmatrix reads 8 rows without bank
// conflicts. This needs about 10x fewer instructions per token than the CUDA-core loop.
template <int D, int G, int NW, int S>
constexpr int mma_shared_bytes() {
  return NW * S * 2 * 16 * D * 2 > NW * G * D * 4 ? NW * S * 2 * 16 * D * 2 : NW * G * D * 4;
}

__device__ __forceinline__ void load_matrix_x4(const void* ptr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(ptr));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(a) : "memory");
}

__device__ __forceinline__ void load_matrix_x4_trans(const void* ptr, uint32_t& r0, uint32_t& r1, uint32_t& r2,
                                                     uint32_t& r3) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(ptr));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(a) : "memory");
}

// d += A B for one m16n8k16 tile whose A rows 8-15 are zero (a0: rows 0-7, k 0-7; a2: rows 0-7, k 8-15).
__device__ __forceinline__ void mma_rows8(float (&d)[4], uint32_t a0, uint32_t a2, uint32_t b0, uint32_t b1,
                                          __nv_bfloat16) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void mma_rows8(float (&d)[4], uint32_t a0, uint32_t a2, uint32_t b0, uint32_t b1, __half) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack2(float lo, float hi, __nv_bfloat16) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

__device__ __forceinline__ uint32_t pack2(float lo, float hi, __half) {
  __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

template <typename T, int D, int G, int NW, int S>
__global__ void __launch_bounds__(NW * 32) mma_decode_kernel(const Params<T> p) {
  constexpr int TILE = 16;            // tokens a warp takes at a time
  constexpr int CH = D / 8;           // 16-byte chunks of a token's row
  constexpr int PER_LANE = TILE * CH / 32;  // chunks a lane copies per tile, of K and of V each
  constexpr int NT = NW * 32;
  constexpr int STAGE = 2 * TILE * D;  // elements of one stage: K rows then V rows
  static_assert(D % 64 == 0 && D <= 256, "head_dim 64, 128 or 256");
  static_assert(G <= 8, "the group's heads are rows 0-7 of the mma tile");
  static_assert(S >= 2, "at least two stages");

  extern __shared__ uint4 s_dyn[];
  T* s_tiles = reinterpret_cast<T*>(s_dyn);  // [NW][S][K, V][TILE][D]
  float(*s_acc)[G][D] = reinterpret_cast<float(*)[G][D]>(s_dyn);  // [NW][G][D], after the token loop
  __shared__ ItemState<G, NW> st;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int row = lane >> 2, quad = lane & 3;  // mma fragment coordinates: head row, column pair
  __shared__ int s_words[NT];
  load_schedule_head<T, NT>(p, s_words);
  const int items = s_words[0], chunk = s_words[1], slots = s_words[2];
  const int ps = p.page_size, stride_kt = (int)p.stride_kt;
  const float q_scale = p.q_scale, cap_out = p.cap_out;
  const int shift = (ps & (ps - 1)) == 0 ? __ffs(ps) - 1 : -1;
  T* w_tiles = s_tiles + warp * (S * STAGE);

  for (int item = blockIdx.x; item < items; item += gridDim.x) {
    ItemSpan it;
    if (!locate_item<T, NT>(p, s_words, item, chunk, slots, it)) continue;
    const int t0 = it.t0, t1 = it.t1, first_page = it.first_page;
    for (int j = tid; j < it.n_pages; j += NT) st.pages[j] = __ldg(p.kv_indices + it.page0 + first_page + j);
    // Q as the A operand, unscaled (scores are scaled in float32): qa[k][0] holds row `row`, columns
    // 16k + 2 quad + {0, 1}; qa[k][1] the same 8 columns on.
    uint32_t qa[D / 16][2];
    const T* q_row = p.q + it.b * p.stride_qt + (it.h * G + min(row, G - 1)) * p.stride_qh + 2 * quad;
#pragma unroll
    for (int k = 0; k < D / 16; ++k) {
      qa[k][0] = row < G ? __ldg(reinterpret_cast<const unsigned int*>(q_row + 16 * k)) : 0u;
      qa[k][1] = row < G ? __ldg(reinterpret_cast<const unsigned int*>(q_row + 16 * k + 8)) : 0u;
    }
    // This thread's part of the warp's state: row `row`'s maximum (shared by the quad), its partial sum
    // over the thread's columns, and O's columns 8 j + 2 quad + {0, 1} (o[j][2..3]: rows 8-15, unused).
    float m = kNoScore, l = 0.f, o[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    __syncthreads();  // st.pages
    const int tiles = (t1 - t0 + TILE - 1) / TILE;
    const int mine = warp < tiles ? (tiles - warp + NW - 1) / NW : 0;
    const T* k_head = p.k + (int64_t)it.h * p.stride_kh;
    const T* v_head = p.v + (int64_t)it.h * p.stride_kh;
    // Copy this warp's i-th tile into stage i % S (rows past t1 are zero-filled; nothing past the tiles).
    auto issue = [&](int i) {
      if (i < mine) {
        T* dst = w_tiles + (i % S) * STAGE;
        const int base = t0 + (warp + i * NW) * TILE;
#pragma unroll
        for (int j = 0; j < PER_LANE; ++j) {
          const int c = lane + 32 * j, tok = c / CH, ch = c % CH, t = base + tok;
          const bool valid = t < t1;
          const int64_t off =
              (valid ? token_offset(t, first_page, ps, shift, st.pages, p.stride_kp, stride_kt) : 0) + ch * 8;
          const int at = tok * D + ((ch ^ (tok & 7)) * 8);
          copy16(dst + at, k_head + off, valid);
          copy16(dst + TILE * D + at, v_head + off, valid);
        }
      }
      commit_copies();
    };
#pragma unroll
    for (int i = 0; i < S - 1; ++i) issue(i);
    for (int i = 0; i < mine; ++i) {
      __syncwarp();  // every lane is done reading the stage that the next copies overwrite
      issue(i + S - 1);
      wait_copies<S - 1>();
      __syncwarp();  // the tile's rows copied by every lane are visible to the warp
      const T* kt = w_tiles + (i % S) * STAGE;
      const T* vt = kt + TILE * D;
      float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};  // [8-token half][fragment]
#pragma unroll
      for (int k4 = 0; k4 < D / 32; ++k4) {
#pragma unroll
        for (int n = 0; n < 2; ++n) {
          const int r = n * 8 + (lane & 7), ch = 4 * k4 + (lane >> 3);
          uint32_t b0, b1, b2, b3;
          load_matrix_x4(kt + r * D + ((ch ^ (r & 7)) * 8), b0, b1, b2, b3);
          mma_rows8(s[n], qa[2 * k4][0], qa[2 * k4][1], b0, b1, T());
          mma_rows8(s[n], qa[2 * k4 + 1][0], qa[2 * k4 + 1][1], b2, b3, T());
        }
      }
      // Row `row`, tokens base + 2 quad + {0, 1} (x[0..1]) and base + 8 + 2 quad + {0, 1} (x[2..3]).
      float x[4] = {s[0][0] * q_scale, s[0][1] * q_scale, s[1][0] * q_scale, s[1][1] * q_scale};
      if (cap_out != 0.f) {
#pragma unroll
        for (int e = 0; e < 4; ++e) x[e] = tanhf(x[e]) * cap_out;
      }
      const int base = t0 + (warp + i * NW) * TILE;
      if (base + TILE > t1) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          if (base + (e >> 1) * 8 + 2 * quad + (e & 1) >= t1) x[e] = -INFINITY;
        }
      }
      float mx = fmaxf(fmaxf(fmaxf(x[0], x[1]), fmaxf(x[2], x[3])), m);
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      if (__any_sync(0xffffffffu, mx != m)) {  // rescale only when some row's maximum moved
        const float scale = fast_exp2(m - mx);
        l *= scale;
#pragma unroll
        for (int j = 0; j < D / 8; ++j) {
          o[j][0] *= scale;
          o[j][1] *= scale;
        }
        m = mx;
      }
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        x[e] = fast_exp2(x[e] - mx);
        l += x[e];
      }
      const uint32_t pa0 = pack2(x[0], x[1], T()), pa2 = pack2(x[2], x[3], T());
#pragma unroll
      for (int d2 = 0; d2 < D / 16; ++d2) {
        const int r = ((lane >> 3) & 1) * 8 + (lane & 7), ch = 2 * d2 + (lane >> 4);
        uint32_t v0, v1, v2, v3;
        load_matrix_x4_trans(vt + r * D + ((ch ^ (r & 7)) * 8), v0, v1, v2, v3);
        mma_rows8(o[2 * d2], pa0, pa2, v0, v1, T());
        mma_rows8(o[2 * d2 + 1], pa0, pa2, v2, v3, T());
      }
    }

    wait_copies<0>();
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    __syncthreads();  // every warp is done with its stages: s_acc reuses them
    if (row < G) {
#pragma unroll
      for (int j = 0; j < D / 8; ++j)
        *reinterpret_cast<float2*>(&s_acc[warp][row][8 * j + 2 * quad]) = make_float2(o[j][0], o[j][1]);
      if (quad == 0) {
        st.m[warp][row] = m;
        st.l[warp][row] = l;
      }
    }
    __syncthreads();
    finish_item<T, D, G, NW>(p, s_acc, st, item, slots, it);
    __syncthreads();  // shared memory is reused by the next item
  }
}

#if KA_DTYPE == 0
typedef __nv_bfloat16 Elem;
#else
typedef __half Elem;
#endif

}  // namespace

extern "C" int ka_small_decode_abi(void) { return KA_ABI_VERSION; }

// sizeof(HostArgs), which small_decode.py's packing must match.
extern "C" int64_t ka_small_decode_args_size(void) { return (int64_t)sizeof(HostArgs); }

// The compile-time choices of this build: dtype, head_dim, group, warps, unroll, stages, max pages a chunk,
// tensor cores.
extern "C" void ka_small_decode_variant(int64_t* out) {
  out[0] = KA_DTYPE;
  out[1] = KA_HEAD_DIM;
  out[2] = KA_GROUP;
  out[3] = KA_WARPS;
  out[4] = KA_UNROLL;
  out[5] = KA_STAGES;
  out[6] = KA_MAX_PAGES;
  out[7] = KA_MMA;
}

// Dynamic shared memory a block of this build asks for (bytes).
extern "C" int64_t ka_small_decode_shared_bytes(void) {
#if KA_MMA
  return mma_shared_bytes<KA_HEAD_DIM, KA_GROUP, KA_WARPS, KA_STAGES>();
#else
  return shared_bytes<KA_HEAD_DIM, KA_GROUP, KA_WARPS, KA_UNROLL, KA_STAGES>();
#endif
}

// Launches on `stream`; returns the CUDA error code of the launch (0: launched).
extern "C" int ka_small_decode_launch(const HostArgs* a, void* stream) {
  Params<Elem> p;
  p.q = reinterpret_cast<const Elem*>(a->q);
  p.k = reinterpret_cast<const Elem*>(a->k);
  p.v = reinterpret_cast<const Elem*>(a->v);
  p.out = reinterpret_cast<Elem*>(a->out);
  p.lse = reinterpret_cast<float*>(a->lse);
  p.o_part = reinterpret_cast<float*>(a->o_part);
  p.lse_part = reinterpret_cast<float*>(a->lse_part);
  p.counters = reinterpret_cast<int*>(a->counters);
  p.words = reinterpret_cast<const int*>(a->words);
  p.kv_indices = reinterpret_cast<const int*>(a->kv_indices);
  p.stride_qt = a->stride_qt;
  p.stride_qh = a->stride_qh;
  p.stride_ot = a->stride_ot;
  p.stride_oh = a->stride_oh;
  p.stride_lt = a->stride_lt;
  p.stride_kp = a->stride_kp;
  p.stride_kt = a->stride_kt;
  p.stride_kh = a->stride_kh;
  p.num_kv_heads = (int)a->num_kv_heads;
  p.page_size = (int)a->page_size;
  p.window_left = (int)a->window_left;
  p.q_scale = (float)a->q_scale;
  p.cap_out = (float)a->cap_out;
  p.inline_count = (int)a->inline_count;
  for (int i = 0; i < KA_INLINE_WORDS; ++i) p.inline_words[i] = a->inline_words[i];
#if KA_MMA
  constexpr int smem = mma_shared_bytes<KA_HEAD_DIM, KA_GROUP, KA_WARPS, KA_STAGES>();
  auto kernel = mma_decode_kernel<Elem, KA_HEAD_DIM, KA_GROUP, KA_WARPS, KA_STAGES>;
#else
  constexpr int smem = shared_bytes<KA_HEAD_DIM, KA_GROUP, KA_WARPS, KA_UNROLL, KA_STAGES>();
  auto kernel = small_decode_kernel<Elem, KA_HEAD_DIM, KA_GROUP, KA_WARPS, KA_UNROLL, KA_STAGES>;
#endif
  static int opted_in = 0;  // static + dynamic shared memory above 48 KB needs the opt-in (once a process)
  if (!opted_in) {
    const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (err != cudaSuccess) return (int)err;
    opted_in = 1;
  }
  kernel<<<(unsigned)a->grid, KA_WARPS * 32, smem, reinterpret_cast<cudaStream_t>(stream)>>>(p);
  return (int)cudaGetLastError();
}
