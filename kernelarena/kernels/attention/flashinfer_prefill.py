"""FlashInfer's BatchPrefillWithPagedKVCacheWrapper as a destination-passing solution (causal paged prefill).

``run`` plans and runs on every call (one wrapper per device). ``plan`` (kernelarena's plan step, outside the
timed region) plans a wrapper of its own for one page table and returns the run alone; the wrapper goes back to
a per-device pool when that callable is dropped, so plans kept side by side never share one."""

import weakref

import torch

_WRAPPERS = {}
_FREE = {}


def _new_wrapper(device):
    import flashinfer

    workspace = torch.empty(128 << 20, dtype=torch.uint8, device=device)
    return flashinfer.BatchPrefillWithPagedKVCacheWrapper(workspace, "NHD")


def _plan(wrapper, q, k_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    wrapper.plan(qo_indptr.cpu(), kv_indptr.cpu(), kv_indices, kv_last_page_len.cpu(), q.shape[1],
                 k_cache.shape[2], q.shape[2], k_cache.shape[1], causal=True, sm_scale=float(sm_scale),
                 q_data_type=q.dtype, kv_data_type=k_cache.dtype)


def run(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse):
    """Plan causal prefill on the page table, then run into output and lse."""
    key = str(q.device)
    if key not in _WRAPPERS:
        _WRAPPERS[key] = _new_wrapper(q.device)
    wrapper = _WRAPPERS[key]
    _plan(wrapper, q, k_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale)
    wrapper.run(q, (k_cache, v_cache), out=output, lse=lse, return_lse=True)


def plan(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    """Plan a wrapper for this page table; returns a callable with run's arguments that only runs it."""
    free = _FREE.setdefault(str(q.device), [])
    wrapper = free.pop() if free else _new_wrapper(q.device)
    _plan(wrapper, q, k_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale)

    def launch(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse):
        wrapper.run(q, (k_cache, v_cache), out=output, lse=lse, return_lse=True)

    weakref.finalize(launch, free.append, wrapper)
    return launch
