"""Your answer, the model side: the serving code's attention call. It works today (a plain PyTorch loop).

TODO: let apply() route it. Decorate decode_attention with @kernelarena.apply("<the definition's name>"):
the body below then becomes the fallback, and with apply enabled each call goes to the faster of your two
implementations at that call's shapes. The grader calls decode_attention with apply enabled over your
benchmarked solutions, checks which implementation each call reached, then excludes it and checks that
the other one takes over.
"""

import torch


def decode_attention(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    """One request at a time, in float32."""
    page_size, num_kv_heads, head_dim = k_cache.shape[1], k_cache.shape[2], k_cache.shape[3]
    group = q.shape[1] // num_kv_heads
    output = torch.empty_like(q)
    for b in range(q.shape[0]):
        pages = kv_indices[int(kv_indptr[b]):int(kv_indptr[b + 1])].long()
        length = (len(pages) - 1) * page_size + int(kv_last_page_len[b])
        k = k_cache[pages].reshape(-1, num_kv_heads, head_dim)[:length].float()
        v = v_cache[pages].reshape(-1, num_kv_heads, head_dim)[:length].float()
        qb = q[b].float().reshape(num_kv_heads, group, head_dim)
        probs = torch.softmax(torch.einsum("hgd,nhd->hgn", qb, k) * sm_scale, dim=-1)
        output[b] = torch.einsum("hgn,nhd->hgd", probs, v).reshape(q.shape[1], head_dim).to(q.dtype)
    return output
