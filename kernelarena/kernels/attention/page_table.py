"""Paged KV cache: layouts, the CSR page table, appending tokens, and dense/ragged K/V in the same format.

A cache is either one tensor [num_pages, 2, page_size, num_kv_heads, head_dim] (NHD) or
[num_pages, 2, num_kv_heads, page_size, head_dim] (HND), index 0 keys and 1 values, or a (k_cache,
v_cache) tuple of [num_pages, page_size, num_kv_heads, head_dim] (NHD) / [num_pages, num_kv_heads,
page_size, head_dim] (HND) tensors, as in FlashInfer. Request b owns pages
kv_indices[kv_indptr[b]:kv_indptr[b+1]]; its last page holds kv_last_page_len[b] tokens (int32 throughout).

Ragged K/V (contiguous [total_kv, heads, dim] split by a token indptr) is the same table with one "page"
per non-empty request: the page index is the request's first token and the page size is large enough that
every token of the request falls in it (``ragged_page_table``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch

from kernelarena.errors import ShapeError, UnsupportedError

from .scheduler import RAGGED_PAGE_SIZE

KVCache = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]
KV_LAYOUTS = ("NHD", "HND")


@dataclass(frozen=True)
class PageTable:
    """CSR page table: kv_indptr [batch+1], kv_indices [pages], kv_last_page_len [batch], all int32."""

    kv_indptr: torch.Tensor
    kv_indices: torch.Tensor
    kv_last_page_len: torch.Tensor
    page_size: int

    def kv_lens(self) -> torch.Tensor:
        """Tokens per request (int64)."""
        pages = (self.kv_indptr[1:] - self.kv_indptr[:-1]).long()
        return torch.where(pages > 0, (pages - 1) * self.page_size + self.kv_last_page_len.long(), 0)


@dataclass(frozen=True)
class KVView:
    """Keys and values as flat views plus the element strides (page, slot within page, head)."""

    k: torch.Tensor
    v: torch.Tensor
    strides: tuple[int, int, int]
    page_size: int
    num_kv_heads: int
    head_dim: int


def check_layout(kv_layout: str) -> str:
    """Return ``kv_layout`` if it is NHD or HND, else raise UnsupportedError."""
    if kv_layout not in KV_LAYOUTS:
        raise UnsupportedError(f"kv_layout must be one of {KV_LAYOUTS}, got {kv_layout!r}")
    return kv_layout


def allocate_paged_kv_cache(num_pages: int, page_size: int, num_kv_heads: int, head_dim: int, *,
                            kv_layout: str = "NHD", dtype=torch.bfloat16, device="cpu") -> torch.Tensor:
    """An uninitialised paged cache tensor of the given layout: [num_pages, 2, ...]."""
    inner = (page_size, num_kv_heads) if check_layout(kv_layout) == "NHD" else (num_kv_heads, page_size)
    return torch.empty(num_pages, 2, *inner, head_dim, dtype=dtype, device=device)


def kv_view(paged_kv_cache: KVCache, kv_layout: str) -> KVView:
    """Split a cache (one 5-D tensor or a (k, v) tuple) into K and V views and their strides.

    Raises ShapeError for wrong ranks or K/V that disagree in shape or strides.
    """
    check_layout(kv_layout)
    if isinstance(paged_kv_cache, (tuple, list)):
        if len(paged_kv_cache) != 2:
            raise ShapeError(f"a (k_cache, v_cache) tuple has 2 tensors, got {len(paged_kv_cache)}")
        k, v = paged_kv_cache
        if k.dim() != 4:
            raise ShapeError(f"k_cache must be 4-D [pages, ...], got shape {tuple(k.shape)}")
    else:
        if paged_kv_cache.dim() != 5 or paged_kv_cache.shape[1] != 2:
            raise ShapeError(f"paged_kv_cache must be [pages, 2, ...] (5-D), got {tuple(paged_kv_cache.shape)}")
        k, v = paged_kv_cache[:, 0], paged_kv_cache[:, 1]
    if k.shape != v.shape or k.stride() != v.stride() or k.dtype != v.dtype:
        raise ShapeError(f"k and v caches differ: {tuple(k.shape)}/{k.stride()} vs {tuple(v.shape)}/{v.stride()}")
    if k.stride(-1) != 1:
        raise ShapeError("the KV cache's head_dim axis must be contiguous")
    if kv_layout == "NHD":
        _, page_size, heads, dim = k.shape
        strides = (k.stride(0), k.stride(1), k.stride(2))
    else:
        _, heads, page_size, dim = k.shape
        strides = (k.stride(0), k.stride(2), k.stride(1))
    return KVView(k, v, strides, page_size, heads, dim)


def build_page_table(kv_lens: Sequence[int], page_size: int, *, num_pages: int | None = None,
                     shuffle: bool = False, generator: torch.Generator | None = None,
                     device="cpu") -> PageTable:
    """Give each request ceil(kv_len / page_size) pages, in order or (shuffle) a random permutation.

    A request of length 0 owns no pages. Raises ShapeError if ``num_pages`` is too small.
    """
    lens = torch.as_tensor(list(kv_lens), dtype=torch.int64)
    pages = (lens + page_size - 1) // page_size
    indptr = torch.zeros(len(lens) + 1, dtype=torch.int64)
    indptr[1:] = torch.cumsum(pages, 0)
    total = int(indptr[-1])
    num_pages = total if num_pages is None else num_pages
    if num_pages < total:
        raise ShapeError(f"the batch needs {total} pages, the cache has {num_pages}")
    pool = torch.randperm(num_pages, generator=generator) if shuffle else torch.arange(num_pages)
    last = torch.where(pages > 0, lens - (pages - 1) * page_size, 0)
    return PageTable(indptr.int().to(device), pool[:total].int().to(device), last.int().to(device), page_size)


def ragged_page_table(kv_indptr: torch.Tensor) -> PageTable:
    """Contiguous K/V split by a token indptr, as a page table (see the module docstring)."""
    lens = (kv_indptr[1:] - kv_indptr[:-1]).long()
    nonempty = lens > 0
    page_indptr = torch.zeros_like(kv_indptr)
    page_indptr[1:] = torch.cumsum(nonempty.to(kv_indptr.dtype), 0)
    return PageTable(page_indptr.int(), kv_indptr[:-1][nonempty].int(), lens.int(), RAGGED_PAGE_SIZE)


def batch_positions(append_indptr: torch.Tensor, kv_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For appended tokens split by ``append_indptr``: (request of each token, its position in the request).

    ``kv_lens`` are the lengths after the append, so request b's new tokens sit at the last positions.
    """
    counts = (append_indptr[1:] - append_indptr[:-1]).long()
    batch = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    within = torch.arange(int(counts.sum()), device=counts.device) - torch.repeat_interleave(
        append_indptr[:-1].long(), counts)
    positions = kv_lens.long().to(counts.device)[batch] - counts[batch] + within
    return batch, positions


