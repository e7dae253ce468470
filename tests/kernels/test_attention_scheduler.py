"""scheduler.plan_work: every word of the schedule against a plain reference, and its fast paths against its
general ones, on random batches (decode and prefill, causal or not, windows, split or not).

``reference_plan_work`` is the straightforward implementation that the host-time work of issue #6 replaced
(one code path, no templates); the kernel's buffer layout did not change, so its words are the oracle. The
words it never wrote (item field 4, fields 9-11 of an unsplit item, group padding) read 0 in its zeroed
buffer; plan_work writes them as 0 into a buffer full of garbage, so a word left unwritten fails the test.
"""

from __future__ import annotations

import numpy as np
import pytest

from kernelarena.kernels.attention import scheduler
from kernelarena.kernels.attention.scheduler import GROUP_FIELDS, HEADER, ITEM_FIELDS, plan_work

GARBAGE = 0x5BADF00D


def reference_plan_work(out, qo_indptr, kv_page_indptr, kv_last_page_len, *, page_size, group_size, num_kv_heads,
                        block_m, block_n, causal, window_left, target_ctas, min_chunk, split_size=None,
                        max_slots=None, split_factor=1):
    qo_len = qo_indptr[1:] - qo_indptr[:-1]
    num_pages = kv_page_indptr[1:] - kv_page_indptr[:-1]
    kv_len = (num_pages - 1) * page_size + kv_last_page_len
    kv_len[num_pages == 0] = 0
    rows = qo_len * group_size
    if int(rows.max(initial=0)) <= block_m and int(rows.min(initial=1)) > 0:
        tile_req = row_start = None
        hi = kv_len
        lo = None if window_left < 0 else np.minimum(np.maximum(hi - qo_len - window_left, 0), hi)
    else:
        tiles = (rows + block_m - 1) // block_m
        tile_end = tiles.cumsum()
        tile_req = np.repeat(np.arange(len(tiles)), tiles)
        row_start = (np.arange(int(tile_end[-1])) - (tile_end - tiles)[tile_req]) * block_m
        t_kv = kv_len[tile_req]
        t_shift = t_kv - qo_len[tile_req]
        hi = t_kv
        if causal:
            last_tok = (np.minimum(row_start + block_m, rows[tile_req]) - 1) // group_size
            hi = np.minimum(np.maximum(last_tok + t_shift + 1, 0), t_kv)
        lo = None
        if window_left >= 0:
            lo = np.minimum(np.maximum(row_start // group_size + t_shift - window_left, 0), hi)
    num_tiles = len(hi)
    span = hi if lo is None else hi - lo
    max_span = int(span.max()) if num_tiles else 0
    if split_size is not None:
        chunk = max(block_n, -(-int(split_size) // block_n) * block_n)
    elif num_tiles * num_kv_heads >= split_factor * target_ctas or max_span == 0:
        chunk = max_span
    else:
        chunk = max(-(-int(span.sum()) * num_kv_heads // (split_factor * target_ctas)), min_chunk)
        pieces = -(-max_span // chunk)
        if pieces > 1 and num_tiles * num_kv_heads * pieces > split_factor * target_ctas:
            pieces -= 1
        chunk = -(-(-(-max_span // pieces)) // block_n) * block_n
    group_offset = HEADER + num_tiles * ITEM_FIELDS
    if group_offset > out.shape[0]:
        raise ValueError(f"schedule needs {group_offset} int32 words, the work buffer holds {out.shape[0]}")
    tiles = out[HEADER:group_offset].reshape(num_tiles, ITEM_FIELDS)
    req = slice(None) if tile_req is None else tile_req
    tiles[:, 0] = qo_indptr[:-1][req]
    tiles[:, 1] = qo_len[req]
    tiles[:, 2] = kv_len[req]
    tiles[:, 3] = 0 if row_start is None else row_start
    tiles[:, 5] = 0 if lo is None else lo
    tiles[:, 6] = hi
    tiles[:, 7] = kv_page_indptr[:-1][req]
    tiles[:, 8] = -1
    if causal and tile_req is not None and num_tiles * num_kv_heads > target_ctas:
        order = np.lexsort((-span, tiles[:, 0], -tiles[:, 2]))  # by request (most KV first), longest tile first
        tiles[:] = tiles[order]
        span, hi = span[order], hi[order]
        lo = None if lo is None else lo[order]
    if chunk >= max_span:
        equal = num_tiles > 0 and len(set(span.tolist())) == 1
        out[0:HEADER] = (num_tiles * num_kv_heads, 0, group_offset, num_kv_heads, 0, 0, 0, int(equal))
        return (num_tiles, 0, 0, group_offset, chunk)
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
    groups_tmp = tiles[:, [0, 1, 3]]
    entries = tiles[e_tile]
    entries[:, 5] = e_lo
    entries[:, 6] = np.minimum(e_lo + chunk, hi[e_tile])
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
    # Word 7: equal tiles whose items all hold as many KV tokens (the kernel then hands them out statically).
    equal = len(set(span.tolist())) == 1 and len(set((entries[:, 6] - entries[:, 5]).tolist())) == 1
    out[0:HEADER] = (num_entries * num_kv_heads, num_tiles, group_offset, num_kv_heads, 0, 0, counter_offset,
                     int(equal))
    return (num_entries, num_tiles, num_slots, words, chunk)


def random_batch(rng):
    """(qo_indptr or None for decode, kv_page_indptr, kv_last_page_len, plan_work keywords) of a random batch:
    equal or ragged lengths, empty requests, int32 or int64, index arrays that need not start at 0."""
    batch = int(rng.integers(0, 12))
    page = int(rng.choice([1, 4, 16]))
    kv_lens = np.full(batch, rng.integers(0, 600)) if rng.random() < 0.4 else rng.integers(0, 600, batch)
    if batch and rng.random() < 0.2:
        kv_lens[rng.integers(0, batch)] = 0
    pages = -(-kv_lens // page)
    dtype = rng.choice([np.int32, np.int64])
    offset = 0 if rng.random() < 0.7 else int(rng.integers(1, 50))
    kv_indptr = (np.concatenate([[0], np.cumsum(pages)]) + offset).astype(dtype)
    last = np.where(pages > 0, kv_lens - (pages - 1) * page, 0).astype(dtype)
    qo = None
    if rng.random() >= 0.4:
        qo_lens = np.full(batch, rng.integers(0, 40)) if rng.random() < 0.5 else rng.integers(0, 40, batch)
        if rng.random() < 0.7:
            qo_lens = np.minimum(qo_lens, kv_lens)
        offset = 0 if rng.random() < 0.7 else int(rng.integers(1, 50))
        qo = (np.concatenate([[0], np.cumsum(qo_lens)]) + offset).astype(dtype)
    kwargs = dict(page_size=page, group_size=int(rng.choice([1, 2, 4, 8])), num_kv_heads=int(rng.choice([1, 2, 8])),
                  block_m=int(rng.choice([16, 32, 64])), block_n=int(rng.choice([16, 32, 64])),
                  causal=bool(rng.random() < 0.5), window_left=int(rng.choice([-1, -1, 0, 5, 100])),
                  target_ctas=int(rng.choice([1, 4, 16, 64, 528])), min_chunk=int(rng.choice([16, 128])),
                  split_size=None if rng.random() < 0.7 else int(rng.integers(1, 300)),
                  split_factor=int(rng.choice([1, 2, 4])))
    return qo, kv_indptr, last, kwargs


def test_plan_work_writes_the_reference_schedule(monkeypatch):
    paths = {name: 0 for name in ("_write_whole", "_write_uniform", "_write_split", "_equal_tiles",
                                  "_repeated_tiles")}
    for name in paths:
        def counted(*args, _original=getattr(scheduler, name), _name=name, **kwargs):
            paths[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(scheduler, name, counted)
    rng = np.random.default_rng(6)
    for case in range(1500):
        qo, kv_indptr, last, kwargs = random_batch(rng)
        kwargs["max_slots"] = None if rng.random() < 0.8 else int(rng.integers(0, 200))
        size = 1 << 16 if rng.random() < 0.9 else int(rng.integers(8, 400))
        expected_words = np.zeros(size, np.int32)
        words = np.full(size, GARBAGE, np.int32)
        qo_ref = np.arange(len(kv_indptr)) if qo is None else qo
        try:
            expected = reference_plan_work(expected_words, qo_ref, kv_indptr.copy(), last.copy(), **kwargs)
        except ValueError as error:
            with pytest.raises(ValueError, match=str(error)):
                plan_work(words, qo, kv_indptr, last, **kwargs)
            continue
        summary = plan_work(words, qo, kv_indptr, last, **kwargs)
        assert tuple(summary) == expected, f"case {case}: {kwargs}"
        differ = np.flatnonzero(words[:summary.words] != expected_words[:summary.words])
        assert not len(differ), f"case {case}: {kwargs}; words {differ[:8]} differ"
    assert all(paths.values()), f"a path was never taken: {paths}"


def tiles_of(qo, kv_indptr, last, kwargs):
    kv_len = scheduler._kv_lengths(kv_indptr, last, kwargs["page_size"])
    return scheduler._tiles(qo, kv_len, kv_indptr[:-1], kwargs["group_size"], kwargs["block_m"], kwargs["causal"],
                            kwargs["window_left"])


def test_decode_path_matches_general_path():
    rng = np.random.default_rng(7)
    for _ in range(300):
        _, kv_indptr, last, kwargs = random_batch(rng)
        if kwargs["group_size"] > kwargs["block_m"]:
            continue
        fast, general = np.full(1 << 16, GARBAGE, np.int32), np.zeros(1 << 16, np.int32)
        summary = plan_work(fast, None, kv_indptr, last, **kwargs)
        assert plan_work(general, np.arange(len(kv_indptr)), kv_indptr, last, **kwargs) == summary
        assert np.array_equal(fast[:summary.words], general[:summary.words])


@pytest.mark.parametrize("prefill", [False, True])
@pytest.mark.parametrize("windowed", [False, True])
def test_uniform_split_matches_general_split(prefill, windowed):
    """Tiles that all split into the same number of chunks: the template-based writer and the general one."""
    rng = np.random.default_rng(8)
    chunk, heads, page, qo_len = 64, 4, 16, 3 if prefill else 1
    for pieces in (2, 3, 7):
        batch = int(rng.integers(1, 9))
        if windowed:  # every span is qo_len + window_left, within ((pieces - 1) * chunk, pieces * chunk]
            window_left = pieces * chunk - 10
            kv_lens = rng.integers(window_left + qo_len, window_left + 300, batch)
        else:
            window_left = -1
            kv_lens = rng.integers((pieces - 1) * chunk + 1, pieces * chunk + 1, batch)
        pages = -(-kv_lens // page)
        kv_indptr = np.concatenate([[0], np.cumsum(pages)]).astype(np.int32)
        last = (kv_lens - (pages - 1) * page).astype(np.int32)
        qo = np.arange(batch + 1, dtype=np.int32) * qo_len if prefill else None
        tiles, _ = tiles_of(qo, kv_indptr, last, dict(page_size=page, group_size=4, block_m=16, causal=False,
                                                      window_left=window_left))
        span = tiles[5] if tiles[4] is None else tiles[5] - tiles[4]
        assert ((span > (pieces - 1) * chunk) & (span <= pieces * chunk)).all()
        uniform, general = np.full(1 << 14, GARBAGE, np.int32), np.zeros(1 << 14, np.int32)
        expected = scheduler._write_split(general, tiles, span, chunk, heads, None)
        summary = scheduler._write_uniform(uniform, tiles, pieces, chunk, heads, None)
        assert summary == expected and summary.num_entries == batch * pieces
        assert np.array_equal(uniform[:summary.words], general[:summary.words])


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("window_left", [-1, 0, 37])
def test_equal_prompts_match_repeated_tiles(causal, window_left):
    """Requests of equal query lengths: tiles broadcast from cached per-shape terms and the general repeat."""
    rng = np.random.default_rng(9)
    for _ in range(40):
        batch, qo_len, group = int(rng.integers(1, 7)), int(rng.integers(1, 90)), int(rng.choice([1, 3, 4]))
        block_m = int(rng.choice([16, 32, 64]))
        if qo_len * group <= block_m:
            continue
        kv_len = rng.integers(0, 300, batch).astype(np.int32)
        tok_base = np.arange(batch, dtype=np.int32) * qo_len + int(rng.choice([0, 5]))
        page_base = rng.integers(0, 1000, batch).astype(np.int32)
        qo = np.full(batch, qo_len, np.int32)
        fast_cols, fast_rows = scheduler._equal_tiles(tok_base, qo_len, kv_len, page_base, group, block_m, causal,
                                                      window_left)
        cols, rows = scheduler._repeated_tiles(tok_base, qo, kv_len, page_base, group, block_m, causal, window_left)
        assert np.array_equal(fast_rows, rows)
        for fast_col, col in zip(fast_cols, cols):
            assert (fast_col is None) == (col is None)
            assert col is None or np.array_equal(fast_col, col)


@pytest.mark.parametrize("kv_lens, target_ctas, equal", [
    ([4096] * 64, 132, 1),  # a decode batch of one length, whole: static hand-out
    ([4096] * 4, 132, 1),  # split into chunks that divide 4096 (1024 tokens each)
    ([4096] * 63 + [4000], 132, 0),  # one request shorter: the counter balances
    ([3000] * 4, 132, 0),  # equal requests, but the last chunk of each is shorter
])
def test_header_word_7_says_whether_every_item_is_as_long(kv_lens, target_ctas, equal):
    page = 16
    pages = -(-np.array(kv_lens) // page)
    kv_indptr = np.concatenate([[0], np.cumsum(pages)]).astype(np.int32)
    last = (np.array(kv_lens) - (pages - 1) * page).astype(np.int32)
    words = np.full(1 << 16, GARBAGE, np.int32)
    summary = plan_work(words, None, kv_indptr, last, page_size=page, group_size=4, num_kv_heads=8, block_m=16,
                        block_n=128, causal=False, window_left=-1, target_ctas=target_ctas, min_chunk=256)
    items = words[HEADER:HEADER + summary.num_entries * ITEM_FIELDS].reshape(-1, ITEM_FIELDS)
    lengths = set((items[:, 6] - items[:, 5]).tolist())
    assert words[7] == equal
    assert (len(lengths) == 1) == bool(equal)
