"""Your answer, implementation 2: torch.nn.functional.scaled_dot_product_attention behind the definition.

SDPA takes dense tensors: q [batch, heads, 1, dim] and k/v [batch, kv_heads, max_len, dim]. Gather each
request's pages (kv_indices[kv_indptr[b]:kv_indptr[b+1]]) out of k_cache/v_cache into that shape, mask the
positions past each request's length (the last page holds kv_last_page_len[b] tokens), and pass
scale=sm_scale and enable_gqa=True (8 query heads share 2 KV heads).

Grade with: kernelarena exercise check exercises/02_interchangeable_attention
"""

import torch
import torch.nn.functional as F


def run(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    """Value-returning: return decode attention output [batch, 8, 64] (bf16, like q)."""
    # TODO: gather pages into padded K/V, build the mask, call F.scaled_dot_product_attention, return [batch, 8, 64].
    raise NotImplementedError("dense_sdpa.py is not done yet: gather the pages and call "
                              "F.scaled_dot_product_attention (see its docstring)")
