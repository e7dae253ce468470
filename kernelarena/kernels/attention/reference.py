"""Plain PyTorch reference for batch attention over a paged KV cache (float64, one request at a time).

Semantics follow FlashInfer: query i of a request with qo_len queries and kv_len keys sits at KV position
i + kv_len - qo_len; causal keeps keys at positions <= that, a sliding window (window_left >= 0) keeps
keys at positions >= that - window_left; logits are sm_scale * q.k, soft-capped as
cap * tanh(logits / cap) when cap > 0; lse is log2(sum(exp(logits))). A query that sees no key gets
output 0 and lse -inf.

Self-contained (torch only): the dataset's reference solutions embed this file verbatim.
"""

from __future__ import annotations

import math
from typing import Optional

import torch


def gather_request_kv(
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    kv_indptr: torch.Tensor,
    kv_indices: torch.Tensor,
    kv_last_page_len: torch.Tensor,
    request: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """K and V of one request, [kv_len, num_kv_heads, head_dim], from NHD caches [pages, page, heads, dim]."""
    page_size = k_cache.shape[1]
    first, last = int(kv_indptr[request]), int(kv_indptr[request + 1])
    pages = kv_indices[first:last].long()
    kv_len = (last - first - 1) * page_size + int(kv_last_page_len[request]) if last > first else 0
    k = k_cache[pages].reshape(-1, *k_cache.shape[2:])[:kv_len]
    v = v_cache[pages].reshape(-1, *v_cache.shape[2:])[:kv_len]
    return k, v


def attention_one_request(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    sm_scale: float,
    logits_soft_cap: float = 0.0,
    window_left: int = -1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """q [qo_len, Hq, D], k/v [kv_len, Hkv, D] -> (out [qo_len, Hq, D] float64, lse [qo_len, Hq] float64)."""
    qo_len, num_qo_heads, head_dim = q.shape
    kv_len = k.shape[0]
    if kv_len == 0:
        return (torch.zeros(qo_len, num_qo_heads, head_dim, dtype=torch.float64, device=q.device),
                torch.full((qo_len, num_qo_heads), -math.inf, dtype=torch.float64, device=q.device))
    group = num_qo_heads // k.shape[1]
    k = k.double().repeat_interleave(group, dim=1)
    v = v.double().repeat_interleave(group, dim=1)
    logits = torch.einsum("qhd,khd->hqk", q.double(), k) * sm_scale
    if logits_soft_cap > 0:
        logits = logits_soft_cap * torch.tanh(logits / logits_soft_cap)
    q_pos = torch.arange(qo_len, device=q.device)[:, None] + (kv_len - qo_len)
    k_pos = torch.arange(kv_len, device=q.device)[None, :]
    keep = torch.ones(qo_len, kv_len, dtype=torch.bool, device=q.device)
    if causal:
        keep &= k_pos <= q_pos
    if window_left >= 0:
        keep &= k_pos >= q_pos - window_left
    logits = logits.masked_fill(~keep, -math.inf)
    lse = torch.logsumexp(logits, dim=-1)  # [Hq, qo_len]; -inf where nothing is visible
    probs = torch.exp(logits - torch.where(torch.isinf(lse), 0.0, lse)[..., None])
    out = torch.einsum("hqk,khd->qhd", probs, v)
    return out, (lse / math.log(2.0)).transpose(0, 1)


def batch_attention_reference(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    qo_indptr: torch.Tensor,
    kv_indptr: torch.Tensor,
    kv_indices: torch.Tensor,
    kv_last_page_len: torch.Tensor,
    *,
    causal: bool = False,
    sm_scale: Optional[float] = None,
    logits_soft_cap: float = 0.0,
    window_left: int = -1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention of every request over its pages; k_cache/v_cache NHD [pages, page_size, Hkv, D].

    Returns (out [total_q, Hq, D] float64, lse [total_q, Hq] float64, base 2).
    """
    sm_scale = 1.0 / math.sqrt(q.shape[-1]) if sm_scale is None else sm_scale
    out = torch.zeros(q.shape, dtype=torch.float64, device=q.device)
    lse = torch.full(q.shape[:2], -math.inf, dtype=torch.float64, device=q.device)
    for b in range(len(kv_indptr) - 1):
        q0, q1 = int(qo_indptr[b]), int(qo_indptr[b + 1])
        k, v = gather_request_kv(k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, b)
        out[q0:q1], lse[q0:q1] = attention_one_request(
            q[q0:q1], k, v, causal=causal, sm_scale=sm_scale, logits_soft_cap=logits_soft_cap,
            window_left=window_left)
    return out, lse


def ragged_attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    qo_indptr: torch.Tensor,
    kv_indptr: torch.Tensor,
    **options,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention with contiguous per-request K/V: k, v [total_kv, Hkv, D] split by kv_indptr (tokens)."""
    sm_scale = options.pop("sm_scale", None)
    sm_scale = 1.0 / math.sqrt(q.shape[-1]) if sm_scale is None else sm_scale
    out = torch.zeros(q.shape, dtype=torch.float64, device=q.device)
    lse = torch.full(q.shape[:2], -math.inf, dtype=torch.float64, device=q.device)
    for b in range(len(kv_indptr) - 1):
        q0, q1 = int(qo_indptr[b]), int(qo_indptr[b + 1])
        k0, k1 = int(kv_indptr[b]), int(kv_indptr[b + 1])
        out[q0:q1], lse[q0:q1] = attention_one_request(q[q0:q1], k[k0:k1], v[k0:k1], sm_scale=sm_scale, **options)
    return out, lse


def run_decode(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse):
    """Destination-passing reference for the gqa_paged_decode definitions (one query token per request)."""
    qo_indptr = torch.arange(q.shape[0] + 1)  # on the host: reading it needs no device synchronization
    out, lse_ref = batch_attention_reference(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices,
                                             kv_last_page_len, causal=False, sm_scale=float(sm_scale))
    output.copy_(out.to(output.dtype))
    lse.copy_(lse_ref.to(lse.dtype))


def run_prefill_causal(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale,
                       output, lse):
    """Destination-passing reference for the gqa_paged_prefill_causal definitions."""
    out, lse_ref = batch_attention_reference(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices,
                                             kv_last_page_len, causal=True, sm_scale=float(sm_scale))
    output.copy_(out.to(output.dtype))
    lse.copy_(lse_ref.to(lse.dtype))


def plan_decode(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    """kernelarena's plan step for run_decode: the page table's pointers copied to the host once, so the calls
    that follow read them without a device synchronization per request."""
    kv_indptr_host, last_host = kv_indptr.cpu(), kv_last_page_len.cpu()

    def planned(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse):
        run_decode(q, k_cache, v_cache, kv_indptr_host, kv_indices, last_host, sm_scale, output, lse)

    return planned


def plan_prefill_causal(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    """kernelarena's plan step for run_prefill_causal: the page table's pointers copied to the host once."""
    qo_host, kv_indptr_host, last_host = qo_indptr.cpu(), kv_indptr.cpu(), kv_last_page_len.cpu()

    def planned(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse):
        run_prefill_causal(q, k_cache, v_cache, qo_host, kv_indptr_host, kv_indices, last_host, sm_scale, output,
                           lse)

    return planned
