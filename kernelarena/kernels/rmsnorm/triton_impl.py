"""RMSNorm and fused add + RMSNorm in Triton: kernel, launch heuristics, destination-passing entry points.

    rmsnorm:            out = x * rsqrt(mean(x^2) + eps) * w
    fused_add_rmsnorm:  s = x + r; residual_out = s; out = s * rsqrt(mean(s^2) + eps) * w   (s in float32)

Each program normalizes tiles of ``rows_per_program`` whole rows held in registers (one pass over memory),
looping over tiles with a stride of the grid size, so one kernel serves both a one-tile-per-program grid and
a persistent grid. Outputs may alias inputs (``out is x``, ``residual_out is residual``): each element is
loaded before it is stored, by the same program.

Self-contained (torch, triton, stdlib): this file is the source of the dataset's Triton solutions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

DATASET_EPS = 1e-6
MAX_HIDDEN = 16384


@triton.jit
def _rmsnorm_kernel(
    x_ptr, r_ptr, w_ptr, out_ptr, r_out_ptr,
    x_stride, r_stride, out_stride, r_out_stride,
    n_rows, hidden, n_tiles, eps,
    BLOCK_N: tl.constexpr, ROWS: tl.constexpr, FUSED: tl.constexpr, EVEN_N: tl.constexpr,
):
    cols = tl.arange(0, BLOCK_N)
    col_mask = cols < hidden
    # The weight is shared by every row: load it once per program and keep it cached.
    if EVEN_N:
        w = tl.load(w_ptr + cols, eviction_policy="evict_last").to(tl.float32)
    else:
        w = tl.load(w_ptr + cols, mask=col_mask, other=0.0, eviction_policy="evict_last").to(tl.float32)
    for tile in range(tl.program_id(0), n_tiles, tl.num_programs(0)):
        rows = tile * ROWS + tl.arange(0, ROWS)
        rows64 = rows.to(tl.int64)[:, None]
        mask = (rows < n_rows)[:, None] & col_mask[None, :]
        x = tl.load(x_ptr + rows64 * x_stride + cols[None, :], mask=mask, other=0.0,
                    eviction_policy="evict_first").to(tl.float32)
        if FUSED:
            r = tl.load(r_ptr + rows64 * r_stride + cols[None, :], mask=mask, other=0.0,
                        eviction_policy="evict_first").to(tl.float32)
            x = x + r
            tl.store(r_out_ptr + rows64 * r_out_stride + cols[None, :], x.to(r_out_ptr.dtype.element_ty),
                     mask=mask)
        rstd = tl.rsqrt(tl.sum(x * x, axis=1) / hidden + eps)
        y = x * rstd[:, None] * w[None, :]
        tl.store(out_ptr + rows64 * out_stride + cols[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)


@dataclass(frozen=True)
class TritonConfig:
    """Launch choice: rows per tile, warps per program, and the grid (0: one program per tile; k > 0: a
    persistent grid of k programs per multiprocessor)."""

    rows_per_program: int
    num_warps: int
    programs_per_sm: int = 0


@functools.lru_cache(maxsize=None)
def _multiprocessor_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def pick_config(n_rows: int, hidden: int, fused: bool = False) -> TritonConfig:
    """Heuristic launch choice for a [n_rows, hidden] problem, read off the H100 sweep (docs/rmsnorm.md).

    Long rows: one row per program, 1024 elements per warp for rmsnorm (4096: 4 warps, 8192: 8) and 512 for
    the fused op (4096: 8, 8192: 16), the best or within noise of it at every batch. Short rows share a
    program (tiles of about 2048 elements). A persistent grid measured no faster anywhere (up to 13% slower),
    so the grid is one program per tile.
    """
    block_n = triton.next_power_of_2(hidden)
    rows = max(1, min(64, 2048 // block_n))
    per_warp = 512 if fused else 1024
    num_warps = max(1, min(16, block_n * rows // per_warp))
    return TritonConfig(rows_per_program=rows, num_warps=num_warps)


def launch(x, residual, weight, out, residual_out, eps: float, config: TritonConfig | None = None) -> None:
    """Normalize the rows of ``x`` (2-D, last dim contiguous) into ``out``; with ``residual`` given, first
    add it to ``x`` and write the sum to ``residual_out``. No argument checks: callers validate."""
    n_rows, hidden = x.shape
    if n_rows == 0:
        return
    fused = residual is not None
    config = config or pick_config(n_rows, hidden, fused)
    block_n = triton.next_power_of_2(hidden)
    n_tiles = triton.cdiv(n_rows, config.rows_per_program)
    grid = n_tiles
    if config.programs_per_sm:
        # On the CPU (interpreter) the persistent grid is programs_per_sm programs, to exercise the loop.
        sms = _multiprocessor_count(x.device.index or 0) if x.is_cuda else 1
        grid = min(n_tiles, config.programs_per_sm * sms)
    if not fused:
        residual, residual_out = x, out  # unused by the kernel; any valid pointers
    _rmsnorm_kernel[(grid,)](
        x, residual, weight, out, residual_out,
        x.stride(0), residual.stride(0), out.stride(0), residual_out.stride(0),
        n_rows, hidden, n_tiles, eps,
        BLOCK_N=block_n, ROWS=config.rows_per_program, FUSED=fused, EVEN_N=block_n == hidden,
        num_warps=config.num_warps,
    )


def run_rmsnorm(hidden_states, weight, output):
    """Dataset entry for ``rmsnorm_h*``: output = rmsnorm(hidden_states) * weight, eps 1e-6."""
    launch(hidden_states, None, weight, output, None, DATASET_EPS)


def run_fused_add_rmsnorm(hidden_states, residual, weight, output, residual_out):
    """Dataset entry for ``fused_add_rmsnorm_h*``: residual_out = hidden_states + residual, output =
    rmsnorm(residual_out) * weight, eps 1e-6; inputs are left unchanged."""
    launch(hidden_states, residual, weight, output, residual_out, DATASET_EPS)
