"""Your answer, implementation 1: kernelarena's FlashInfer-style paged decode wrapper behind the definition.

    from kernelarena.kernels.attention import BatchDecodeWithPagedKVCacheWrapper
    wrapper = BatchDecodeWithPagedKVCacheWrapper(torch.empty(32 << 20, dtype=torch.uint8, device=q.device))
    wrapper.plan(indptr, indices, last_page_len, num_qo_heads, num_kv_heads, head_dim, page_size,
                 q_data_type=..., sm_scale=...)        # indptr and last_page_len as CPU tensors
    wrapper.run(q, (k_cache, v_cache), out=output)

Grade with: kernelarena exercise check exercises/02_interchangeable_attention
"""

import torch


def run(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output):
    """Destination passing: write decode attention into ``output`` [batch, 8, 64]."""
    # TODO: make one wrapper per device (keep it in a module-level dict), plan for this batch, run into output.
    raise NotImplementedError("paged_decode.py is not done yet: plan and run BatchDecodeWithPagedKVCacheWrapper "
                              "into output (see its docstring)")
