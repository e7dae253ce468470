"""Reference answer, implementation 1: kernelarena's FlashInfer-style paged decode wrapper (plan, then run).

The wrapper already reads the definition's paged KV cache and CSR page table; the adapter only has to plan
for this call's batch and write into the definition's ``output`` (destination passing).
"""

import torch

from kernelarena.kernels.attention import BatchDecodeWithPagedKVCacheWrapper

_WRAPPERS = {}


def _wrapper(device: torch.device) -> BatchDecodeWithPagedKVCacheWrapper:
    # One workspace and wrapper per device, made once: allocating 32 MiB per call would dominate decode.
    key = str(device)
    if key not in _WRAPPERS:
        _WRAPPERS[key] = BatchDecodeWithPagedKVCacheWrapper(torch.empty(32 << 20, dtype=torch.uint8, device=device))
    return _WRAPPERS[key]


def run(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output):
    """Decode attention into ``output`` [batch, 8, 64]."""
    wrapper = _wrapper(q.device)
    # plan() schedules on the host, so it takes host copies of the batch's sizes (indptr, last page lengths).
    wrapper.plan(kv_indptr.cpu(), kv_indices, kv_last_page_len.cpu(), q.shape[1], k_cache.shape[2], q.shape[2],
                 k_cache.shape[1], q_data_type=q.dtype, sm_scale=float(sm_scale))
    wrapper.run(q, (k_cache, v_cache), out=output)
