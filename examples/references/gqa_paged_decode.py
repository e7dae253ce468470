import math

import torch


def run(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    return plan(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale)(
        q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale)


def plan(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    """The page table read on the host once: each request's page range and length."""
    page_size = k_cache.shape[1]
    starts, lasts = kv_indptr.tolist(), kv_last_page_len.tolist()
    spans = [(starts[b], starts[b + 1], (starts[b + 1] - starts[b] - 1) * page_size + lasts[b])
             for b in range(len(lasts))]
    return lambda q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale: _attend(
        spans, q, k_cache, v_cache, kv_indices, sm_scale)


def _attend(spans, q, k_cache, v_cache, kv_indices, sm_scale):
    batch, num_qo_heads, head_dim = q.shape
    num_kv_heads = k_cache.shape[2]
    group = num_qo_heads // num_kv_heads
    output = torch.empty_like(q)
    lse = torch.empty(batch, num_qo_heads, dtype=torch.float32, device=q.device)
    for b, (first, last, length) in enumerate(spans):
        pages = kv_indices[first:last].long()
        k = k_cache[pages].reshape(-1, num_kv_heads, head_dim)[:length].to(torch.float32)
        v = v_cache[pages].reshape(-1, num_kv_heads, head_dim)[:length].to(torch.float32)
        qb = q[b].to(torch.float32).reshape(num_kv_heads, group, head_dim)
        logits = torch.einsum("hgd,nhd->hgn", qb, k) * sm_scale
        probs = torch.softmax(logits, dim=-1)
        output[b] = torch.einsum("hgn,nhd->hgd", probs, v).reshape(num_qo_heads, head_dim).to(q.dtype)
        lse[b] = (torch.logsumexp(logits, dim=-1) / math.log(2.0)).reshape(num_qo_heads)
    return output, lse


def make_inputs(axes, device, generator):
    """A valid page table: each request gets an equal share of distinct random pages, a random last page."""
    batch, used, num_pages = axes["batch_size"], axes["num_kv_indices"], axes["num_pages"]
    page_size = 16
    pages_per_request = torch.full((batch,), used // batch, dtype=torch.int32)
    pages_per_request[: used % batch] += 1
    kv_indptr = torch.zeros(batch + 1, dtype=torch.int32)
    kv_indptr[1:] = torch.cumsum(pages_per_request, 0)
    kv_indices = torch.randperm(num_pages, generator=generator)[:used].to(torch.int32)
    last = torch.randint(1, page_size + 1, (batch,), generator=generator, dtype=torch.int32)
    return {"kv_indptr": kv_indptr.to(device), "kv_indices": kv_indices.to(device),
            "kv_last_page_len": last.to(device)}
