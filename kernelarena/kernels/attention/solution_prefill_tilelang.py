"""Entry point of kernelarena's TileLang solution for the gqa_paged_prefill_causal definitions: the Hopper prefill
kernel of prefill_tilelang.py (FA3's schedule on persistent blocks), the one the prefill wrappers run by default on
sm90. ``run`` plans and launches on every call; ``plan`` (kernelarena's plan step, outside the timed region) plans
once for a page table and returns the launch alone.

The dataset embeds this file with prefill_tilelang.py and its siblings and loads them as a package, so it imports
only torch, numpy, TileLang (through prefill_tilelang) and those files. sm90 GPUs only (wgmma, TMA, setmaxnreg): on
any other device it raises, saying so. A shape's first call compiles the kernel (10-30 s) unless TileLang's cache
holds it.
"""

from __future__ import annotations

import numpy as np
import torch

from .prefill_tilelang import compiled_kernel, device_arch, kernel_shape, rows_view, supported
from .scheduler import HEADER, ITEM_FIELDS, plan_work

# prefill_hopper.TILELANG_CONFIG's tiles and options (prefill_hopper.py is not embedded: it is the Triton kernel).
BLOCK_M, BLOCK_N, STAGES = 128, 128, 2
WORK_WORDS = 1 << 20
_WORDS = np.zeros(WORK_WORDS, dtype=np.int32)  # the host side of every plan (each copies its words to the device)
_COUNTERS: dict = {}  # device -> the dynamic kernel's tile counter (zero between launches: the kernel resets it)


def _sm90(device: torch.device) -> None:
    if device.type != "cuda" or torch.cuda.get_device_capability(device)[0] != 9:
        where = device if device.type != "cuda" else torch.cuda.get_device_name(device)
        raise RuntimeError(f"kernelarena's TileLang prefill kernel runs on sm90 GPUs (H100/H200) only, not on {where}")


def _rows(k_cache, v_cache, page_size):
    """(K rows, V rows, rows a page spans): the caches as compact [rows, heads, head_dim] views."""
    strides = (k_cache.stride(0), k_cache.stride(1), k_cache.stride(2))
    k_rows, v_rows = rows_view(k_cache, strides, page_size), rows_view(v_cache, strides, page_size)
    if k_rows is None or v_rows is None or v_cache.stride() != k_cache.stride():
        raise ValueError("the TileLang prefill kernel needs K and V caches of [pages, page_size, heads, head_dim] "
                         "with the heads packed in each row and the same strides")
    return k_rows[0], v_rows[0], k_rows[1]


def plan(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    """Plan for this page table; returns a callable with run's arguments that launches the kernel."""
    device = q.device
    _sm90(device)
    num_qo_heads, head_dim = q.shape[1], q.shape[2]
    page_size, num_kv_heads = k_cache.shape[1], k_cache.shape[2]
    if not supported(head_dim, page_size, BLOCK_N, BLOCK_M, STAGES):
        raise ValueError(f"the TileLang prefill kernel does not take head_dim {head_dim} with pages of {page_size}")
    words = _WORDS
    # One item per (query tile of one head, request): never split (target_ctas=1), as the wrappers plan it.
    summary = plan_work(words, qo_indptr.cpu().numpy(), kv_indptr.cpu().numpy(), kv_last_page_len.cpu().numpy(),
                        page_size=page_size, group_size=1, num_kv_heads=num_qo_heads, block_m=BLOCK_M,
                        block_n=BLOCK_N, causal=True, window_left=-1, target_ctas=1, min_chunk=BLOCK_N)
    work = torch.from_numpy(words[: summary.words].copy()).to(device)
    header = work[:HEADER]
    items = work[HEADER:HEADER + summary.num_entries * ITEM_FIELDS].view(summary.num_entries, ITEM_FIELDS)
    counter = _COUNTERS.get(str(device))
    if counter is None:
        counter = _COUNTERS[str(device)] = torch.zeros(2, dtype=torch.int32, device=device)
    rows_per_page = _rows(k_cache, v_cache, page_size)[2]
    kernel = compiled_kernel(kernel_shape(
        num_qo_heads=num_qo_heads, num_kv_heads=num_kv_heads, head_dim=head_dim, page_size=page_size,
        rows_per_page=rows_per_page, causal=True, sm_scale=float(sm_scale), block_m=BLOCK_M, block_n=BLOCK_N,
        num_stages=STAGES, dtype=q.dtype, write_lse=True, overlap=True, pingpong=True,
        ctas=torch.cuda.get_device_properties(device).multi_processor_count, fast_math=True, dynamic=True),
        device_arch(device))

    def launch(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse):
        if not summary.num_entries:
            return
        k_rows, v_rows, rows = _rows(k_cache, v_cache, page_size)
        if rows != rows_per_page:
            raise ValueError(f"the caches' pages are {rows} rows apart here, {rows_per_page} when planned")
        indices = kv_indices if kv_indices.dtype == torch.int32 else kv_indices.int()
        kernel(q, k_rows, v_rows, indices, header, items, counter, output, lse)

    return launch


def run(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse):
    """q [total_q, Hq, D]; caches [pages, page_size, Hkv, D]; causal, queries aligned to the end of the KV."""
    plan(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale)(
        q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse)
