"""Paged attention: CSR page table, host-planned schedules, Triton decode/prefill kernels, LSE merge.

Public names: the three FlashInfer-style wrappers and the page-table helpers. Layout (CONTRIBUTING.md):
reference.py (plain PyTorch), one module per backend (paged_kernel.py: Triton; prefill_hopper.py: Triton
prefill for sm90, opt-in, and with prefill_tilelang.py its TileLang kernels; small_decode.py with small_decode.cu:
CUDA), backends.py (the backend table plan()
chooses from), runner.py (plan/run), solutions.py (the dataset's records, built from these files).
"""

from .decode import BatchDecodeWithPagedKVCacheWrapper
from .kernel_config import KernelConfig
from .page_table import (
    PageTable,
    allocate_paged_kv_cache,
    append_paged_kv_cache,
    build_page_table,
    kv_view,
    ragged_page_table,
)
from .prefill import BatchPrefillWithPagedKVCacheWrapper, BatchPrefillWithRaggedKVCacheWrapper
from .prefill_hopper import HopperPrefillConfig

__all__ = [
    "BatchDecodeWithPagedKVCacheWrapper",
    "BatchPrefillWithPagedKVCacheWrapper",
    "BatchPrefillWithRaggedKVCacheWrapper",
    "HopperPrefillConfig",
    "KernelConfig",
    "PageTable",
    "allocate_paged_kv_cache",
    "append_paged_kv_cache",
    "build_page_table",
    "kv_view",
    "ragged_page_table",
]