def append_paged_kv_cache(append_k: torch.Tensor, append_v: torch.Tensor, append_indptr: torch.Tensor,
                          paged_kv_cache: KVCache, table: PageTable, *, kv_layout: str = "NHD") -> None:
    """Write new tokens [n, Hkv, D] at the end of each request's pages (the table already counts them).

    Vectorized scatter, works on any device. Raises ShapeError if shapes disagree with the cache.
    """
    view = kv_view(paged_kv_cache, kv_layout)
    if append_k.shape != append_v.shape or append_k.shape[1:] != (view.num_kv_heads, view.head_dim):
        raise ShapeError(f"append_k/append_v {tuple(append_k.shape)} do not match the cache's "
                         f"[n, {view.num_kv_heads}, {view.head_dim}]")
    if table.page_size != view.page_size:
        raise ShapeError(f"page table page_size {table.page_size} != cache page_size {view.page_size}")
    device = view.k.device
    batch, positions = batch_positions(append_indptr.to(device), table.kv_lens().to(device))
    slots = table.kv_indptr.to(device).long()[batch] + positions // view.page_size
    pages = table.kv_indices.to(device).long()[slots]
    within = positions % view.page_size
    if kv_layout == "NHD":
        view.k[pages, within] = append_k.to(view.k.dtype)
        view.v[pages, within] = append_v.to(view.v.dtype)
    else:
        view.k[pages, :, within] = append_k.to(view.k.dtype)
        view.v[pages, :, within] = append_v.to(view.v.dtype)


def pages_to_nhd(paged_kv_cache: KVCache, kv_layout: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(k_cache, v_cache) as NHD [pages, page_size, heads, dim] tensors (a copy for HND)."""
    view = kv_view(paged_kv_cache, kv_layout)
    if kv_layout == "NHD":
        return view.k, view.v
    return view.k.transpose(1, 2).contiguous(), view.v.transpose(1, 2).contiguous()
