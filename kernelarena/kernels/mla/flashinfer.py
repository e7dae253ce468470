"""FlashInfer's BatchMLAPagedAttentionWrapper behind the dataset's MLA decode entry (a baseline solution).

Self-contained (torch, flashinfer): this file is the source of the dataset's FlashInfer MLA solution. The
wrapper (one per device, 128 MiB workspace) is planned on every call from the call's page table, so its host
planning cost is part of each call; lse is asked for in base 2, as the definition has it.
"""

import flashinfer
import torch

_WRAPPERS = {}


def _wrapper(device):
    if device not in _WRAPPERS:
        workspace = torch.empty(128 << 20, dtype=torch.uint8, device=device)
        _WRAPPERS[device] = flashinfer.mla.BatchMLAPagedAttentionWrapper(workspace, backend="auto")
    return _WRAPPERS[device]


def run(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale, output, lse):
    """Dataset entry (destination passing)."""
    batch, heads, head_dim_ckv = q_nope.shape
    wrapper = _wrapper(q_nope.device)
    qo_indptr = torch.arange(batch + 1, dtype=torch.int32, device=q_nope.device)
    metadata = flashinfer.mla.MLAPlanMetadata.csr(qo_indptr, kv_indptr, kv_indices, kv_indptr[1:] - kv_indptr[:-1])
    wrapper.plan(metadata=metadata, num_heads=heads, head_dim_ckv=head_dim_ckv, head_dim_kpe=q_pe.shape[-1],
                 page_size=ckv_cache.shape[1], causal=False, sm_scale=float(sm_scale), q_data_type=q_nope.dtype,
                 kv_data_type=ckv_cache.dtype, query_layout="split", kv_cache_layout="split", lse_mode="base2")
    wrapper.run(query=(q_nope, q_pe), kv_cache=(ckv_cache, kpe_cache), out=output, lse=lse, return_lse=True)
