import math

import torch


def run(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    return plan(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale)(
        q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale)


def plan(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    """The page table read on the host once: each request's query range, page range and KV length."""
    page_size = k_cache.shape[1]
    q_starts, starts, lasts = qo_indptr.tolist(), kv_indptr.tolist(), kv_last_page_len.tolist()
    spans = [(q_starts[b], q_starts[b + 1], starts[b], starts[b + 1],
              (starts[b + 1] - starts[b] - 1) * page_size + lasts[b]) for b in range(len(lasts))]
    return lambda q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale: _attend(
        spans, q, k_cache, v_cache, kv_indices, sm_scale)


def _attend(spans, q, k_cache, v_cache, kv_indices, sm_scale):
    total_q, num_qo_heads, head_dim = q.shape
    num_kv_heads = k_cache.shape[2]
    group = num_qo_heads // num_kv_heads
    output = torch.empty_like(q)
    lse = torch.empty(total_q, num_qo_heads, dtype=torch.float32, device=q.device)
    for q_start, q_end, first, last, length in spans:
        pages = kv_indices[first:last].long()
        k = k_cache[pages].reshape(-1, num_kv_heads, head_dim)[:length].to(torch.float32)
        v = v_cache[pages].reshape(-1, num_kv_heads, head_dim)[:length].to(torch.float32)
        qb = q[q_start:q_end].to(torch.float32).reshape(-1, num_kv_heads, group, head_dim)
        logits = torch.einsum("thgd,nhd->thgn", qb, k) * sm_scale
        # Causal, with the queries aligned to the end of the sequence: query t sits at position
        # length - q_len + t and sees keys at positions up to it.
        q_pos = torch.arange(q_end - q_start, device=q.device) + (length - (q_end - q_start))
        visible = torch.arange(length, device=q.device)[None, :] <= q_pos[:, None]
        logits = logits.masked_fill(~visible[:, None, None, :], float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        out = torch.einsum("thgn,nhd->thgd", probs, v)
        output[q_start:q_end] = out.reshape(-1, num_qo_heads, head_dim).to(q.dtype)
        lse[q_start:q_end] = (torch.logsumexp(logits, dim=-1) / math.log(2.0)).reshape(-1, num_qo_heads)
    return output, lse


def make_inputs(axes, device, generator):
    """Query lengths split total_q evenly; each request gets an equal share of distinct random pages and
    at least as many keys as queries, so that every causal query sees at least one key."""
    batch, total_q = axes["batch_size"], axes["total_q"]
    used, num_pages, page_size = axes["num_kv_indices"], axes["num_pages"], 16
    q_lens = torch.full((batch,), total_q // batch, dtype=torch.int32)
    q_lens[: total_q % batch] += 1
    pages = torch.full((batch,), used // batch, dtype=torch.int32)
    pages[: used % batch] += 1
    last = torch.randint(1, page_size + 1, (batch,), generator=generator, dtype=torch.int32)
    too_short = (pages - 1) * page_size + last < q_lens
    last[too_short] = page_size
    if bool(((pages - 1) * page_size + last < q_lens).any()):
        raise ValueError("workload has fewer keys than queries in some request: raise num_kv_indices")
    qo_indptr = torch.zeros(batch + 1, dtype=torch.int32)
    qo_indptr[1:] = torch.cumsum(q_lens, 0)
    kv_indptr = torch.zeros(batch + 1, dtype=torch.int32)
    kv_indptr[1:] = torch.cumsum(pages, 0)
    kv_indices = torch.randperm(num_pages, generator=generator)[:used].to(torch.int32)
    return {"qo_indptr": qo_indptr.to(device), "kv_indptr": kv_indptr.to(device),
            "kv_indices": kv_indices.to(device), "kv_last_page_len": last.to(device)}
