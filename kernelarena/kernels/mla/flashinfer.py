"""FlashInfer's BatchMLAPagedAttentionWrapper behind the dataset's MLA decode entry (a baseline solution).

Self-contained (torch, flashinfer): this file is the source of the dataset's FlashInfer MLA solution. ``run``
plans and runs on every call (one wrapper per device, 128 MiB workspace), so its host planning cost is part of
each call; ``plan`` (kernelarena's plan step, outside the timed region) plans a wrapper of its own for one page
table and returns the run alone, as the paged-attention wrapper solutions do. Timed with the plan inside, the
device time held the plan's own copies and small kernels and read 44.5 and 46.3 us in two runs on the H200
(2026-12-03, batch 1 over 64 tokens). lse is asked for in base 2, as the definition has it.
"""

import weakref

import flashinfer
import torch

_WRAPPERS = {}
_FREE = {}


def _new_wrapper(device):
    workspace = torch.empty(128 << 20, dtype=torch.uint8, device=device)
    return flashinfer.mla.BatchMLAPagedAttentionWrapper(workspace, backend="auto")


def _plan(wrapper, q_nope, q_pe, ckv_cache, kv_indptr, kv_indices, sm_scale):
    batch, heads, head_dim_ckv = q_nope.shape
    qo_indptr = torch.arange(batch + 1, dtype=torch.int32, device=q_nope.device)
    metadata = flashinfer.mla.MLAPlanMetadata.csr(qo_indptr, kv_indptr, kv_indices, kv_indptr[1:] - kv_indptr[:-1])
    wrapper.plan(metadata=metadata, num_heads=heads, head_dim_ckv=head_dim_ckv, head_dim_kpe=q_pe.shape[-1],
                 page_size=ckv_cache.shape[1], causal=False, sm_scale=float(sm_scale), q_data_type=q_nope.dtype,
                 kv_data_type=ckv_cache.dtype, query_layout="split", kv_cache_layout="split", lse_mode="base2")


def run(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale, output, lse):
    """Dataset entry (destination passing): plan on the page table, then run into output and lse."""
    key = str(q_nope.device)
    if key not in _WRAPPERS:
        _WRAPPERS[key] = _new_wrapper(q_nope.device)
    wrapper = _WRAPPERS[key]
    _plan(wrapper, q_nope, q_pe, ckv_cache, kv_indptr, kv_indices, sm_scale)
    wrapper.run(query=(q_nope, q_pe), kv_cache=(ckv_cache, kpe_cache), out=output, lse=lse, return_lse=True)


def plan(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale):
    """Plan a wrapper for this page table; returns a callable with run's arguments that only runs it. The wrapper
    goes back to a per-device pool when that callable is dropped, so plans kept side by side never share one."""
    free = _FREE.setdefault(str(q_nope.device), [])
    wrapper = free.pop() if free else _new_wrapper(q_nope.device)
    _plan(wrapper, q_nope, q_pe, ckv_cache, kv_indptr, kv_indices, sm_scale)

    def launch(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale, output, lse):
        wrapper.run(query=(q_nope, q_pe), kv_cache=(ckv_cache, kpe_cache), out=output, lse=lse, return_lse=True)

    weakref.finalize(launch, free.append, wrapper)
    return launch
