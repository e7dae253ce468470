"""RoPE with a cos/sin cache, NeoX style, in Triton: one program per token rotates all its query and key heads
(the token's cos/sin row is loaded once for both). Features past rotary_dim are copied.

Self-contained (torch, triton): this file is the source of the dataset's Triton RoPE solutions.
"""

import triton
import triton.language as tl


@triton.jit
def _rotate_heads(x_ptr, out_ptr, x_stride, out_stride, head_stride_x, head_stride_out, token, heads, cos, sin,
                  head_size, rotary_half, BLOCK_H: tl.constexpr, HALF: tl.constexpr, TAIL: tl.constexpr):
    h = tl.arange(0, BLOCK_H)[:, None]
    i = tl.arange(0, HALF)[None, :]
    mask = (h < heads) & (i < rotary_half)
    src = x_ptr + token * x_stride + h * head_stride_x
    dst = out_ptr + token * out_stride + h * head_stride_out
    x1 = tl.load(src + i, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(src + rotary_half + i, mask=mask, other=0.0).to(tl.float32)
    tl.store(dst + i, (x1 * cos - x2 * sin).to(out_ptr.dtype.element_ty), mask=mask)
    tl.store(dst + rotary_half + i, (x2 * cos + x1 * sin).to(out_ptr.dtype.element_ty), mask=mask)
    if TAIL > 0:
        j = 2 * rotary_half + tl.arange(0, TAIL)[None, :]
        tail_mask = (h < heads) & (j < head_size)
        tl.store(dst + j, tl.load(src + j, mask=tail_mask, other=0.0), mask=tail_mask)


@triton.jit
def _rope_kernel(q_ptr, k_ptr, cache_ptr, pos_ptr, q_out_ptr, k_out_ptr,
                 q_stride, k_stride, q_out_stride, k_out_stride, cache_stride,
                 q_heads, k_heads, head_size, rotary_half,
                 BLOCK_QH: tl.constexpr, BLOCK_KH: tl.constexpr, HALF: tl.constexpr, TAIL: tl.constexpr):
    token = tl.program_id(0).to(tl.int64)
    position = tl.load(pos_ptr + token).to(tl.int64)
    i = tl.arange(0, HALF)[None, :]
    cos = tl.load(cache_ptr + position * cache_stride + i, mask=i < rotary_half, other=0.0).to(tl.float32)
    sin = tl.load(cache_ptr + position * cache_stride + rotary_half + i, mask=i < rotary_half,
                  other=0.0).to(tl.float32)
    _rotate_heads(q_ptr, q_out_ptr, q_stride, q_out_stride, head_size, head_size, token, q_heads, cos, sin,
                  head_size, rotary_half, BLOCK_QH, HALF, TAIL)
    _rotate_heads(k_ptr, k_out_ptr, k_stride, k_out_stride, head_size, head_size, token, k_heads, cos, sin,
                  head_size, rotary_half, BLOCK_KH, HALF, TAIL)


def rope(q, k, cos_sin_cache, positions, q_out, k_out) -> None:
    """Rotate q [tokens, q_heads, head_size] and k [tokens, k_heads, head_size] into q_out and k_out."""
    tokens, q_heads, head_size = q.shape
    k_heads = k.shape[1]
    rotary_half = cos_sin_cache.shape[1] // 2
    for t in (q, k, q_out, k_out):
        if t.stride(2) != 1 or t.stride(1) != head_size:
            raise ValueError("rope: q, k and the outputs must have contiguous heads")
    if tokens == 0:
        return
    tail = head_size - 2 * rotary_half
    _rope_kernel[(tokens,)](q, k, cos_sin_cache, positions, q_out, k_out, q.stride(0), k.stride(0),
                            q_out.stride(0), k_out.stride(0), cos_sin_cache.stride(0), q_heads, k_heads, head_size,
                            rotary_half, BLOCK_QH=triton.next_power_of_2(q_heads),
                            BLOCK_KH=triton.next_power_of_2(k_heads), HALF=triton.next_power_of_2(rotary_half),
                            TAIL=triton.next_power_of_2(tail) if tail > 0 else 0, num_warps=4)


def run(q, k, cos_sin_cache, positions, q_out, k_out):
    """Dataset entry (destination passing)."""
    rope(q, k, cos_sin_cache, positions, q_out, k_out)
