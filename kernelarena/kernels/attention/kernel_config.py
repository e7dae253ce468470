"""Kernel configurations for paged attention: tile sizes and launch shape, chosen from the problem's shape.

The defaults are read off H100 sweeps (benchmarks/sweep_attention.py, bench_attention.py --sweep); the
numbers behind each choice are quoted next to it. Self-contained (standard library only): the dataset's
solutions embed this file verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KernelConfig:
    """Tile sizes and launch shape of the attention kernel (chosen by ``choose_config``)."""

    block_m: int  # packed query rows per tile (query tokens x heads of one GQA group)
    block_n: int  # KV tokens per inner-loop step
    num_warps: int
    num_stages: int
    ctas_per_sm: int  # persistent programs per SM (an upper bound on residency; extra programs find no work)
    min_chunk: int  # never split a KV range into chunks shorter than this (tokens)
    split_factor: int = 1  # split KV while (tile, head) pairs < split_factor x programs: aim for that many items


def choose_config(head_dim: int, group_size: int, max_packed_rows: int, on_gpu: bool, pairs: int = 0,
                  num_sms: int = 0) -> KernelConfig:
    """Pick tile sizes for a batch whose longest request has ``max_packed_rows`` = qo_len x group_size rows;
    ``pairs`` = requests x KV heads and ``num_sms`` tell a small decode batch (fewer pairs than SMs) apart.

    Triton's pipeliner keeps one gathered K/V block in flight below 5 stages (the page-index load takes a
    stage; the TTGIR waits with ``async_wait num=0``) and two from 5 stages up (``num=3``), which is why the
    configs for latency-bound work below use 5-6 stages."""
    if not on_gpu:
        # Triton's CPU interpreter: small tiles keep it fast and let small test sizes exercise splitting.
        return KernelConfig(16 if max_packed_rows <= 16 else 32, 16, 4, 1, 2, 16, 1)
    if max_packed_rows <= 16 and group_size <= 16:
        # Decode: one tile holds a request's whole GQA group; memory-bound. The kernel keeps one K/V block in
        # flight per program (the page-index load comes first), so wide blocks move the most bytes per round
        # trip: 128 tokens, 2 stages, 2 programs per SM; KV split only while (request, head) pairs are fewer
        # than programs, into chunks of at least 256 tokens. On an H100 (benchmarks/sweep_attention.py; numbers in
        # docs/attention.md) this beat 64-token blocks by up to 7% from batch 64 up, and
        # not splitting at batch 64 x 1024 (512 pairs, 264 programs) was 9% faster than 2 items per program.
        # Fewer (request, head) pairs than SMs: one program per SM with two blocks in flight (5 stages) cut
        # 1 x 4096 from 27.3 to 24.3 us and 16 x 8192 from 217 to 208 us; 16 x 1024 53.7 vs 52.4 us
        # (the same sweep).
        block_n = 128 if head_dim <= 128 else 64
        if 0 < pairs < num_sms:
            return KernelConfig(16, block_n, 4, 5, 1, 256, 1)
        return KernelConfig(16, block_n, 4, 2, 2, 256, 1)
    block_m = 64 if (head_dim > 128 or max_packed_rows <= 64) else 128
    block_n = 64 if head_dim <= 128 else 32
    if block_m == 128:
        # 8 warps and 6 stages (two K/V blocks in flight, no spills at 254 registers): 378 vs 312 TFLOP/s at
        # 4 x 1024 over 4096, 333 vs 277 at 16 x 512 (H100 sweep); 382 at 16 x 512 once tiles are listed
        # request by request. 7 stages measured
        # 1-2% faster but need 164 KB of shared memory, more than an A100 allows per block; 6 take 132 KB.
        return KernelConfig(128, block_n, 8, 6, 1, 512, 1)
    # 4 warps beat 8 for 128x64 tiles on an H100 (305 vs 250 TFLOP/s, 4 x 1024 over 4096, H100 sweep), despite
    # the spills; 3 stages beat 2 (318 vs 306 TFLOP/s at 4 x 1024, 290 vs 270 at 16 x 512).
    return KernelConfig(block_m, block_n, 4, 3, 2, 512, 1)
