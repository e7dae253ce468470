// Split-KV decode attention for small batches over a paged KV cache, in CUDA (issue #6).
//
// At batch <= 16 decode is bound by memory latency, not bandwidth: a few MB of K/V spread over 132 SMs.
// A group of D/8 lanes holds one token's head vector (8 elements a lane); each thread keeps the K and V
// vectors of UNROLL tokens per step, STAGES steps deep, in flight with cp.async, scores all of the GQA
// group's query heads against them with a shuffle reduction and folds them into an online softmax kept
// in registers. A chunk's page indices are read into shared memory once, when its item starts.
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
// pipeline needs no block-wide barrier and holds STAGES - 1 steps of loads outside the registers).

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

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
// Page indices of one chunk, staged in shared memory: small_decode.py keeps chunks within
// (KA_MAX_PAGES - 1) pages.
#define KA_MAX_PAGES 256

#define KA_ABI_VERSION 4

// Launch arguments as small_decode.py packs them: 8-byte fields only (pointers and integers as int64,
// scales as double), in this order.
struct HostArgs {
  int64_t q, k, v, out, lse, o_part, lse_part, counters, words, kv_indices;  // device addresses (lse 0: none)
  int64_t stride_qt, stride_qh, stride_ot, stride_oh, stride_lt;  // elements
  int64_t stride_kp, stride_kt, stride_kh;  // page, slot, head strides of K and V (elements)
  int64_t num_kv_heads, page_size, window_left, grid;
  double q_scale;  // multiplies q: sm_scale * log2(e), or sm_scale / cap with a soft-cap
  double cap_out;  // 0: no soft-cap; else scores are tanh(q.k) * cap * log2(e)
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
};

__device__ __forceinline__ void to_float8(const uint4& raw, float (&f)[8], __nv_bfloat16) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 x = __bfloat1622float2(h[i]);
    f[2 * i] = x.x;
    f[2 * i + 1] = x.y;
  }
}

