"""The least time a benchmark's timer gives any kernel that must read N bytes: the floor under a table's rows.

Two measurements, with whatever timer the caller uses (bench_attention: triton.testing.do_bench, which
writes a 256 MB buffer before each call, so the L2 starts full of dirty lines):

    empty_kernel_us   one launch of an empty Triton kernel: the timer's floor for any kernel at all
    read_floor_us     the fastest of a few plain streaming reads of N contiguous bytes (each program sums
                      8 KiB blocks spaced a grid apart; 1 to 8 programs per SM): what any kernel that reads
                      those bytes from DRAM needs at least under that timer

Both launch through triton_impl's DirectLauncher: Triton's ordinary launch costs the H100 machine's host
more than the flush gives it to get ahead, which would time the host instead of the GPU (issue #5).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernelarena.kernels.rmsnorm.triton import DirectLauncher

READ_BLOCK = 2048  # int32 words per program and step: 8 KiB
PROGRAMS_PER_SM = (1, 2, 4, 8)


@triton.jit
def _empty_kernel(x_ptr):
    pass


@triton.jit
def _read_kernel(src_ptr, out_ptr, n_words, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    acc = tl.zeros([BLOCK], tl.int32)
    for start in range(pid * BLOCK, n_words, tl.num_programs(0) * BLOCK):
        offs = start + tl.arange(0, BLOCK)
        acc += tl.load(src_ptr + offs, mask=offs < n_words, other=0)
    tl.store(out_ptr + pid, tl.sum(acc, axis=0))


EMPTY_KERNEL = DirectLauncher(_empty_kernel)
_READ = DirectLauncher(_read_kernel)


def empty_kernel_us(time_us, device) -> float:
    """time_us(fn) of one empty kernel launch."""
    dummy = torch.empty(1, device=device)
    return time_us(lambda: EMPTY_KERNEL(1, dummy))


def read_floor_us(time_us, buffer: torch.Tensor, nbytes: int) -> float:
    """Least time_us(fn) over PROGRAMS_PER_SM of a streaming read of the first ``nbytes`` of ``buffer``
    (contiguous, at least nbytes long)."""
    words = buffer.view(-1).view(torch.uint8)[: nbytes - nbytes % 4].view(torch.int32)
    sms = torch.cuda.get_device_properties(buffer.device).multi_processor_count
    best = float("inf")
    for per_sm in PROGRAMS_PER_SM:
        grid = min(sms * per_sm, triton.cdiv(words.numel(), READ_BLOCK))
        sums = torch.empty(grid, dtype=torch.int32, device=buffer.device)
        best = min(best, time_us(lambda: _READ(grid, words, sums, words.numel(), READ_BLOCK, num_warps=4)))
        if grid < sms * per_sm:
            break  # more programs would have nothing to read
    return best
