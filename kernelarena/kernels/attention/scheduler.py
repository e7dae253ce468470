"""Host-side schedule for paged attention: split (request, query tile, KV head) work into KV chunks.

``plan_work`` turns a CSR page table (qo_indptr, kv_page_indptr, kv_last_page_len) into a flat list of work
items, one per (query tile, KV head, KV chunk), written as int32 words into a caller-owned buffer that is
copied to the device in one transfer. The attention kernel walks the list with a fixed, persistent grid, so
the launch never depends on the schedule (CUDA-graph safe). When a query tile's KV range is split into
several chunks, each chunk writes a partial result (output and base-2 log-sum-exp) to a slot; the chunk that
finishes last (a counter per tile and KV head) merges the tile's slots inside the same launch.

Buffer layout (int32 words), shared with ``paged_kernel.py``::

    [0 : HEADER)                  num_items (entries x KV heads), num_groups, group_offset, num_kv_heads,
                                  item counter, done counter (both 0; the kernel resets them after each run),
                                  counter_offset
    [HEADER : group_offset)       num_entries x ITEM_FIELDS (item w is entry w // num_kv_heads, head w % ...)
    [group_offset : counter_off)  num_groups x GROUP_FIELDS (split schedules: one per tile, for inspection)
    [counter_off : words)         num_groups x num_kv_heads merge counters (0; the merging chunk resets its own)

Self-contained (numpy and the standard library only): the dataset's solutions embed this file verbatim.
All work is vectorized with numpy: no Python loop over requests, so planning stays within tens of
microseconds of host time at any batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

HEADER = 8
ITEM_FIELDS = 12  # tok_base, qo_len, kv_len, row_start, unused, kv_lo, kv_hi, page_base, slot, tile, chunks, first
GROUP_FIELDS = 8  # first_slot, num_chunks, tok_base, qo_len, row_start, pad x3

# Page size used to express ragged (contiguous) K/V in the paged format: one "page" per request starting at
# the request's first token, so token t of the request lives at page_start + t.
RAGGED_PAGE_SIZE = 1 << 30


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


def choose_config(head_dim: int, group_size: int, max_packed_rows: int, on_gpu: bool) -> KernelConfig:
    """Pick tile sizes for a batch whose longest request has ``max_packed_rows`` = qo_len x group_size rows."""
    if not on_gpu:
        # Triton's CPU interpreter: small tiles keep it fast and let small test sizes exercise splitting.
        return KernelConfig(16 if max_packed_rows <= 16 else 32, 16, 4, 1, 2, 16, 1)
    if max_packed_rows <= 16 and group_size <= 16:
        # Decode: one tile holds a request's whole GQA group; memory-bound, many KV tokens in flight. Items
        # about 4 per program keep equal-length batches from ending in a partly idle last round. At 162
        # registers only 3 programs of 4 warps fit on an SM, yet a grid of 4 per SM measured as fast or
        # faster than 3 (256 x 8192: 2864 vs 2909 us; 1 x 4096: 31.2 vs 32.4 us; H100, 2026-11-24 run 2,
        # benchmarks/results/attention_2026-11-24_h100_run2_sweep.log).
        block_n = 64 if head_dim <= 128 else 32
        return KernelConfig(16, block_n, 4, 3, 4, 128, 4)
    block_m = 64 if (head_dim > 128 or max_packed_rows <= 64) else 128
    block_n = 64 if head_dim <= 128 else 32
    # 4 warps beat 8 for 128x64 tiles on an H100 (305 vs 250 TFLOP/s, 4 x 1024 over 4096, 2026-11-24,
    # benchmarks/results/attention_2026-11-24_h100_sweep.log), despite the spills; 3 stages beat 2 in run 2
    # (318 vs 306 TFLOP/s at 4 x 1024, 290 vs 270 at 16 x 512; attention_2026-11-24_h100_run2_sweep.log).
    return KernelConfig(block_m, block_n, 4, 3, 2, 512, 1)


@dataclass(frozen=True)
class PlanSummary:
    """What ``plan_work`` wrote: counts, and how many int32 words of the buffer are in use."""

    num_entries: int  # (query tile, KV chunk) entries; the kernel runs each for every KV head
    num_groups: int  # split query tiles the merge kernel combines (for every KV head)
    num_slots: int  # partial-result slots (each BLOCK_M rows x head_dim floats), all heads included
    words: int
    chunk_size: int


def plan_work(
    out: np.ndarray,
    qo_indptr: np.ndarray,
    kv_page_indptr: np.ndarray,
    kv_last_page_len: np.ndarray,
    *,
    page_size: int,
    group_size: int,
    num_kv_heads: int,
    block_m: int,
    block_n: int,
    causal: bool,
    window_left: int,
    target_ctas: int,
    min_chunk: int,
    split_size: Optional[int] = None,
    max_slots: Optional[int] = None,
    split_factor: int = 1,
) -> PlanSummary:
    """Write the work list for one batch into ``out`` (int32) and return its summary.

    Arguments are host integer arrays: qo_indptr [batch+1], kv_page_indptr [batch+1], kv_last_page_len
    [batch]. Entries are (query tile, KV chunk) pairs; the kernel runs each for every KV head, so the host
    arrays stay num_kv_heads times smaller than the grid's work. ``target_ctas`` is the number of programs:
    KV ranges are split into equal chunks (at least ``min_chunk`` tokens) while (tile, head) pairs are fewer
    than ``split_factor`` x target_ctas, and then every tile goes through the merge (one code path, fewer
    host operations). Causal tiles are listed longest first (programs take items in list order).
    ``split_size`` forces a chunk length in tokens. Raises ValueError when ``out`` or ``max_slots`` is too
    small for the schedule. Every numpy call costs about a microsecond of host time: keep them few.
    """
    qo_len = qo_indptr[1:] - qo_indptr[:-1]
    num_pages = kv_page_indptr[1:] - kv_page_indptr[:-1]
    kv_len = (num_pages - 1) * page_size + kv_last_page_len
    kv_len[num_pages == 0] = 0
    tile_req, row_start, hi, lo = _tiles(qo_len, kv_len, group_size, block_m, causal, window_left)
    num_tiles = len(hi)
    span = hi if lo is None else hi - lo
    max_span = int(span.max()) if num_tiles else 0
    if split_size is not None:
        chunk = max(block_n, -(-int(split_size) // block_n) * block_n)
    elif num_tiles * num_kv_heads >= split_factor * target_ctas or max_span == 0:
        chunk = max_span
    else:
        chunk = max(-(-int(span.sum()) * num_kv_heads // (split_factor * target_ctas)), min_chunk)
        pieces = -(-max_span // chunk)  # equal chunks for the longest range, rounded up to whole blocks
        chunk = -(-(-(-max_span // pieces)) // block_n) * block_n

    # One entry per tile first (the whole schedule when nothing is split).
    group_offset = HEADER + num_tiles * ITEM_FIELDS
    if group_offset > out.shape[0]:
        raise ValueError(f"schedule needs {group_offset} int32 words, the work buffer holds {out.shape[0]}")
    tiles = out[HEADER:group_offset].reshape(num_tiles, ITEM_FIELDS)
    req = slice(None) if tile_req is None else tile_req  # None: tiles are the requests, in order
    tiles[:, 0] = qo_indptr[:-1][req]
    tiles[:, 1] = qo_len[req]
    tiles[:, 2] = kv_len[req]
    tiles[:, 3] = 0 if row_start is None else row_start
    tiles[:, 5] = 0 if lo is None else lo
    tiles[:, 6] = hi
    tiles[:, 7] = kv_page_indptr[:-1][req]
    tiles[:, 8] = -1
    if causal and tile_req is not None and num_tiles * num_kv_heads > target_ctas:
        order = np.argsort(-span, kind="stable")  # longest first: the shared counter hands them out first
        tiles[:] = tiles[order]
        span, hi = span[order], hi[order]
        lo = None if lo is None else lo[order]
    if chunk >= max_span:
        out[0:HEADER] = (num_tiles * num_kv_heads, 0, group_offset, num_kv_heads, 0, 0, 0, 0)
        return PlanSummary(num_tiles, 0, 0, group_offset, chunk)

    tile_chunks = np.maximum((span + (chunk - 1)) // chunk, 1)
    ends = tile_chunks.cumsum()
    num_entries = int(ends[-1])
    first = ends - tile_chunks
    e_tile = np.repeat(np.arange(num_tiles), tile_chunks)
    e_lo = (np.arange(num_entries) - first[e_tile]) * chunk
    if lo is not None:
        e_lo += lo[e_tile]
    num_slots = num_entries * num_kv_heads
    if max_slots is not None and num_slots > max_slots:
        raise ValueError(f"schedule needs {num_slots} partial-result slots, the workspace holds {max_slots}")
    group_offset = HEADER + num_entries * ITEM_FIELDS
    counter_offset = group_offset + num_tiles * GROUP_FIELDS
    words = counter_offset + num_tiles * num_kv_heads
    if words > out.shape[0]:
        raise ValueError(f"schedule needs {words} int32 words, the work buffer holds {out.shape[0]}")
    groups_tmp = tiles[:, [0, 1, 3]]  # tok_base, qo_len, row_start, before the entries overwrite them
    entries = tiles[e_tile]
    entries[:, 5] = e_lo
    entries[:, 6] = np.minimum(e_lo + chunk, hi[e_tile])
    # Entry e of a split tile writes partial slots e*heads + head; the chunk that finishes last merges them
    # (counter per tile and head). A tile left whole writes its output directly.
    e_chunks = tile_chunks[e_tile]
    entries[:, 8] = np.where(e_chunks > 1, np.arange(num_entries), -1)
    entries[:, 9] = e_tile
    entries[:, 10] = e_chunks
    entries[:, 11] = first[e_tile]
    out[HEADER:group_offset].reshape(num_entries, ITEM_FIELDS)[:] = entries
    groups = out[group_offset:counter_offset].reshape(num_tiles, GROUP_FIELDS)
    groups[:, 0] = first
    groups[:, 1] = tile_chunks
    groups[:, 2:5] = groups_tmp
    out[counter_offset:words] = 0
    out[0:HEADER] = (num_entries * num_kv_heads, num_tiles, group_offset, num_kv_heads, 0, 0, counter_offset, 0)
    return PlanSummary(num_entries, num_tiles, num_slots, words, chunk)


def _tiles(qo_len, kv_len, group_size, block_m, causal, window_left):
    """Query tiles and the KV range [lo, hi) each must see: (tile_req, row_start, hi, lo).

    When every request fits in one tile (decode), tiles are the requests and tile_req/row_start are None;
    lo is None when it is 0 everywhere.
    """
    rows = qo_len * group_size
    if int(rows.max(initial=0)) <= block_m and int(rows.min(initial=1)) > 0:
        # The last query of a request sees all of its KV even when causal; the window starts at the first
        # query's position minus window_left (query i sits at KV position i + kv_len - qo_len).
        hi = kv_len
        lo = None if window_left < 0 else np.minimum(np.maximum(hi - qo_len - window_left, 0), hi)
        return None, None, hi, lo
    tiles = (rows + block_m - 1) // block_m
    tile_end = tiles.cumsum()
    num_tiles = int(tile_end[-1]) if len(tile_end) else 0
    tile_req = np.repeat(np.arange(len(tiles)), tiles)
    row_start = (np.arange(num_tiles) - (tile_end - tiles)[tile_req]) * block_m
    t_kv = kv_len[tile_req]
    t_shift = t_kv - qo_len[tile_req]
    hi = t_kv
    if causal:
        last_tok = (np.minimum(row_start + block_m, rows[tile_req]) - 1) // group_size
        hi = np.minimum(np.maximum(last_tok + t_shift + 1, 0), t_kv)
    lo = None
    if window_left >= 0:
        lo = np.minimum(np.maximum(row_start // group_size + t_shift - window_left, 0), hi)
    return tile_req, row_start, hi, lo