__device__ __forceinline__ void to_float8(const uint4& raw, float (&f)[8], __half) {
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 x = __half22float2(h[i]);
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

template <typename T, int D, int G, int NW, int U, int S>
__global__ void __launch_bounds__(NW * 32) small_decode_kernel(const Params<T> p) {
  constexpr int TPT = D / 8;     // lanes per token (8 elements each)
  constexpr int TPW = 32 / TPT;  // tokens a warp covers per load
  constexpr int STEP = U * NW * TPW;  // tokens per step of the whole block
  constexpr int D4 = D / 4;
  static_assert(D % 64 == 0 && D <= 256, "head_dim 64, 128 or 256");
  constexpr int NT = NW * 32;
  static_assert(S >= 2, "at least two stages");

  extern __shared__ uint4 s_dyn[];
  uint4* s_kv = s_dyn;  // [S][2][U][NT]: each thread's own K and V vectors
  float(*s_acc)[G][D] = reinterpret_cast<float(*)[G][D]>(s_dyn);  // [NW][G][D], after the token loop
  __shared__ int s_pages[KA_MAX_PAGES];
  __shared__ float s_m[NW][G];
  __shared__ float s_l[NW][G];
  __shared__ int s_last;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int sub = lane / TPT, dl = lane % TPT;
  // The schedule's first NT words in one read (header and the first requests; the words buffer is longer).
  __shared__ int s_words[NT];
  s_words[tid] = p.words[tid];
  __syncthreads();
  const int items = s_words[0], chunk = s_words[1], slots = s_words[2];
  const int ps = p.page_size, stride_kt = (int)p.stride_kt;  // a page's token strides fit in 32 bits
  const float cap_out = p.cap_out;
  const int shift = (ps & (ps - 1)) == 0 ? __ffs(ps) - 1 : -1;  // a power-of-two page size: shifts, no division

  for (int item = blockIdx.x; item < items; item += gridDim.x) {
    const int split = item % slots, bh = item / slots;
    const int h = bh % p.num_kv_heads, b = bh / p.num_kv_heads;
    const int at = 4 + 2 * b;
    const int page0 = at + 1 < NT ? s_words[at] : p.words[at], kv_len = at + 1 < NT ? s_words[at + 1] : p.words[at + 1];
    const int lo = p.window_left >= 0 ? max(0, kv_len - 1 - p.window_left) : 0;
    const int splits = max(1, (kv_len - lo + chunk - 1) / chunk);
    if (split >= splits) continue;  // uniform over the block
    const int t0 = lo + split * chunk, t1 = min(kv_len, t0 + chunk);

    const int first_page = t0 / ps, n_pages = t1 > t0 ? (t1 - 1) / ps - first_page + 1 : 0;
    for (int j = tid; j < n_pages; j += NT) s_pages[j] = __ldg(p.kv_indices + page0 + first_page + j);
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
    __syncthreads();  // s_pages
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
        int64_t off = 0;
        if (valid) {
          const int page = shift >= 0 ? t >> shift : t / ps, slot = shift >= 0 ? t & (ps - 1) : t % ps;
          off = (int64_t)s_pages[page - first_page] * p.stride_kp + slot * stride_kt;
        }
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
          s_m[warp][g] = m[g];
          s_l[warp][g] = l[g];
        }
      }
    }
    __syncthreads();

    T* out_row = p.out + b * p.stride_ot + h * G * p.stride_oh;
    for (int e = tid; e < G * D4; e += NT) {
      const int g = e / D4, d = (e % D4) * 4;
      float mx = -INFINITY;
#pragma unroll
      for (int w = 0; w < NW; ++w) mx = fmaxf(mx, s_m[w][g]);
      float total = 0.f, o0 = 0.f, o1 = 0.f, o2 = 0.f, o3 = 0.f;
#pragma unroll
      for (int w = 0; w < NW; ++w) {
        const float c = weight(s_m[w][g], mx);
        total += s_l[w][g] * c;
        o0 += s_acc[w][g][d] * c;
        o1 += s_acc[w][g][d + 1] * c;
        o2 += s_acc[w][g][d + 2] * c;
        o3 += s_acc[w][g][d + 3] * c;
      }
      const float inv = total > 0.f ? 1.f / total : 0.f;
      const float lse = total > 0.f ? mx + log2f(total) : -INFINITY;
      if (splits == 1) {
        *reinterpret_cast<uint2*>(out_row + g * p.stride_oh + d) = from_float4(o0 * inv, o1 * inv, o2 * inv, o3 * inv, T());
        if (p.lse != nullptr && d == 0) p.lse[b * p.stride_lt + h * G + g] = lse;
      } else {
        __stcg(reinterpret_cast<float4*>(p.o_part + ((int64_t)item * G + g) * D + d),
               make_float4(o0 * inv, o1 * inv, o2 * inv, o3 * inv));
        if (d == 0) __stcg(p.lse_part + (int64_t)item * G + g, lse);
      }
    }
    if (splits > 1) {
      __threadfence();
      __syncthreads();
      if (tid == 0) s_last = atomicAdd(p.counters + bh, 1) == splits - 1;
      __syncthreads();
      if (s_last) {  // the last chunk of (request, head) to finish merges every chunk's partial state
        __threadfence();
        const int64_t first = (int64_t)bh * slots;
        constexpr int MB = 8;  // chunks whose partial states are loaded at once (independent L2 reads)
        for (int e = tid; e < G * D4; e += NT) {
          const int g = e / D4, d = (e % D4) * 4;
          float mx = -INFINITY, total = 0.f;
          float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
          for (int c0 = 0; c0 < splits; c0 += MB) {
            float ls[MB];
            float4 xs[MB];
#pragma unroll
            for (int j = 0; j < MB; ++j) {
              const int64_t c = first + min(c0 + j, splits - 1);
              ls[j] = c0 + j < splits ? __ldcg(p.lse_part + c * G + g) : -INFINITY;
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
          if (p.lse != nullptr && d == 0) p.lse[b * p.stride_lt + h * G + g] = total > 0.f ? mx + log2f(total) : -INFINITY;
        }
        if (tid == 0) p.counters[bh] = 0;  // ready for the next launch
      }
    }
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

// The compile-time choices of this build: dtype, head_dim, group, warps, unroll, stages, max pages a chunk.
extern "C" void ka_small_decode_variant(int64_t* out) {
  out[0] = KA_DTYPE;
  out[1] = KA_HEAD_DIM;
  out[2] = KA_GROUP;
  out[3] = KA_WARPS;
  out[4] = KA_UNROLL;
  out[5] = KA_STAGES;
  out[6] = KA_MAX_PAGES;
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
  constexpr int smem = shared_bytes<KA_HEAD_DIM, KA_GROUP, KA_WARPS, KA_UNROLL, KA_STAGES>();
  auto kernel = small_decode_kernel<Elem, KA_HEAD_DIM, KA_GROUP, KA_WARPS, KA_UNROLL, KA_STAGES>;
  static int opted_in = 0;  // static + dynamic shared memory above 48 KB needs the opt-in (once a process)
  if (!opted_in) {
    const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (err != cudaSuccess) return (int)err;
    opted_in = 1;
  }
  kernel<<<(unsigned)a->grid, KA_WARPS * 32, smem, reinterpret_cast<cudaStream_t>(stream)>>>(p);
  return (int)cudaGetLastError();
}
