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
                                  counter_offset, equal items (1: every item as long, see equal_items)
    [HEADER : group_offset)       num_entries x ITEM_FIELDS (item w is entry w // num_kv_heads, head w % ...)
    [group_offset : counter_off)  num_groups x GROUP_FIELDS (split schedules: one per tile, for inspection)
    [counter_off : words)         num_groups x num_kv_heads merge counters (0; the merging chunk resets its own)

Self-contained (numpy and the standard library only): the dataset's solutions embed this file verbatim.
All work is vectorized with numpy: no Python loop over requests, so planning stays within tens of
microseconds of host time at any batch size.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

HEADER = 8
ITEM_FIELDS = 12  # tok_base, qo_len, kv_len, row_start, unused, kv_lo, kv_hi, page_base, slot, tile, chunks, first
GROUP_FIELDS = 8  # first_slot, num_chunks, tok_base, qo_len, row_start, pad x3

# Page size used to express ragged (contiguous) K/V in the paged format: one "page" per request starting at
# the request's first token, so token t of the request lives at page_start + t.
RAGGED_PAGE_SIZE = 1 << 30


class PlanSummary(NamedTuple):
    """What ``plan_work`` wrote: counts, and how many int32 words of the buffer are in use."""

    num_entries: int  # (query tile, KV chunk) entries; the kernel runs each for every KV head
    num_groups: int  # split query tiles the merge kernel combines (for every KV head)
    num_slots: int  # partial-result slots (each BLOCK_M rows x head_dim floats), all heads included
    words: int
    chunk_size: int


# Item fields that come from the tile's columns (see _tiles), in column order.
_TILE_FIELDS = (0, 1, 2, 3, 5, 6, 7)  # tok_base, qo_len, kv_len, row_start, kv_lo, kv_hi, page_base


def plan_work(
    out: np.ndarray,
    qo_indptr: Optional[np.ndarray],
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

    Arguments are host integer arrays: qo_indptr [batch+1] (None: one query per request, as in decode),
    kv_page_indptr [batch+1], kv_last_page_len [batch]. Entries are (query tile, KV chunk) pairs; the kernel
    runs each for every KV head, so the host arrays stay num_kv_heads times smaller than the grid's work.
    ``target_ctas`` is the number of programs: KV ranges are split into equal chunks (at least ``min_chunk``
    tokens) while (tile, head) pairs are fewer than ``split_factor`` x target_ctas, and then every tile goes
    through the merge (one code path, fewer host operations). Causal tiles are listed request by request
    (most KV first), each request's longest first (programs take items in list order). ``split_size`` forces
    a chunk length in tokens. Words the kernel
    does not read (item field 4; fields 9-11 of a tile left whole; group padding) are written as 0. Raises
    ValueError when ``out`` or ``max_slots`` is too small for the schedule.

    Host time is the point: every numpy call costs about half a microsecond (more with a Python int
    operand, hence ``_scalar``), so the constant words come from cached templates and the common shapes
    (one tile per request; every tile split into the same number of chunks) take the shortest paths.
    """
    kv_len = _kv_lengths(kv_page_indptr, kv_last_page_len, page_size)
    tiles, rows = _tiles(qo_indptr, kv_len, kv_page_indptr[:-1], group_size, block_m, causal, window_left)
    lo, hi = tiles[4], tiles[5]
    span = hi if lo is None else hi - lo
    num_tiles = len(hi)
    max_span = int(span[span.argmax()]) if num_tiles else 0  # argmax: a fifth of the time of max()
    if split_size is not None:
        chunk = max(block_n, -(-int(split_size) // block_n) * block_n)
    elif num_tiles * num_kv_heads >= split_factor * target_ctas or max_span == 0:
        chunk = max_span
    else:
        total = sum(span.tolist()) if num_tiles <= 64 else int(np.add.reduce(span))  # the faster for its size
        chunk = max(-(-total * num_kv_heads // (split_factor * target_ctas)), min_chunk)
        pieces = -(-max_span // chunk)  # equal chunks for the longest range, rounded up to whole blocks
        if pieces > 1 and num_tiles * num_kv_heads * pieces > split_factor * target_ctas:
            pieces -= 1  # a list just over one round of programs: one round of longer items instead
        chunk = -(-(-(-max_span // pieces)) // block_n) * block_n

    group_offset = HEADER + num_tiles * ITEM_FIELDS
    if group_offset > out.shape[0]:
        raise ValueError(f"schedule needs {group_offset} int32 words, the work buffer holds {out.shape[0]}")
    order = None
    if causal and rows is not None and num_tiles * num_kv_heads > target_ctas:
        # Requests with the most KV first, each request's tiles together and longest first (the shared counter
        # hands items out in this order): tiles running at the same time then read the same request's K/V,
        # which stays in L2, where ordering all tiles longest first ran tiles of every request at once and
        # read each request's K/V from DRAM once per tile (16 x 512 over 4096: 256 MB, 16 times).
        order = np.lexsort((-span, rows[:, 0], -rows[:, 2]))
    min_span = int(span[span.argmin()]) if num_tiles else 0
    if chunk >= max_span:
        summary = _write_whole(out, tiles, rows, order, num_kv_heads, chunk)
    else:
        if order is not None:
            rows = rows.take(order, axis=0)
            tiles, span = _row_columns(rows, lo is not None), span[order]
        pieces = -(-max_span // chunk)
        if max(-(-min_span // chunk), 1) == pieces:
            summary = _write_uniform(out, tiles, pieces, chunk, num_kv_heads, max_slots)
        else:
            summary = _write_split(out, tiles, span, chunk, num_kv_heads, max_slots)
    if equal_items(num_tiles, min_span, max_span, chunk):
        out[7] = 1
    return summary


def equal_items(num_tiles: int, min_span: int, max_span: int, chunk: int) -> bool:
    """Whether every item of the schedule has as many KV tokens as every other: equal tiles, whole or cut into
    equal chunks (header word 7). The kernel then hands items out statically (program p: items p, p + programs,
    ...) instead of through the shared counter, whose atomic round trip before each item cost 3% at decode
    64 x 4096 and 6% at 64 x 1024 on the H200 (benchmarks/results/sweep_decode_h200_latest.md). Unequal items
    keep the counter: a static share of them is as long as its longest items."""
    return num_tiles > 0 and min_span == max_span and (chunk >= max_span or max_span % chunk == 0)


def _kv_lengths(kv_page_indptr: np.ndarray, kv_last_page_len: np.ndarray, page_size: int) -> np.ndarray:
    """KV tokens per request: (pages - 1) x page_size + last page's length, 0 without pages."""
    num_pages = kv_page_indptr[1:] - kv_page_indptr[:-1]
    page = _scalar(page_size)
    kv_len = num_pages * page
    kv_len += kv_last_page_len
    kv_len -= page
    if np.count_nonzero(num_pages) < len(num_pages):  # count_nonzero: a fifth of the time of all()
        kv_len[num_pages == 0] = 0
    return kv_len


def _tiles(qo_indptr, kv_len, page_base, group_size, block_m, causal, window_left):
    """Query tiles and the KV range [lo, hi) each must see: (columns, rows).

    columns = (tok_base, qo_len, kv_len, row_start, lo, hi, page_base) per tile (item fields _TILE_FIELDS), each
    an array or None where every tile holds the templates' value (tile index, 1, -, 0, 0). When every
    request's rows fit in one tile, tiles are the requests in order and rows is None; otherwise rows holds
    the tiles' item rows of an unsplit schedule (int32 [tiles, ITEM_FIELDS]) and the columns are its views.
    """
    if qo_indptr is None and group_size <= block_m:
        # Decode: the request's one query sees all of its KV, or the last window_left + 1 positions.
        lo = None if window_left < 0 else np.minimum(np.maximum(kv_len - _scalar(1 + window_left), 0), kv_len)
        return (None, None, kv_len, None, lo, kv_len, page_base), None
    if qo_indptr is None:
        qo_indptr = _arange(len(kv_len) + 1)
    tok_base = qo_indptr[:-1]
    qo_len = qo_indptr[1:] - tok_base
    most = least = 0  # packed rows (queries x group) of the longest and the shortest request
    if len(qo_len):  # argmax/argmin: a fifth of the time of max()/min()
        most, least = int(qo_len[qo_len.argmax()]) * group_size, int(qo_len[qo_len.argmin()]) * group_size
    if most <= block_m and (least > 0 or not len(qo_len)):
        # The last query of a request sees all of its KV even when causal; the window starts at the first
        # query's position minus window_left (query i sits at KV position i + kv_len - qo_len).
        lo = None
        if window_left >= 0:
            lo = np.minimum(np.maximum(kv_len - qo_len - _scalar(window_left), 0), kv_len)
        return (tok_base, qo_len, kv_len, None, lo, kv_len, page_base), None
    if 0 < least == most:
        return _equal_tiles(tok_base, most // group_size, kv_len, page_base, group_size, block_m, causal,
                            window_left)
    return _repeated_tiles(tok_base, qo_len, kv_len, page_base, group_size, block_m, causal, window_left)


def _repeated_tiles(tok_base, qo_len, kv_len, page_base, group_size, block_m, causal, window_left):
    """_tiles for requests of any query lengths: each request's item row, repeated once per tile, gives every
    tile its request's fields in one numpy call."""
    rows = qo_len * _scalar(group_size)
    request = _template(_whole_rows, len(rows))[: len(rows)].copy()
    request[:, 0] = tok_base
    request[:, 1] = qo_len
    request[:, 2] = kv_len
    request[:, 7] = page_base
    bm = _scalar(block_m)
    tiles = (rows + _scalar(block_m - 1)) // bm
    padded = tiles * bm
    row_end = np.add.accumulate(padded, out=np.empty_like(padded))
    np.subtract(padded, row_end, out=request[:, 3])  # minus the request's first tile, in rows
    num_tiles = int(row_end[-1]) // block_m
    rows = np.repeat(request, tiles, axis=0)
    row_start = rows[:, 3]
    row_start += _template(_multiples, num_tiles, block_m)[:num_tiles]
    shift = rows[:, 2] - rows[:, 1]  # query i sits at KV position i + shift
    g = _scalar(group_size)
    if causal:
        # The tile's last query is min(row_start + block_m, qo_len * group) // group - 1; it sees positions
        # up to itself + shift, clamped to [0, kv_len]: min((row_start + block_m - 1) // group + 1 + shift,
        # kv_len) clamped, and a clamp to kv_len after the min is the same clamp.
        hi = row_start + _scalar(block_m - 1 + group_size)
        hi //= g
        hi += shift
        np.minimum(np.maximum(hi, _scalar(0), out=hi), rows[:, 2], out=rows[:, 6])
    else:
        rows[:, 6] = rows[:, 2]
    if window_left >= 0:
        lo = row_start // g
        lo += shift
        lo -= _scalar(window_left)
        np.minimum(np.maximum(lo, _scalar(0), out=lo), rows[:, 6], out=rows[:, 5])
    return _row_columns(rows, window_left >= 0), rows


def _equal_tiles(tok_base, qo_len, kv_len, page_base, group_size, block_m, causal, window_left):
    """_tiles for requests of ``qo_len`` queries each (a batch of equal prompts): every request has the same
    tiles, so the tile-dependent terms are cached per shape and broadcast over the requests."""
    per_request = -(-qo_len * group_size // block_m)
    rows = _template(_equal_rows, len(kv_len), per_request, block_m, qo_len)[: len(kv_len)].copy()
    if int(tok_base[0]):  # the template's tok_base is request x qo_len
        rows[:, :, 0] = tok_base[:, None]
    rows[:, :, 2] = kv_len[:, None]
    rows[:, :, 7] = page_base[:, None]
    shift = (kv_len - _scalar(qo_len))[:, None]  # query i sits at KV position i + shift
    if causal:  # as in _tiles
        hi = _template(_tile_last_query, per_request, block_m, group_size)[:per_request] + shift
        np.minimum(np.maximum(hi, _scalar(0), out=hi), kv_len[:, None], out=hi)
    else:
        hi = np.repeat(kv_len[:, None], per_request, axis=1)
    rows[:, :, 6] = hi
    lo = None
    if window_left >= 0:
        lo = _template(_tile_first_query, per_request, block_m, group_size)[:per_request] + shift
        lo -= _scalar(window_left)
        np.minimum(np.maximum(lo, _scalar(0), out=lo), hi, out=lo)
        rows[:, :, 5] = lo
        lo = lo.reshape(-1)
    # hi and lo stay contiguous: the caller's reductions and sort run faster on them than on columns of rows.
    rows = rows.reshape(-1, ITEM_FIELDS)
    return (rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3], lo, hi.reshape(-1), rows[:, 7]), rows


def _row_columns(rows: np.ndarray, with_lo: bool) -> tuple:
    """The tile columns (see _tiles) as views of item rows."""
    return (rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 5] if with_lo else None, rows[:, 6],
            rows[:, 7])


def _write_whole(out, tiles, rows, order, num_kv_heads, chunk) -> PlanSummary:
    """One entry per tile (nothing split), the tiles' ``rows`` (if any) listed in ``order`` (if any)."""
    num_tiles = len(tiles[5])
    group_offset = HEADER + num_tiles * ITEM_FIELDS
    items = out[HEADER:group_offset].reshape(num_tiles, ITEM_FIELDS)
    if rows is None:
        items[:] = _template(_whole_rows, num_tiles)[:num_tiles]
        for field, column in zip(_TILE_FIELDS, tiles):
            if column is not None:
                items[:, field] = column
    elif order is None:
        items[:] = rows
    else:
        rows.take(order, axis=0, out=items)
    out[0:HEADER] = (num_tiles * num_kv_heads, 0, group_offset, num_kv_heads, 0, 0, 0, 0)
    return PlanSummary(num_tiles, 0, 0, group_offset, chunk)


def _write_uniform(out, tiles, pieces, chunk, num_kv_heads, max_slots) -> PlanSummary:
    """Every tile split into the same number of chunks: entry (tile t, chunk j) is t * pieces + j."""
    tok_base, qo_len, kv_len, row_start, lo, hi, page_base = tiles
    num_tiles = len(hi)
    num_entries = num_tiles * pieces
    group_offset, counter_offset, words = _split_layout(out, num_entries, num_tiles, num_kv_heads, max_slots)
    # Header, items, groups and counters as they are when tiles are requests and lo is 0: kv_lo = j * chunk
    # and kv_hi = (j + 1) * chunk are then right for every chunk but the last, as every tile spans more than
    # pieces - 1 chunks and at most pieces.
    out[:words] = _uniform_words(num_tiles, pieces, chunk, num_kv_heads)
    items = out[HEADER:group_offset].reshape(num_tiles, pieces, ITEM_FIELDS)
    items[:, :, 2] = kv_len[:, None]
    items[:, :, 7] = page_base[:, None]
    if lo is None:
        items[:, -1, 6] = hi
    else:
        kv_lo = lo[:, None] + _arange(pieces) * _scalar(chunk)
        items[:, :, 5] = kv_lo
        kv_lo += _scalar(chunk)
        items[:, :, 6] = np.minimum(kv_lo, hi[:, None])
    if tok_base is not None:  # tiles are not the requests of a decode batch
        groups = out[group_offset:counter_offset].reshape(num_tiles, GROUP_FIELDS)
        for item_field, group_field, column in ((0, 2, tok_base), (1, 3, qo_len), (3, 4, row_start)):
            if column is not None:
                items[:, :, item_field] = column[:, None]
                groups[:, group_field] = column
    return PlanSummary(num_entries, num_tiles, num_entries * num_kv_heads, words, chunk)


def _write_split(out, tiles, span, chunk, num_kv_heads, max_slots) -> PlanSummary:
    """Tiles split into different numbers of chunks (at least one each): each tile's row repeated per chunk."""
    num_tiles = len(span)
    c = _scalar(chunk)
    tile_chunks = (span + _scalar(chunk - 1)) // c
    np.maximum(tile_chunks, _scalar(1), out=tile_chunks)
    ends = np.add.accumulate(tile_chunks, out=np.empty_like(tile_chunks))
    num_entries = int(ends[-1])
    first = ends - tile_chunks
    group_offset, counter_offset, words = _split_layout(out, num_entries, num_tiles, num_kv_heads, max_slots)
    rows = _template(_split_rows, num_tiles)[:num_tiles].copy()
    for field, column in zip(_TILE_FIELDS, tiles):
        if column is not None:
            rows[:, field] = column
    # Entry e of tile t (e = first + chunk index) has kv_lo = lo + (e - first) * chunk: written here as
    # lo - first * chunk, e * chunk added to all entries at once below.
    rows[:, 5] -= first * c
    rows[:, 10] = tile_chunks
    rows[:, 11] = first
    items = out[HEADER:group_offset].reshape(num_entries, ITEM_FIELDS)
    items[:] = np.repeat(rows, tile_chunks, axis=0)
    items[:, 5] += _template(_multiples, num_entries, chunk)[:num_entries]
    np.minimum(items[:, 5] + c, items[:, 6], out=items[:, 6])
    # Entry e of a split tile writes partial slots e * heads + head; a tile left whole writes its output.
    items[:, 8] = _arange(num_entries)
    if int(tile_chunks[tile_chunks.argmin()]) == 1:
        items[first[tile_chunks == 1], 8] = -1
    groups = out[group_offset:counter_offset].reshape(num_tiles, GROUP_FIELDS)
    groups[:] = _template(_group_rows, num_tiles, 1)[:num_tiles]
    groups[:, 0] = first
    groups[:, 1] = tile_chunks
    for field, column in ((2, tiles[0]), (3, tiles[1]), (4, tiles[3])):
        if column is not None:
            groups[:, field] = column
    out[counter_offset:words] = 0
    out[0:HEADER] = (num_entries * num_kv_heads, num_tiles, group_offset, num_kv_heads, 0, 0, counter_offset, 0)
    return PlanSummary(num_entries, num_tiles, num_entries * num_kv_heads, words, chunk)


def _split_layout(out, num_entries, num_tiles, num_kv_heads, max_slots) -> tuple[int, int, int]:
    """(group_offset, counter_offset, words) of a split schedule; ValueError if it does not fit."""
    num_slots = num_entries * num_kv_heads
    if max_slots is not None and num_slots > max_slots:
        raise ValueError(f"schedule needs {num_slots} partial-result slots, the workspace holds {max_slots}")
    group_offset = HEADER + num_entries * ITEM_FIELDS
    counter_offset = group_offset + num_tiles * GROUP_FIELDS
    words = counter_offset + num_tiles * num_kv_heads
    if words > out.shape[0]:
        raise ValueError(f"schedule needs {words} int32 words, the work buffer holds {out.shape[0]}")
    return group_offset, counter_offset, words


# ----------------------------------------------------------------------------------- cached constants
# Read-only arrays that depend only on sizes, never on a batch's values; a few dict lookups per plan.
_CACHE_LIMIT = 64
_SCALARS: dict = {}
_TEMPLATES: dict = {}
_SHAPES: dict = {}  # whole schedules of one shape (_uniform_words), keyed by every size they depend on


def _scalar(value: int) -> np.ndarray:
    """``value`` as a 0-d int32 array: numpy operations take it in about half the time of a Python int."""
    scalar = _SCALARS.get(value)
    if scalar is None:
        if len(_SCALARS) >= 256:
            _SCALARS.clear()
        scalar = np.array(value, dtype=np.int32 if -(1 << 31) <= value < (1 << 31) else np.int64)
        scalar.flags.writeable = False
        _SCALARS[value] = scalar
    return scalar


def _arange(n: int) -> np.ndarray:
    """0, 1, ..., n - 1 (int32)."""
    return _template(_indices, n)[:n]


def _template(build, rows: int, *key) -> np.ndarray:
    """``build(n, *key)``, for n >= rows, cached per (build, key) and grown by doubling."""
    template = _TEMPLATES.get((build, key))
    if template is None or len(template) < rows:
        if len(_TEMPLATES) >= _CACHE_LIMIT:
            _TEMPLATES.clear()
        template = build(max(rows, 0 if template is None else 2 * len(template)), *key)
        template.flags.writeable = False
        _TEMPLATES[(build, key)] = template
    return template


def _uniform_words(num_tiles: int, pieces: int, chunk: int, num_kv_heads: int) -> np.ndarray:
    """The words of _write_uniform's schedule before its per-batch writes; cached per shape when small."""
    key = (num_tiles, pieces, chunk, num_kv_heads)
    words = _SHAPES.get(key)
    if words is None:
        num_entries = num_tiles * pieces
        group_offset = HEADER + num_entries * ITEM_FIELDS
        counter_offset = group_offset + num_tiles * GROUP_FIELDS
        words = np.zeros(counter_offset + num_tiles * num_kv_heads, np.int32)
        words[:HEADER] = (num_entries * num_kv_heads, num_tiles, group_offset, num_kv_heads, 0, 0, counter_offset, 0)
        words[HEADER:group_offset] = _chunk_rows(num_tiles, pieces, chunk).reshape(-1)
        words[group_offset:counter_offset] = _group_rows(num_tiles, pieces).reshape(-1)
        if len(words) <= 1 << 14:  # 64 KiB: the cache stays within a few MiB
            words.flags.writeable = False
            if len(_SHAPES) >= 64:
                _SHAPES.clear()
            _SHAPES[key] = words
    return words


def _indices(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int32)


def _multiples(n: int, step: int) -> np.ndarray:
    return (np.arange(n, dtype=np.int64) * step).astype(np.int32)  # int32 wraps like the words it adds to


def _equal_rows(n: int, per_request: int, block_m: int, qo_len: int) -> np.ndarray:
    """Item rows [request, tile] of requests with ``qo_len`` queries and ``per_request`` tiles each, packed
    from token 0: tok_base, qo_len, row_start, slot -1."""
    rows = np.zeros((n, per_request, ITEM_FIELDS), np.int32)
    rows[:, :, 0] = np.arange(n)[:, None] * qo_len
    rows[:, :, 1] = qo_len
    rows[:, :, 3] = np.arange(per_request) * block_m
    rows[:, :, 8] = -1
    return rows


def _tile_last_query(per_request: int, block_m: int, group_size: int) -> np.ndarray:
    """Per tile of a request: 1 + the tile's last query, were the request to go on past it."""
    return (np.arange(per_request, dtype=np.int32) * block_m + block_m - 1 + group_size) // group_size


def _tile_first_query(per_request: int, block_m: int, group_size: int) -> np.ndarray:
    return np.arange(per_request, dtype=np.int32) * block_m // group_size


def _whole_rows(n: int) -> np.ndarray:
    """Item rows of tiles left whole: tok_base = tile (decode), qo_len 1, slot -1, everything else 0."""
    rows = np.zeros((n, ITEM_FIELDS), np.int32)
    rows[:, 0] = np.arange(n)
    rows[:, 1] = 1
    rows[:, 8] = -1
    return rows


def _split_rows(n: int) -> np.ndarray:
    """Item rows of tiles about to be split: tok_base = tile (decode), qo_len 1, tile index, everything else 0."""
    rows = np.zeros((n, ITEM_FIELDS), np.int32)
    rows[:, 0] = rows[:, 9] = np.arange(n)
    rows[:, 1] = 1
    return rows


def _chunk_rows(n: int, pieces: int, chunk: int) -> np.ndarray:
    """Item rows [tile, chunk j] of tiles split into ``pieces`` chunks (kv_lo/kv_hi as if lo were 0)."""
    rows = np.zeros((n, pieces, ITEM_FIELDS), np.int32)
    tile, j = np.arange(n)[:, None], np.arange(pieces)
    rows[:, :, 0] = tile
    rows[:, :, 1] = 1
    rows[:, :, 5] = j * chunk
    rows[:, :, 6] = (j + 1) * chunk
    rows[:, :, 8] = tile * pieces + j
    rows[:, :, 9] = tile
    rows[:, :, 10] = pieces
    rows[:, :, 11] = tile * pieces
    return rows


def _group_rows(n: int, pieces: int) -> np.ndarray:
    """Group rows of tiles split into ``pieces`` chunks: first entry, pieces, tok_base = tile, qo_len 1."""
    rows = np.zeros((n, GROUP_FIELDS), np.int32)
    rows[:, 0] = np.arange(n) * pieces
    rows[:, 1] = pieces
    rows[:, 2] = np.arange(n)
    rows[:, 3] = 1
    return rows
