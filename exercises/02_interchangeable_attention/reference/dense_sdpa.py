"""Reference answer, implementation 2: PyTorch's scaled_dot_product_attention over a dense, padded K/V.

SDPA knows nothing of pages: gather each request's pages into a [batch, kv_heads, max_len, head_dim] tensor,
mask the padding, and let SDPA share each KV head with its group of query heads (enable_gqa).
"""

import torch
import torch.nn.functional as F


def run(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    """Decode attention; returns output [batch, 8, 64] (value-returning)."""
    batch, num_qo_heads, head_dim = q.shape
    page_size, num_kv_heads = k_cache.shape[1], k_cache.shape[2]
    pages_per_request = (kv_indptr[1:] - kv_indptr[:-1]).long()
    kv_lens = (pages_per_request - 1) * page_size + kv_last_page_len.long()
    max_pages = int(pages_per_request.max())
    # Page j of request b is kv_indices[kv_indptr[b] + j]; slots past a request's pages read page 0 and are
    # masked below.
    slot = kv_indptr[:-1, None].long() + torch.arange(max_pages, device=q.device)
    pages = torch.where(slot < kv_indptr[1:, None].long(), kv_indices[slot.clamp(max=kv_indices.numel() - 1)], 0)
    k = k_cache[pages].reshape(batch, max_pages * page_size, num_kv_heads, head_dim).transpose(1, 2)
    v = v_cache[pages].reshape(batch, max_pages * page_size, num_kv_heads, head_dim).transpose(1, 2)
    visible = torch.arange(max_pages * page_size, device=q.device) < kv_lens[:, None]  # [batch, max_len]
    out = F.scaled_dot_product_attention(q[:, :, None, :], k, v, attn_mask=visible[:, None, None, :],
                                         scale=float(sm_scale), enable_gqa=True)
    return out[:, :, 0, :]
