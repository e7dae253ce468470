"""Host-side schedule for paged attention: split (request, query tile, KV head) work into KV chunks.

``plan_work`` turns a CSR page table (qo_indptr, kv_page_indptr, kv_last_page_len) into a flat list of work
items, one per (query tile, KV head, KV chunk), written as int32 words into a caller-owned buffer that is
copied to the device in one transfer. The attention kernel walks the list with a fixed, persistent grid, so
the launch never depends on the schedule (CUDA-graph safe). When a query tile's KV range is split into
several chunks, each chunk writes a partial result (output and base-2 log-sum-exp) to a slot, and a merge
group tells the merge kernel which slots to combine.

Buffer layout (int32 words), shared with ``paged_kernel.py`` and ``merge.py``::

    [0 : HEADER)                  num_items, num_groups, group_offset, 0...
    [HEADER : group_offset)       num_items x ITEM_FIELDS
    [group_offset : ...)          num_groups x GROUP_FIELDS

Self-contained (numpy and the standard library only): the dataset's solutions embed this file verbatim.
All work is vectorized with numpy: no Python loop over requests, so planning stays within tens of
microseconds of host time at any batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

HEADER = 8
ITEM_FIELDS = 12  # tok_base, qo_len, kv_len, row_start, kv_head, kv_lo, kv_hi, page_base, slot, pad x3
GROUP_FIELDS = 8  # first_slot, num_chunks, tok_base, qo_len, row_start, kv_head, pad x2

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
    ctas_per_sm: int  # persistent programs per SM
    min_chunk: int  # never split a KV range into chunks shorter than this (tokens)


def choose_config(head_dim: int, group_size: int, max_packed_rows: int, on_gpu: bool) -> KernelConfig:
    """Pick tile sizes for a batch whose longest request has ``max_packed_rows`` = qo_len x group_size rows."""
    if not on_gpu:
        # Triton's CPU interpreter: small tiles keep it fast and let small test sizes exercise splitting.
        return KernelConfig(16 if max_packed_rows <= 16 else 32, 16, 4, 1, 2, 16)
    if max_packed_rows <= 16 and group_size <= 16:
        # Decode: one tile holds a request's whole GQA group; memory-bound, many KV tokens in flight.
        block_n = 64 if head_dim <= 128 else 32
        return KernelConfig(16, block_n, 4, 3 if on_gpu else 1, 4, 256)
    block_m = 64 if (head_dim > 128 or max_packed_rows <= 64) else 128
    block_n = 64 if head_dim <= 128 else 32
    num_warps = 8 if block_m == 128 else 4
    return KernelConfig(block_m, block_n, num_warps, 2 if on_gpu else 1, 2, 512)


@dataclass(frozen=True)
class PlanSummary:
    """What ``plan_work`` wrote: counts, and how many int32 words of the buffer are in use."""

    num_items: int
    num_groups: int
    num_slots: int  # partial-result slots (each BLOCK_M rows x head_dim floats)
    words: int
    chunk_size: int


def kv_lengths(kv_page_indptr: np.ndarray, kv_last_page_len: np.ndarray, page_size: int) -> np.ndarray:
    """Tokens per request from the page table (0 for a request with no pages)."""
    num_pages = np.diff(kv_page_indptr)
    return np.where(num_pages > 0, (num_pages - 1) * page_size + kv_last_page_len, 0)


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
) -> PlanSummary:
    """Write the work list for one batch into ``out`` (int32) and return its summary.

    Arguments are host arrays: qo_indptr [batch+1], kv_page_indptr [batch+1], kv_last_page_len [batch].
    ``target_ctas`` is the number of programs that can run at once; KV ranges are split into chunks only
    while there are fewer (tile, head) pairs than that. ``split_size`` forces a chunk length in tokens.
    Raises ValueError when ``out`` or ``max_slots`` is too small for the schedule.
    """
    qo_indptr = np.asarray(qo_indptr, dtype=np.int64)
    kv_page_indptr = np.asarray(kv_page_indptr, dtype=np.int64)
    qo_len = qo_indptr[1:] - qo_indptr[:-1]
    kv_len = kv_lengths(kv_page_indptr, np.asarray(kv_last_page_len, dtype=np.int64), page_size)
    rows = qo_len * group_size
    tiles = (rows + block_m - 1) // block_m
    tile_end = np.cumsum(tiles)
    num_tiles = int(tile_end[-1]) if len(tile_end) else 0

    tile_req = np.repeat(np.arange(len(tiles)), tiles)
    row_start = (np.arange(num_tiles) - np.repeat(tile_end - tiles, tiles)) * block_m
    t_qo, t_kv = qo_len[tile_req], kv_len[tile_req]
    shift = t_kv - t_qo  # causal aligns query i with KV position i + shift
    hi = t_kv
    if causal:
        last_tok = (np.minimum(row_start + block_m, t_qo * group_size) - 1) // group_size
        hi = np.clip(last_tok + shift + 1, 0, t_kv)
    lo = np.zeros_like(hi)
    if window_left >= 0:
        lo = np.clip(row_start // group_size + shift - window_left, 0, hi)
    span = hi - lo

    pairs = num_tiles * num_kv_heads
    max_span = int(span.max()) if num_tiles else 0
    if split_size is not None:
        chunk = max(block_n, -(-int(split_size) // block_n) * block_n)
    elif pairs >= target_ctas or max_span == 0:
        chunk = max(max_span, 1)
    else:
        chunk = -(-int(span.sum()) * num_kv_heads // target_ctas)
        chunk = max(-(-chunk // block_n) * block_n, min_chunk)
    tile_chunks = np.maximum(1, -(-span // chunk))

    # Items enumerate (tile, head, chunk) with the chunk innermost.
    pair_tile = np.repeat(np.arange(num_tiles), num_kv_heads)
    pair_chunks = tile_chunks[pair_tile]
    pair_end = np.cumsum(pair_chunks)
    num_items = int(pair_end[-1]) if pairs else 0
    item_pair = np.repeat(np.arange(pairs), pair_chunks)
    item_chunk = np.arange(num_items) - np.repeat(pair_end - pair_chunks, pair_chunks)
    item_tile = pair_tile[item_pair]
    item_lo = lo[item_tile] + item_chunk * chunk
    item_hi = np.minimum(item_lo + chunk, hi[item_tile])

    split = pair_chunks > 1
    pair_slots = np.where(split, pair_chunks, 0)
    slot_end = np.cumsum(pair_slots)
    num_slots = int(slot_end[-1]) if pairs else 0
    pair_first_slot = slot_end - pair_slots
    item_slot = np.where(split[item_pair], pair_first_slot[item_pair] + item_chunk, -1)
    if max_slots is not None and num_slots > max_slots:
        raise ValueError(f"schedule needs {num_slots} partial-result slots, the workspace holds {max_slots}")

    group_pairs = np.flatnonzero(split)
    num_groups = len(group_pairs)
    group_offset = HEADER + num_items * ITEM_FIELDS
    words = group_offset + num_groups * GROUP_FIELDS
    if words > out.shape[0]:
        raise ValueError(f"schedule needs {words} int32 words, the work buffer holds {out.shape[0]}")

    if causal and num_items > 1 and max_span != int(span.min()):
        # Longest first: the persistent grid takes items round-robin, so this balances the tail.
        order = np.argsort(item_lo - item_hi, kind="stable")
        item_pair, item_tile, item_lo, item_hi, item_slot = (
            a[order] for a in (item_pair, item_tile, item_lo, item_hi, item_slot)
        )
    req = tile_req[item_tile]
    items = out[HEADER:group_offset].reshape(num_items, ITEM_FIELDS)
    items[:, 0] = qo_indptr[req]
    items[:, 1] = qo_len[req]
    items[:, 2] = kv_len[req]
    items[:, 3] = row_start[item_tile]
    items[:, 4] = item_pair % num_kv_heads
    items[:, 5] = item_lo
    items[:, 6] = item_hi
    items[:, 7] = kv_page_indptr[req]
    items[:, 8] = item_slot
    if num_groups:
        g_tile = pair_tile[group_pairs]
        g_req = tile_req[g_tile]
        groups = out[group_offset:words].reshape(num_groups, GROUP_FIELDS)
        groups[:, 0] = pair_first_slot[group_pairs]
        groups[:, 1] = pair_chunks[group_pairs]
        groups[:, 2] = qo_indptr[g_req]
        groups[:, 3] = qo_len[g_req]
        groups[:, 4] = row_start[g_tile]
        groups[:, 5] = group_pairs % num_kv_heads
    out[0:3] = (num_items, num_groups, group_offset)
    return PlanSummary(num_items, num_groups, num_slots, words, chunk)
