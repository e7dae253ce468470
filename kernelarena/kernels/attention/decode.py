"""Batch decode over a paged KV cache with FlashInfer's plan/run interface (one query token per request).

    wrapper = BatchDecodeWithPagedKVCacheWrapper(torch.empty(128 << 20, dtype=torch.uint8, device="cuda"))
    wrapper.plan(kv_indptr, kv_indices, kv_last_page_len, 32, 8, 128, 16, q_data_type=torch.bfloat16)
    out, lse = wrapper.run(q, paged_kv_cache, return_lse=True)

plan() schedules on the host (pass kv_indptr and kv_last_page_len as CPU tensors or numpy arrays to avoid a
device sync); run() only launches, with a fixed grid, so it can be captured in a CUDA graph
(``use_cuda_graph=True`` keeps buffers and kernel choice fixed across plans). Kernels: paged_kernel.py.
"""

from __future__ import annotations

from typing import Optional

import torch

from .paged_wrapper import PagedKVCacheWrapper
from .runner import HostArray


class BatchDecodeWithPagedKVCacheWrapper(PagedKVCacheWrapper):
    """Decode attention (GQA, soft-cap, sliding window, base-2 lse) for a batch of paged sequences."""

    def plan(self, indptr: HostArray, indices: torch.Tensor, last_page_len: HostArray, num_qo_heads: int,
             num_kv_heads: int, head_dim: int, page_size: int, *, window_left: int = -1,
             logits_soft_cap: Optional[float] = None, q_data_type: torch.dtype = torch.bfloat16,
             kv_data_type: Optional[torch.dtype] = None, sm_scale: Optional[float] = None,
             kv_chunk_size: Optional[int] = None) -> None:
        """Schedule the batch. ``kv_chunk_size`` (tokens) forces the split of long sequences."""
        self._runner.plan(  # qo_indptr None: one query per request, the scheduler's shortest path
            None, indptr, last_page_len, indices, num_qo_heads=num_qo_heads, num_kv_heads=num_kv_heads,
            head_dim=head_dim, page_size=page_size, causal=False, window_left=window_left,
            logits_soft_cap=logits_soft_cap, sm_scale=sm_scale, q_dtype=q_data_type, kv_dtype=kv_data_type,
            kv_chunk_size=kv_chunk_size)
