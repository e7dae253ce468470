"""Your answer: RMSNorm in Triton. Fill in the two TODOs, then grade it:

    kernelarena exercise check exercises/01_triton_rmsnorm

    output[i, :] = hidden_states[i, :] * rsqrt(mean(hidden_states[i, :]^2) + eps) * weight

hidden_states and output are [batch_size, 4096] bf16, weight is [4096] bf16; accumulate in float32.
"""

import torch
import triton
import triton.language as tl

EPS = 1e-6


@triton.jit
def _rmsnorm_kernel(x_ptr, w_ptr, out_ptr, x_row_stride, out_row_stride, hidden, eps,
                    BLOCK: tl.constexpr):
    # TODO 1: one program normalizes one row.
    #   - the row is tl.program_id(0); its first element is at x_ptr + row * x_row_stride
    #   - load BLOCK columns (tl.arange(0, BLOCK)) with a mask for cols < hidden, as float32
    #   - inv_rms = tl.rsqrt(sum of squares / hidden + eps); multiply by inv_rms and the weight
    #   - store the row at out_ptr + row * out_row_stride, cast to out_ptr.dtype.element_ty
    pass


def run(hidden_states: torch.Tensor, weight: torch.Tensor, output: torch.Tensor) -> None:
    """Destination-passing entry point: write RMSNorm(hidden_states) * weight into ``output``."""
    # TODO 2: launch one program per row, with BLOCK = triton.next_power_of_2(hidden), e.g.
    #   _rmsnorm_kernel[(rows,)](hidden_states, weight, output, ..., BLOCK=block)
    # then delete the line below.
    raise NotImplementedError("exercise 01 is not done yet: write _rmsnorm_kernel and launch it in run() "
                              "(the TODOs in solution/rmsnorm_triton.py)")
