"""Entry point of kernelarena's Triton solution for the gqa_paged_decode definitions (destination-passing).

``run`` plans and launches on every call; ``plan`` (kernelarena's plan step, outside the timed region) plans
once for a page table and returns the launch alone."""

import torch

from .solution_common import launch_planned, paged_attention_into, plan_paged_attention


def run(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse):
    """q [batch, Hq, D]; k_cache/v_cache [pages, page_size, Hkv, D]; writes output and lse (base 2)."""
    qo_indptr = torch.arange(q.shape[0] + 1, dtype=torch.int32)
    paged_attention_into(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale,
                         output, lse, causal=False, max_qo_len=1)


def plan(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    """Plan for this page table; returns a callable with run's arguments that launches the kernel."""
    qo_indptr = torch.arange(q.shape[0] + 1, dtype=torch.int32)
    planned = plan_paged_attention(q, k_cache, qo_indptr, kv_indptr, kv_last_page_len, causal=False,
                                   max_qo_len=1, own_work=True)

    def launch(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse):
        launch_planned(planned, q, k_cache, v_cache, kv_indices, sm_scale, output, lse)

    return launch
