"""Plain-PyTorch MLA paged decode, as FlashInfer-Trace's mla_paged_decode definitions define it.

Per request b, the tokens at kv_indices[kv_indptr[b]:kv_indptr[b + 1]] (page size 1): logits = (q_nope @
ckv.T + q_pe @ kpe.T) * sm_scale per head; output = softmax(logits) @ ckv (bf16); lse = log2-sum-exp of the
logits (natural logsumexp / ln 2). A request without tokens gets a zero output and lse -inf.
"""

import math

import torch


@torch.no_grad()
def run(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale):
    batch, heads, dim_ckv = q_nope.shape
    output = torch.zeros(batch, heads, dim_ckv, dtype=torch.bfloat16, device=q_nope.device)
    lse = torch.full((batch, heads), -math.inf, dtype=torch.float32, device=q_nope.device)
    ckv_all, kpe_all = ckv_cache.squeeze(1), kpe_cache.squeeze(1)
    for b in range(batch):
        tokens = kv_indices[int(kv_indptr[b]):int(kv_indptr[b + 1])].long()
        if tokens.numel() == 0:
            continue
        ckv, kpe = ckv_all[tokens].float(), kpe_all[tokens].float()
        logits = (q_nope[b].float() @ ckv.T + q_pe[b].float() @ kpe.T) * sm_scale
        lse[b] = torch.logsumexp(logits, dim=-1) / math.log(2.0)
        output[b] = (torch.softmax(logits, dim=-1) @ ckv).to(torch.bfloat16)
    return output, lse


def make_inputs(axes, device, generator):
    """A valid page table (page size 1): requests share the tokens evenly, distinct random pages."""
    batch, used, num_pages = axes["batch_size"], axes["num_kv_indices"], axes["num_pages"]
    lengths = torch.full((batch,), used // batch, dtype=torch.int32)
    lengths[: used % batch] += 1
    kv_indptr = torch.zeros(batch + 1, dtype=torch.int32)
    kv_indptr[1:] = torch.cumsum(lengths, 0)
    kv_indices = torch.randperm(num_pages, generator=generator)[:used].to(torch.int32)
    return {"kv_indptr": kv_indptr.to(device), "kv_indices": kv_indices.to(device)}
