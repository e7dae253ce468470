"""Reference answer: RMSNorm in Triton, one program per row.

    output[i, :] = hidden_states[i, :] * rsqrt(mean(hidden_states[i, :]^2) + eps) * weight

A row of 4096 bf16 values is 8 KiB, so one program holds the whole row in registers and reads it once: the
kernel moves 2 x rows x hidden x 2 bytes and is bound by memory bandwidth.
"""

import torch
import triton
import triton.language as tl

EPS = 1e-6


@triton.jit
def _rmsnorm_kernel(x_ptr, w_ptr, out_ptr, x_row_stride, out_row_stride, hidden, eps,
                    BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)  # int64: row * stride overflows int32 past 2^31 elements
    cols = tl.arange(0, BLOCK)
    mask = cols < hidden
    x = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    # Masked lanes hold 0, so they add nothing to the sum; divide by the true hidden size.
    inv_rms = tl.rsqrt(tl.sum(x * x, axis=0) / hidden + eps)
    y = x * inv_rms * w
    tl.store(out_ptr + row * out_row_stride + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


def run(hidden_states: torch.Tensor, weight: torch.Tensor, output: torch.Tensor) -> None:
    """Destination-passing entry point: writes RMSNorm(hidden_states) * weight into ``output``."""
    rows, hidden = hidden_states.shape
    block = triton.next_power_of_2(hidden)
    # 16-byte loads: 8 bf16 values per thread; a 4096 row then needs 512 threads, i.e. 16 warps.
    num_warps = min(max(block // 256, 1), 16)
    _rmsnorm_kernel[(rows,)](hidden_states, weight, output, hidden_states.stride(0), output.stride(0), hidden, EPS,
                             BLOCK=block, num_warps=num_warps)
