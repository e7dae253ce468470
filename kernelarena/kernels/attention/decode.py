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

from .page_table import KVCache, check_layout, kv_view
from .runner import AttentionRunner, HostArray
from .kernel_config import KernelConfig


class BatchDecodeWithPagedKVCacheWrapper:
    """Decode attention (GQA, soft-cap, sliding window, base-2 lse) for a batch of paged sequences."""

    def __init__(self, float_workspace_buffer: torch.Tensor, kv_layout: str = "NHD", use_cuda_graph: bool = False,
                 *, config: Optional[KernelConfig] = None, num_sms: Optional[int] = None):
        self.kv_layout = check_layout(kv_layout)
        self._runner = AttentionRunner(float_workspace_buffer, use_cuda_graph=use_cuda_graph, config=config,
                                       num_sms=num_sms)
        self._cache_seen, self._view = None, None

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

    def run(self, q: torch.Tensor, paged_kv_cache: KVCache, *, out: Optional[torch.Tensor] = None,
            lse: Optional[torch.Tensor] = None, return_lse: bool = False):
        """q [batch, num_qo_heads, head_dim] -> out (and lse [batch, num_qo_heads] float32, base 2)."""
        if paged_kv_cache is not self._cache_seen:  # slicing the cache costs host time: once per cache object
            self._view, self._cache_seen = kv_view(paged_kv_cache, self.kv_layout), paged_kv_cache
        view = self._view
        return self._runner.run(q, view.k, view.v, view.strides, out, lse, return_lse)
