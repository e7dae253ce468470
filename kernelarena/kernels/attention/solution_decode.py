"""Entry point of kernelarena's Triton solution for the gqa_paged_decode definitions (destination-passing)."""

import torch

from .solution_common import paged_attention_into


def run(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse):
    """q [batch, Hq, D]; k_cache/v_cache [pages, page_size, Hkv, D]; writes output and lse (base 2)."""
    qo_indptr = torch.arange(q.shape[0] + 1, dtype=torch.int32)
    paged_attention_into(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale,
                         output, lse, causal=False, max_qo_len=1)
