"""The paged KV cache and the attention backends of the serving loop.

``PagedKVCache`` gives request r the pages [r * pages_per_request, (r + 1) * pages_per_request) of a per-layer
NHD cache ([num_pages, page_size, Hkv, D] for K and for V) and builds the CSR page table of a step.
``FlashInferAttention`` plans FlashInfer's wrappers once per step (all layers share the plan) and runs them per
layer, as SGLang's FlashInfer backend does; under an installed integration those wrappers are kernelarena's
routes. ``TorchAttention`` stands in where FlashInfer cannot run (a CPU): same cache, PyTorch reference math.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import torch

from ..kernels.attention.reference import batch_attention_reference


@dataclass
class StepTable:
    """One step's batch: CSR page table (host int32), query offsets, and the cache slot of each new token."""

    qo_indptr: torch.Tensor
    kv_indptr: torch.Tensor
    kv_indices: torch.Tensor
    kv_last_page_len: torch.Tensor
    slots: torch.Tensor
    """Flat cache slot (page * page_size + offset) of each new token, on the cache's device."""
    decode: bool


class PagedKVCache:
    """Per-layer K and V caches and the page bookkeeping of a fixed batch of requests."""

    def __init__(self, num_layers: int, batch: int, max_tokens: int, num_kv_heads: int, head_dim: int, *,
                 page_size: int = 16, dtype=torch.bfloat16, device="cpu"):
        self.page_size = page_size
        self.pages_per_request = -(-max_tokens // page_size)
        self.num_pages = batch * self.pages_per_request
        self.batch = batch
        shape = (self.num_pages, page_size, num_kv_heads, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.device = torch.device(device)

    def table(self, kv_lens: List[int], new_tokens: List[int]) -> StepTable:
        """The page table after appending ``new_tokens[r]`` tokens to request r (now ``kv_lens[r]`` long)."""
        p, ppr = self.page_size, self.pages_per_request
        if max(kv_lens) > ppr * p:
            raise ValueError(f"a request of {max(kv_lens)} tokens exceeds the cache's {ppr * p} per request")
        pages = [-(-n // p) for n in kv_lens]
        kv_indptr = torch.tensor([0] + pages, dtype=torch.int32).cumsum(0, dtype=torch.int32)
        kv_indices = torch.cat([torch.arange(r * ppr, r * ppr + n, dtype=torch.int32) for r, n in enumerate(pages)])
        last = torch.tensor([(n - 1) % p + 1 for n in kv_lens], dtype=torch.int32)
        qo_indptr = torch.tensor([0] + new_tokens, dtype=torch.int32).cumsum(0, dtype=torch.int32)
        slots = torch.cat([r * ppr * p + torch.arange(n - m, n) for r, (n, m) in enumerate(zip(kv_lens, new_tokens))])
        return StepTable(qo_indptr, kv_indptr, kv_indices, last, slots.to(self.device),
                         all(m == 1 for m in new_tokens))

    def append(self, layer: int, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        self.k[layer].view(-1, *k.shape[1:])[slots] = k
        self.v[layer].view(-1, *v.shape[1:])[slots] = v


class TorchAttention:
    """Attention by the PyTorch reference (float64), for machines where FlashInfer cannot run."""

    def __init__(self, cache: PagedKVCache):
        self.cache = cache
        self.step: Optional[StepTable] = None
        self.slots: Optional[torch.Tensor] = None

    def plan(self, step: StepTable) -> None:
        self.step, self.slots = step, step.slots

    def append_kv(self, layer, k, v):
        self.cache.append(layer, self.slots, k, v)

    def attend(self, layer, q):
        s = self.step
        out, _ = batch_attention_reference(q, self.cache.k[layer], self.cache.v[layer], s.qo_indptr, s.kv_indptr,
                                           s.kv_indices, s.kv_last_page_len, causal=True)
        return out.to(q.dtype)


class FlashInferAttention:
    """FlashInfer's paged prefill and decode wrappers, planned once per step and run per layer.

    ``use_cuda_graph``: the decode wrapper gets fixed page-table buffers (FlashInfer's CUDA-graph mode) and
    the slot tensor is a fixed buffer, so a captured decode step replays after each plan().
    """

    def __init__(self, cache: PagedKVCache, num_heads: int, num_kv_heads: int, head_dim: int, *,
                 use_cuda_graph: bool = False, workspace_bytes: int = 256 << 20):
        import flashinfer

        self.cache, self.heads = cache, (num_heads, num_kv_heads, head_dim)
        device = cache.device
        self.workspace = torch.empty(workspace_bytes, dtype=torch.uint8, device=device)
        self.prefill = flashinfer.BatchPrefillWithPagedKVCacheWrapper(self.workspace, "NHD")
        if use_cuda_graph:
            b = cache.batch
            self.decode = flashinfer.BatchDecodeWithPagedKVCacheWrapper(
                self.workspace, "NHD", use_cuda_graph=True,
                paged_kv_indptr_buffer=torch.zeros(b + 1, dtype=torch.int32, device=device),
                paged_kv_indices_buffer=torch.zeros(cache.num_pages, dtype=torch.int32, device=device),
                paged_kv_last_page_len_buffer=torch.zeros(b, dtype=torch.int32, device=device))
        else:
            self.decode = flashinfer.BatchDecodeWithPagedKVCacheWrapper(self.workspace, "NHD")
        self.slots = torch.zeros(cache.batch, dtype=torch.int64, device=device)
        self.wrapper = None

    def plan(self, step: StepTable) -> None:
        hq, hkv, d = self.heads
        p = self.cache.page_size
        dtype = self.cache.k[0].dtype
        if step.decode:
            self.decode.plan(step.kv_indptr, step.kv_indices, step.kv_last_page_len, hq, hkv, d, p,
                             q_data_type=dtype)
            self.slots.copy_(step.slots, non_blocking=True)
            self.wrapper, self.step_slots = self.decode, self.slots
        else:
            self.prefill.plan(step.qo_indptr, step.kv_indptr, step.kv_indices, step.kv_last_page_len, hq, hkv, d,
                              p, causal=True, q_data_type=dtype)
            self.wrapper, self.step_slots = self.prefill, step.slots

    def append_kv(self, layer, k, v):
        self.cache.append(layer, self.step_slots, k, v)

    def attend(self, layer, q):
        return self.wrapper.run(q, (self.cache.k[layer], self.cache.v[layer]))
