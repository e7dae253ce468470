"""FlashInfer's BatchPrefillWithPagedKVCacheWrapper as a destination-passing solution (causal paged prefill)."""

import torch

_WRAPPERS = {}


def run(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse):
    """Plan causal prefill on the page table, then run into output and lse."""
    import flashinfer

    key = str(q.device)
    if key not in _WRAPPERS:
        workspace = torch.empty(128 << 20, dtype=torch.uint8, device=q.device)
        _WRAPPERS[key] = flashinfer.BatchPrefillWithPagedKVCacheWrapper(workspace, "NHD")
    wrapper = _WRAPPERS[key]
    wrapper.plan(qo_indptr.cpu(), kv_indptr.cpu(), kv_indices, kv_last_page_len.cpu(), q.shape[1],
                 k_cache.shape[2], q.shape[2], k_cache.shape[1], causal=True, sm_scale=float(sm_scale),
                 q_data_type=q.dtype, kv_data_type=k_cache.dtype)
    wrapper.run(q, (k_cache, v_cache), out=output, lse=lse, return_lse=True)
