"""Entry point of kernelarena's Triton solution for the gqa_paged_prefill_causal definitions."""

from .solution_common import paged_attention_into


def run(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse):
    """q [total_q, Hq, D]; caches [pages, page_size, Hkv, D]; causal, queries aligned to the end of the KV."""
    paged_attention_into(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale,
                         output, lse, causal=True)
