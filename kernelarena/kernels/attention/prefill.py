"""Batch prefill with FlashInfer's plan/run interface: over a paged KV cache, or over ragged K/V.

Queries of request b are q[qo_indptr[b]:qo_indptr[b+1]]; with ``causal=True`` query i of a request with
qo_len queries and kv_len keys sees KV positions <= i + kv_len - qo_len (queries aligned to the end of the
sequence, as FlashInfer does). Ragged K/V (contiguous [total_kv, heads, dim] split by kv_indptr) runs
through the same kernel as a page table with one page per request (page_table.ragged_page_table).
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np
import torch

from kernelarena.errors import ShapeError

from .kernel_config import KernelConfig
from .page_table import check_layout
from .paged_wrapper import PagedKVCacheWrapper
from .prefill_hopper import HopperPrefillConfig
from .runner import AttentionRunner, HostArray, host_array
from .scheduler import RAGGED_PAGE_SIZE


class BatchPrefillWithPagedKVCacheWrapper(PagedKVCacheWrapper):
    """Prefill/append attention (causal or not, GQA, soft-cap, window, lse) over a paged KV cache."""

    def plan(self, qo_indptr: HostArray, paged_kv_indptr: HostArray, paged_kv_indices: torch.Tensor,
             paged_kv_last_page_len: HostArray, num_qo_heads: int, num_kv_heads: int, head_dim_qk: int,
             page_size: int, *, causal: bool = False, sm_scale: Optional[float] = None, window_left: int = -1,
             logits_soft_cap: Optional[float] = None, q_data_type: torch.dtype = torch.bfloat16,
             kv_data_type: Optional[torch.dtype] = None, kv_chunk_size: Optional[int] = None) -> None:
        """Schedule the batch. ``kv_chunk_size`` (tokens) forces the split of long KV ranges."""
        self._runner.plan(
            qo_indptr, paged_kv_indptr, paged_kv_last_page_len, paged_kv_indices, num_qo_heads=num_qo_heads,
            num_kv_heads=num_kv_heads, head_dim=head_dim_qk, page_size=page_size, causal=causal,
            window_left=window_left, logits_soft_cap=logits_soft_cap, sm_scale=sm_scale, q_dtype=q_data_type,
            kv_dtype=kv_data_type, kv_chunk_size=kv_chunk_size)


class BatchPrefillWithRaggedKVCacheWrapper:
    """Prefill attention over contiguous K/V [total_kv, num_kv_heads, head_dim] split by kv_indptr."""

    def __init__(self, float_workspace_buffer: torch.Tensor, kv_layout: str = "NHD", use_cuda_graph: bool = False,
                 *, config: Union[KernelConfig, HopperPrefillConfig, None] = None, num_sms: Optional[int] = None):
        if check_layout(kv_layout) != "NHD":
            raise ShapeError("ragged K/V is [total_kv, num_kv_heads, head_dim] (NHD)")
        self._runner = AttentionRunner(float_workspace_buffer, use_cuda_graph=use_cuda_graph, config=config,
                                       num_sms=num_sms)
        self._cache_seen, self._view = None, None

    def plan(self, qo_indptr: HostArray, kv_indptr: HostArray, num_qo_heads: int, num_kv_heads: int,
             head_dim_qk: int, *, causal: bool = False, sm_scale: Optional[float] = None, window_left: int = -1,
             logits_soft_cap: Optional[float] = None, q_data_type: torch.dtype = torch.bfloat16,
             kv_data_type: Optional[torch.dtype] = None, kv_chunk_size: Optional[int] = None) -> None:
        """Schedule the batch; kv_indptr counts tokens."""
        kv_np = host_array(kv_indptr).astype(np.int64)
        lens = kv_np[1:] - kv_np[:-1]
        nonempty = lens > 0
        page_indptr = np.zeros_like(kv_np)
        np.cumsum(nonempty, out=page_indptr[1:])
        self._runner.plan(
            qo_indptr, page_indptr, lens, kv_np[:-1][nonempty], num_qo_heads=num_qo_heads,
            num_kv_heads=num_kv_heads, head_dim=head_dim_qk, page_size=RAGGED_PAGE_SIZE, causal=causal,
            window_left=window_left, logits_soft_cap=logits_soft_cap, sm_scale=sm_scale, q_dtype=q_data_type,
            kv_dtype=kv_data_type, kv_chunk_size=kv_chunk_size)

    def run(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, out: Optional[torch.Tensor] = None,
            lse: Optional[torch.Tensor] = None, return_lse: bool = False):
        """q [total_q, Hq, D], k/v [total_kv, Hkv, D] -> out (and lse [total_q, Hq] float32, base 2)."""
        if k.shape != v.shape or k.stride() != v.stride() or k.dim() != 3 or k.stride(-1) != 1:
            raise ShapeError(f"k {tuple(k.shape)}/{k.stride()} and v {tuple(v.shape)}/{v.stride()} must be "
                             "[total_kv, Hkv, D] with equal strides and a contiguous last axis")
        # Page index = first token of the request, so the page stride is the token stride.
        strides = (k.stride(0), k.stride(0), k.stride(1))
        return self._runner.run(q, k, v, strides, out, lse, return_lse)
