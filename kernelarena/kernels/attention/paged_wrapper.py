"""What the paged-cache wrappers (decode, paged prefill) share: the runner, the cache layout, and run().

Subclasses add plan(), which fixes the batch; run() only launches. The K/V views of the last cache object
seen are kept, since slicing the cache costs host time on every call otherwise.
"""

from __future__ import annotations

from typing import Optional, Union

import torch

from .kernel_config import KernelConfig
from .page_table import KVCache, check_layout, kv_view
from .prefill_hopper import HopperPrefillConfig
from .runner import AttentionRunner


class PagedKVCacheWrapper:
    """Base of BatchDecodeWithPagedKVCacheWrapper and BatchPrefillWithPagedKVCacheWrapper."""

    def __init__(self, float_workspace_buffer: torch.Tensor, kv_layout: str = "NHD", use_cuda_graph: bool = False,
                 *, config: Union[KernelConfig, HopperPrefillConfig, None] = None, num_sms: Optional[int] = None):
        self.kv_layout = check_layout(kv_layout)
        self._runner = AttentionRunner(float_workspace_buffer, use_cuda_graph=use_cuda_graph, config=config,
                                       num_sms=num_sms, kv_layout=self.kv_layout)
        self._cache_seen, self._view = None, None

    def reserve_page_indices(self, capacity: int) -> None:
        """Reserve room for ``capacity`` page indices before the first plan() (see
        AttentionRunner.reserve_page_indices): with ``use_cuda_graph``, the largest batch plans can take."""
        self._runner.reserve_page_indices(capacity)

    def run(self, q: torch.Tensor, paged_kv_cache: KVCache, *, out: Optional[torch.Tensor] = None,
            lse: Optional[torch.Tensor] = None, return_lse: bool = False):
        """q [tokens, num_qo_heads, head_dim] (decode: one token per request) -> out, and with ``return_lse``
        also lse [tokens, num_qo_heads] float32, base 2."""
        if paged_kv_cache is not self._cache_seen:
            self._view, self._cache_seen = kv_view(paged_kv_cache, self.kv_layout), paged_kv_cache
        view = self._view
        return self._runner.run(q, view.k, view.v, view.strides, out, lse, return_lse)
