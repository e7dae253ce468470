"""native_plan (scheduler.plan_work in C): every word and the summary against scheduler.plan_work on random
batches, the wrappers' output with the native planner on and off, and the fallbacks (switched off, no
compiler, inputs C does not read).

scheduler.plan_work is the specification; both planners write into buffers full of garbage and the whole
buffers are compared, so a word written by one and not the other fails, also when both raise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from test_attention_scheduler import GARBAGE, random_batch  # tests/kernels is on the path (no __init__.py)

from kernelarena.kernels.attention import (
    BatchDecodeWithPagedKVCacheWrapper,
    BatchPrefillWithPagedKVCacheWrapper,
    allocate_paged_kv_cache,
    build_page_table,
    native_plan,
    scheduler,
    small_decode,
)
from kernelarena.kernels.attention.runner import AttentionRunner
from kernelarena.kernels.attention.scheduler import RAGGED_PAGE_SIZE

needs_native = pytest.mark.skipif(not native_plan.available(),
                                  reason=f"native planner unavailable: {native_plan.unavailable_reason()}")


def wide_batch(rng):
    """(qo_indptr or None, kv_page_indptr, kv_last_page_len, plan_work keywords, buffer words) of a random batch
    wider than random_batch's: batches up to 300, the GPU tile sizes, ragged pages, mixed int32/int64 arrays."""
    batch = int(rng.choice([0, 1, 2, 5, 17, 64, 300]))
    page = int(rng.choice([1, 16, RAGGED_PAGE_SIZE]))
    kv_lens = np.full(batch, rng.integers(0, 3000)) if rng.random() < 0.4 else rng.integers(0, 3000, batch)
    if batch and rng.random() < 0.3:
        kv_lens[rng.integers(0, batch, max(batch // 4, 1))] = 0
    pages = (kv_lens > 0).astype(np.int64) if page == RAGGED_PAGE_SIZE else -(-kv_lens // page)
    last = np.where(pages > 0, kv_lens - (pages - 1) * page, 0)
    offset = 0 if rng.random() < 0.7 else int(rng.integers(1, 1000))
    kv_indptr = np.concatenate([[0], np.cumsum(pages)]) + offset
    qo = None
    if rng.random() >= 0.3:
        most = 300 if batch <= 17 else 40
        kind = rng.random()
        if kind < 0.2:
            qo_lens = np.ones(batch, np.int64)
        elif kind < 0.5:
            qo_lens = np.full(batch, rng.integers(0, most))
        else:
            qo_lens = rng.integers(0, most, batch)
            if batch and rng.random() < 0.3:
                qo_lens[rng.integers(0, batch)] = 0
        if rng.random() < 0.5:
            qo_lens = np.minimum(qo_lens, kv_lens)
        qo = np.concatenate([[0], np.cumsum(qo_lens)]) + (0 if rng.random() < 0.7 else int(rng.integers(1, 1000)))
        qo = qo.astype(rng.choice([np.int32, np.int64]))
    kv_indptr, last = (a.astype(rng.choice([np.int32, np.int64])) for a in (kv_indptr, last))
    kwargs = dict(page_size=page, group_size=int(rng.integers(1, 9)), num_kv_heads=int(rng.choice([1, 2, 4, 8])),
                  block_m=int(rng.choice([16, 64, 128])), block_n=int(rng.choice([32, 64, 128])),
                  causal=bool(rng.random() < 0.6), window_left=int(rng.choice([-1, -1, 0, rng.integers(1, 700)])),
                  target_ctas=int(rng.choice([1, 8, 132, 264, 1056])), min_chunk=int(rng.choice([16, 128, 256])),
                  split_size=None if rng.random() < 0.75 else int(rng.integers(1, 1200)),
                  max_slots=None if rng.random() < 0.6 else int(rng.integers(0, 400)),
                  split_factor=int(rng.choice([1, 2])))
    words = 1 << 19 if rng.random() < 0.85 else int(rng.integers(8, 6000))
    return qo, kv_indptr, last, kwargs, words


def planned(plan, words, qo, kv_indptr, last, kwargs):
    """(summary or the ValueError's text, the whole buffer) of one planner on a garbage-filled buffer."""
    out = np.full(words, GARBAGE, np.int32)
    try:
        return plan(out, qo, kv_indptr, last, **kwargs), out
    except ValueError as error:
        return f"ValueError: {error}", out


def assert_same_plan(qo, kv_indptr, last, kwargs, words, native_inputs=None):
    """The native planner (given native_inputs, else the same arrays) against scheduler.plan_work."""
    expected, expected_words = planned(scheduler.plan_work, words, qo, kv_indptr, last, kwargs)
    summary, got_words = planned(native_plan.plan_work, words, *(native_inputs or (qo, kv_indptr, last)), kwargs)
    assert summary == expected, kwargs
    differ = np.flatnonzero(got_words != expected_words)
    assert not len(differ), f"{kwargs}: words {differ[:8]} differ (of {len(differ)})"
    return expected


@needs_native
def test_native_writes_plan_works_words_on_small_batches():
    rng = np.random.default_rng(60)
    for _ in range(1500):
        qo, kv_indptr, last, kwargs = random_batch(rng)
        kwargs["max_slots"] = None if rng.random() < 0.8 else int(rng.integers(0, 200))
        assert_same_plan(qo, kv_indptr, last, kwargs, 1 << 14 if rng.random() < 0.9 else int(rng.integers(8, 400)))


@needs_native
def test_native_writes_plan_works_words_on_wide_batches():
    rng = np.random.default_rng(61)
    outcomes = {"whole": 0, "split": 0, "words": 0, "slots": 0}
    for case in range(1500):
        qo, kv_indptr, last, kwargs, words = wide_batch(rng)
        tensors = None
        if case % 3 == 0:  # CPU tensors, read in place as numpy arrays are
            tensors = tuple(None if a is None else torch.from_numpy(a) for a in (qo, kv_indptr, last))
        expected = assert_same_plan(qo, kv_indptr, last, kwargs, words, tensors)
        if isinstance(expected, str):
            outcomes["slots" if "slots" in expected else "words"] += 1
        else:
            outcomes["split" if expected.num_groups else "whole"] += 1
    assert min(outcomes.values()) >= 20, outcomes


@needs_native
@pytest.mark.parametrize("window_left", [-1, 0, 37, 300])
@pytest.mark.parametrize("equal", [False, True])
def test_causal_order_of_many_tiles(window_left, equal):
    """The causal list order (most KV first, then tok_base, then longest span, ties in tile order) on batches
    whose spans tie (more queries than keys clamp spans to 0 and to kv_len) and whose requests need sorting."""
    rng = np.random.default_rng(62 + window_left)
    for _ in range(40):
        batch = int(rng.integers(2, 40))
        kv_lens = np.full(batch, rng.integers(0, 2000)) if equal else rng.integers(0, 2000, batch)
        qo_lens = rng.integers(0, 700, batch)
        kv_indptr = np.concatenate([[0], np.cumsum(-(-kv_lens // 16))]).astype(np.int32)
        last = np.where(kv_lens > 0, kv_lens - (-(-kv_lens // 16) - 1) * 16, 0).astype(np.int32)
        qo = np.concatenate([[0], np.cumsum(qo_lens)]).astype(np.int32)
        kwargs = dict(page_size=16, group_size=int(rng.choice([1, 4, 8])), num_kv_heads=8, block_m=128, block_n=64,
                      causal=True, window_left=window_left, target_ctas=int(rng.choice([1, 264])), min_chunk=256,
                      split_size=None if rng.random() < 0.5 else 256)
        assert_same_plan(qo, kv_indptr, last, kwargs, 1 << 19)


@needs_native
def test_inputs_c_does_not_read_go_through_numpy(monkeypatch):
    calls = []
    numpy_plan_work = scheduler.plan_work
    monkeypatch.setattr(scheduler, "plan_work", lambda *a, **k: calls.append(1) or numpy_plan_work(*a, **k))
    kv_lens = np.array([40, 0, 300, 17])
    pages = -(-kv_lens // 16)
    kv_indptr = np.concatenate([[0], np.cumsum(pages)]).astype(np.int32)
    last = np.where(pages > 0, kv_lens - (pages - 1) * 16, 0).astype(np.int32)
    kwargs = dict(page_size=16, group_size=4, num_kv_heads=2, block_m=16, block_n=32, causal=False, window_left=-1,
                  target_ctas=64, min_chunk=16)
    expected_words = np.full(4096, GARBAGE, np.int32)
    expected = numpy_plan_work(expected_words, None, kv_indptr, last, **kwargs)
    strided = (np.repeat(kv_indptr, 2)[::2], torch.from_numpy(np.repeat(last, 2))[::2])
    read_only = kv_indptr.copy()
    read_only.flags.writeable = False
    for inputs, falls_back in (((kv_indptr, last), False), ((read_only, torch.from_numpy(last)), False),
                               ((strided[0], last), True), ((kv_indptr, strided[1]), True),
                               ((kv_indptr.astype(np.int16), last), True), ((kv_indptr, last.astype(np.uint32)), True)):
        calls.clear()
        words = np.full(4096, GARBAGE, np.int32)
        assert native_plan.NativePlanner()(words, None, *inputs, **kwargs) == expected
        assert np.array_equal(words, expected_words)
        assert len(calls) == falls_back


# ------------------------------------------------------------------------------------------ the wrappers
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # the wrappers' kernels: the GPU, else the interpreter
PORTABLE_PREFILL = True  # prefill here tests the portable kernel, also on sm90 (tests/kernels/conftest.py)


def paged_inputs(kv_lens, page_size, hkv, d, seed):
    """Host page table (the native planner reads host index arrays) and a cache on DEVICE."""
    gen = torch.Generator().manual_seed(seed)
    num_pages = sum(-(-n // page_size) for n in kv_lens) + 2
    table = build_page_table(kv_lens, page_size, num_pages=num_pages, shuffle=True, generator=gen)
    cache = allocate_paged_kv_cache(num_pages, page_size, hkv, d, dtype=torch.bfloat16)
    cache.copy_(torch.randn(cache.shape, generator=gen).to(torch.bfloat16))
    return table, cache.to(DEVICE)


def on_and_off(wrapper, plan, run):
    """(output, words) with the native planner, then with scheduler.plan_work, from the same wrapper (the
    Triton path's planners: the CUDA small-batch decode kernel, which plans without them, is switched off)."""
    results = []
    for enabled in (True, False):
        native_plan.enabled, small_decode.enabled = enabled, False
        try:
            plan()
        finally:
            native_plan.enabled = small_decode.enabled = True
        runner = wrapper._runner
        results.append((run(), runner._work[: runner.summary.words].clone(), runner.summary))
    return results


@needs_native
def test_decode_wrapper_output_is_the_same_with_and_without_native_plan():
    kv_lens, hq, hkv, d, page = [300, 1, 0, 140], 8, 2, 64, 4  # split into 128-token chunks on any device
    table, cache = paged_inputs(kv_lens, page, hkv, d, seed=3)
    q = torch.randn(len(kv_lens), hq, d, generator=torch.Generator().manual_seed(4)).to(torch.bfloat16).to(DEVICE)
    wrapper = BatchDecodeWithPagedKVCacheWrapper(torch.empty(8 << 20, dtype=torch.uint8, device=DEVICE))
    assert wrapper._runner._native is not None
    indices = table.kv_indices.to(DEVICE)
    (native_out, native_words, native_summary), (numpy_out, numpy_words, numpy_summary) = on_and_off(
        wrapper, lambda: wrapper.plan(table.kv_indptr, indices, table.kv_last_page_len, hq, hkv, d, page,
                                      kv_chunk_size=128),
        lambda: wrapper.run(q, cache))
    assert native_summary == numpy_summary and native_summary.num_groups > 0
    assert torch.equal(native_words, numpy_words)
    assert torch.equal(native_out, numpy_out)


@needs_native
def test_prefill_wrapper_output_is_the_same_with_and_without_native_plan():
    qo_lens, kv_lens, hq, hkv, d, page = [3, 0, 9, 20], [5, 0, 17, 33], 4, 2, 64, 4
    table, cache = paged_inputs(kv_lens, page, hkv, d, seed=5)
    qo = torch.tensor([0, *np.cumsum(qo_lens)], dtype=torch.int64)  # int64 and int32 arrays in one batch
    q = torch.randn(int(qo[-1]), hq, d, generator=torch.Generator().manual_seed(6)).to(torch.bfloat16).to(DEVICE)
    wrapper = BatchPrefillWithPagedKVCacheWrapper(torch.empty(8 << 20, dtype=torch.uint8, device=DEVICE), num_sms=1)
    indices = table.kv_indices.to(DEVICE)
    (native_out, native_words, native_summary), (numpy_out, numpy_words, numpy_summary) = on_and_off(
        wrapper, lambda: wrapper.plan(qo, table.kv_indptr, indices, table.kv_last_page_len, hq, hkv, d,
                                      page, causal=True, window_left=11),
        lambda: wrapper.run(q, cache))
    assert native_summary == numpy_summary
    assert torch.equal(native_words, numpy_words)
    assert torch.equal(native_out, numpy_out)


# ------------------------------------------------------------------------------------------ fallbacks
@pytest.fixture
def fresh_library(monkeypatch, tmp_path):
    """A build cache of its own, and the library looked up again (and once more after the test)."""
    monkeypatch.setenv("KERNELARENA_CACHE_DIR", str(tmp_path / "cache"))
    native_plan._library.cache_clear()
    yield tmp_path / "cache"
    monkeypatch.undo()
    native_plan._library.cache_clear()


def test_without_a_compiler_plan_uses_numpy(fresh_library, monkeypatch):
    monkeypatch.setenv("PATH", str(fresh_library))  # no cc, no gcc
    assert native_plan.unavailable_reason() == "no C compiler (cc or gcc) on PATH"
    assert native_plan.planner() is None
    runner = AttentionRunner(torch.empty(1 << 20, dtype=torch.uint8), num_sms=2)
    assert runner._native is None
    table = build_page_table([5, 17], 4)
    runner.plan(None, table.kv_indptr, table.kv_last_page_len, table.kv_indices, num_qo_heads=4, num_kv_heads=2,
                head_dim=64, page_size=4, causal=False, window_left=-1, logits_soft_cap=None, sm_scale=None,
                q_dtype=torch.bfloat16, kv_dtype=None, kv_chunk_size=16)
    assert runner.summary.num_groups == 2


@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler (cc or gcc)")
def test_build_lands_in_the_cache_whole(fresh_library):
    assert native_plan.available()
    library = native_plan.library_path()
    assert library.parent.parent == fresh_library / "native_plan" and library.is_file()
    assert [p.name for p in library.parent.iterdir()] == ["native_plan.so"]  # no temporary left behind


def test_switched_off_by_the_environment_plan_uses_numpy(tmp_path):
    program = textwrap.dedent("""
        import torch
        from kernelarena.kernels.attention import BatchDecodeWithPagedKVCacheWrapper, build_page_table, native_plan

        assert not native_plan.enabled and not native_plan.available()
        wrapper = BatchDecodeWithPagedKVCacheWrapper(torch.empty(1 << 20, dtype=torch.uint8), num_sms=2)
        table = build_page_table([5, 17], 4)
        wrapper.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 4, 2, 64, 4, kv_chunk_size=16)
        print(wrapper._runner._native, wrapper._runner.summary.num_groups, native_plan.unavailable_reason())
    """)
    env = {"KERNELARENA_NATIVE_PLAN": "0", "KERNELARENA_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    if "PYTHONPATH" in os.environ:  # where the package comes from a path, not an install (the GPU machine)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    child = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    assert child.stdout.split()[:3] == ["None", "2", "disabled"]
    assert not (tmp_path / "cache" / "native_plan").exists()  # nothing was built
