"""silu_and_mul in Triton: out = silu(x[:, :d]) * x[:, d:] (float32 math). One program per (row, column
block); each element is read once and written once, so the kernel is memory-bound: it should run at the
device's copy rate. Under TRITON_INTERPRET=1 (the CPU) a whole row is one block.

Self-contained (torch, triton, os): this file is the source of the dataset's Triton silu_and_mul solutions.
"""

import os

import torch
import triton
import triton.language as tl


@triton.jit
def _silu_and_mul_kernel(x_ptr, out_ptr, d, x_stride, out_stride, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < d
    gate = tl.load(x_ptr + row * x_stride + cols, mask=mask, other=0.0).to(tl.float32)
    up = tl.load(x_ptr + row * x_stride + d + cols, mask=mask, other=0.0).to(tl.float32)
    out = gate * tl.sigmoid(gate) * up
    tl.store(out_ptr + row * out_stride + cols, out.to(out_ptr.dtype.element_ty), mask=mask)


def silu_and_mul(x: torch.Tensor, out: torch.Tensor) -> None:
    """out = silu(x[:, :d]) * x[:, d:], written into out ([rows, d]); rows contiguous in their last dim."""
    rows, d = out.shape
    if x.stride(-1) != 1 or out.stride(-1) != 1:
        raise ValueError("silu_and_mul: x and out must be contiguous in their last dimension")
    block = triton.next_power_of_2(d) if os.environ.get("TRITON_INTERPRET") == "1" else 1024
    if rows:
        _silu_and_mul_kernel[(rows, triton.cdiv(d, block))](x, out, d, x.stride(0), out.stride(0), BLOCK=block,
                                                            num_warps=4)


def run(x, output):
    """Dataset entry (destination passing)."""
    silu_and_mul(x, output)
