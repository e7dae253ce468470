"""Triton prefill kernel shaped for Hopper (sm90): one program per (query tile, head), no KV split.

What differs from the portable kernel (paged_kernel.py), and why:
- One work item per program over an ordinary grid (entries x heads, heads fastest), read from the same work
  list (scheduler.plan_work, never split here). The portable kernel's persistent loop fetches items from a
  counter, so the software pipeliner cannot start an item's first K/V block before the previous item ends;
  a plain grid gives each program one straight loop, and the next resident program's loads overlap the
  previous one's epilogue. Causal tiles are listed request by request, longest first (as the portable plan).
- P @ V accumulates into the running output (``tl.dot(p, v, acc)``): wgmma's accumulator is the output
  registers, where ``acc * alpha + tl.dot(p, v)`` needs a second 128 x head_dim float32 tile and an add.
- The softmax scale is folded into log2(e) and applied in the exponent (``qk * scale - m``: one FMA per score).
- Rows: ``pack_gqa`` packs (query token, head of one GQA group) rows like the portable kernel (BLOCK_M / group
  tokens per tile: a narrower causal diagonal, so fewer masked blocks); otherwise a tile is BLOCK_M tokens of
  one query head (FlashAttention-3's default layout; the group's heads then share K/V through L2 only).
- ``use_tma``: Q and O move through per-request tensor descriptors (``tl.make_tensor_descriptor``: TMA on
  sm90, rows past the request clipped by the descriptor's shape); ragged K/V with contiguous heads too.
  Paged K/V are gathered through the page table with pointer loads (cp.async), since a 64-token block spans
  4 pages of 16 and Hopper's TMA has no row gather. Descriptors made on the device need Triton's global
  scratch allocator, which the launcher installs when none is set.

Scores are base 2 and the lse written is base 2, as in paged_kernel.py. Supported: causal or not, GQA, lse;
not sliding windows, soft-capping or KV splitting (the runner keeps those on the portable kernel).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import torch
import triton
import triton.language as tl

from kernelarena import env
from kernelarena.errors import UnsupportedError

from . import prefill_tilelang as tl_prefill  # no TileLang import: its programs are built on first use
from .paged_kernel import LOG2E, load_rows, page_rows
from .scheduler import HEADER, ITEM_FIELDS, RAGGED_PAGE_SIZE

ENV_SWITCH = env.HOPPER_PREFILL
# "auto" (the default), "on" or "off" (env.hopper_prefill_mode); read once: a plan's choice must not change within a
# process
mode = env.hopper_prefill_mode()

_HEADER = tl.constexpr(HEADER)
_ITEM_FIELDS = tl.constexpr(ITEM_FIELDS)


@dataclass(frozen=True)
class HopperPrefillConfig:
    """Tile sizes and options of the Hopper prefill kernel (prefill_hopper.py). Passed as a wrapper's ``config``,
    it selects that kernel for the wrapper's prefill plans (on any device: the CPU interpreter runs it too).

    pack_gqa: a tile's rows are (query token, query head of one GQA group), as in the portable kernel; else
    BLOCK_M query tokens of one query head. use_tma: Q and O (and ragged, contiguous K/V) move through tensor
    descriptors (TMA on sm90); paged K/V are always gathered through the page table. language: "triton" (this
    file's kernel) or "tilelang" (prefill_tilelang.py, CUDA only; the CPU interpreter runs the Triton kernel with
    the same tiles); overlap: the TileLang kernel issues the next block's Q K^T and this block's P V before this
    block's softmax; pingpong: its two consumer warpgroups take turns issuing their GEMMs; persistent: one block per
    multiprocessor takes tiles (the next tile's loads overlap this one's end), from a counter in memory (dynamic, the
    default) or in turn (dynamic=False, label "static"); fast_math: the TileLang kernel is compiled with nvcc's
    --use_fast_math, as FlashInfer's are (False: IEEE exp2 and division, label "ieee").
    """

    block_m: int = 128
    block_n: int = 64
    num_warps: int = 8
    num_stages: int = 5
    pack_gqa: bool = True
    use_tma: bool = True
    language: str = "triton"
    overlap: bool = False
    pingpong: bool = False
    persistent: bool = False
    fast_math: bool = True
    dynamic: bool = True

    def __post_init__(self):
        if self.language not in ("triton", "tilelang"):
            raise ValueError(f"HopperPrefillConfig.language must be 'triton' or 'tilelang', got {self.language!r}")
        if self.language == "tilelang" and self.pack_gqa:
            raise ValueError("HopperPrefillConfig(language='tilelang') needs pack_gqa=False: the TileLang kernel's "
                             "tiles are query tokens of one head")
        for option in ("overlap", "pingpong", "persistent"):
            if getattr(self, option) and self.language != "tilelang":
                raise ValueError(f"HopperPrefillConfig.{option} is the TileLang kernel's (language='tilelang')")
        if not self.dynamic and not self.persistent:
            raise ValueError("HopperPrefillConfig.dynamic=False is for persistent blocks (persistent=True): one block "
                             "a tile has no tiles to take")
        if not self.fast_math and self.language != "tilelang":
            raise ValueError("HopperPrefillConfig.fast_math=False is the TileLang kernel's (language='tilelang'): "
                             "the Triton kernel is compiled by Triton")

    @property
    def graph_safe(self) -> bool:
        """Whether a plan's launch replays in a CUDA graph after re-plans: the TileLang kernel's persistent blocks
        (a fixed grid, the tile count read on the device). The Triton kernel's grid is the plan's tile count."""
        return self.language == "tilelang" and self.persistent

    @property
    def label(self) -> str:
        """Short name for tables, e.g. ``m128n64w8s5 pack tma`` (``tilelang m128n128w8s2 head`` for TileLang)."""
        return (f"{'tilelang ' if self.language == 'tilelang' else ''}"
                f"m{self.block_m}n{self.block_n}w{self.num_warps}s{self.num_stages}"
                f"{' pack' if self.pack_gqa else ' head'}{' tma' if self.use_tma else ''}"
                f"{' overlap' if self.overlap else ''}{' pingpong' if self.pingpong else ''}"
                f"{' persistent' if self.persistent else ''}{'' if self.dynamic or not self.persistent else ' static'}"
                f"{'' if self.fast_math else ' ieee'}")


# The TileLang kernel's config where the Hopper path is chosen automatically: FA3's schedule on persistent blocks
# (H200, 2026-12-04, benchmarks/sweep_prefill_hopper.py: 1.05x / 1.07x FlashInfer's fa3 at the two causal
# cases, 0.96x ragged; the Triton kernel's best 0.74x / 0.76x / 0.69x in the same run).
TILELANG_CONFIG = HopperPrefillConfig(128, 128, 8, 2, pack_gqa=False, use_tma=True, language="tilelang", overlap=True,
                                      pingpong=True, persistent=True)
# head_dim 256: 64-key blocks (Q and two stages of 128-key K and V blocks would need 320 KB of shared memory), FA3's
# schedule too (H200, 2026-12-04, sweep_prefill_hopper --head-dim 256: 1.30x / 1.26x FlashInfer's fa3 at the two causal
# cases, 1.27x / 1.22x without it in the same run; before the producer read the page table ahead of its waits, the
# plain loop had been the faster, 1.28x / 1.29x against 1.23x / 1.24x).
TILELANG_CONFIG_D256 = HopperPrefillConfig(128, 64, 8, 2, pack_gqa=False, use_tma=True, language="tilelang",
                                           overlap=True, pingpong=True, persistent=True)


@functools.lru_cache(maxsize=None)
def tilelang_importable() -> bool:
    """Whether TileLang imports here (tried once a process: the import takes seconds)."""
    try:
        import tilelang  # noqa: F401
    except Exception:  # an install that does not import (a missing CUDA library, a broken wheel) counts as absent
        return False
    return True


# The automatic choice takes paged K/V from pages of this many tokens: the TileLang kernel copies a page (a 64-column
# part of it) with one TMA copy, so a 128-key block of 1-token pages (FlashInfer-Trace's layout) would take 256 copies
# where pages of 16 take 16. Timed against FlashInfer at 16 (H200, 2026-12-04); pages of 32 pass the GPU tests.
MIN_AUTO_PAGE = 16


def tilelang_unavailable(head_dim: int, page_size: int, kv_layout: str = "NHD") -> Optional[str]:
    """Why the automatic choice (KERNELARENA_HOPPER_PREFILL unset or auto) leaves a prefill plan on an sm90 GPU to
    the portable kernel, or None when the TileLang kernel takes it. ``page_size``: RAGGED_PAGE_SIZE for ragged K/V;
    ``kv_layout``: the paged cache's layout (HND pages have no row of all heads, which the kernel's TMA copies read:
    at run() it would fall back to the Triton Hopper kernel, not timed in that layout)."""
    ragged = page_size == RAGGED_PAGE_SIZE
    if not ragged and kv_layout != "NHD":
        return f"{kv_layout} pages: the TileLang kernel reads K/V rows of all heads (NHD)"
    config = TILELANG_CONFIG_D256 if head_dim == 256 else TILELANG_CONFIG
    if not tl_prefill.supported(head_dim, 0 if ragged else page_size, config.block_n, config.block_m,
                                config.num_stages):
        return f"the TileLang kernel does not take head_dim {head_dim} with pages of {page_size} tokens"
    if not ragged and page_size < MIN_AUTO_PAGE:
        return (f"pages of {page_size} tokens: the TileLang kernel takes one TMA copy a page, and is chosen "
                f"automatically from pages of {MIN_AUTO_PAGE}")
    if not tilelang_importable():
        return "TileLang does not import here"
    return None


def choose_hopper_config(head_dim: int, on_gpu: bool, language: Optional[str] = None) -> HopperPrefillConfig:
    """The Hopper prefill kernel's config when the Hopper path is chosen without one (KERNELARENA_HOPPER_PREFILL).

    On a GPU: TILELANG_CONFIG where TileLang imports and serves the head size (64 or 128; TILELANG_CONFIG_D256 for
    256), else the Triton kernel's (``language`` forces one). The Triton one is the shape the Triton tutorial's
    Hopper attention uses for head_dim 128 (128-row tiles, 8 warps) with 64-token K/V blocks and 5 stages: with
    gathered K/V the page-index load takes a stage, and compiled for sm_90 (Triton 3.6, on the CPU machine) 3-4
    stages keep one K/V block in flight (65.8 KB of shared memory), 5 keep two (98.8 KB)."""
    if not on_gpu:
        return HopperPrefillConfig(32, 16, 4, 1, True, True)
    if language is None:
        language = "tilelang" if head_dim in tl_prefill.HEAD_DIMS and tilelang_importable() else "triton"
    if language == "tilelang":
        return TILELANG_CONFIG_D256 if head_dim == 256 else TILELANG_CONFIG
    return HopperPrefillConfig(128 if head_dim <= 128 else 64, 64, 8, 5, True, True)


@triton.jit
def _attend_block(acc, m_i, l_i, q, K, V, kv_desc_k, kv_desc_v, KV_INDICES, page_base, start, kv_hi, head_off,
                  kv_col, offs_d, diag, stride_kp, stride_kt, qk_scale,
                  PAGE_SIZE: tl.constexpr, BLOCK_N: tl.constexpr, MASKED: tl.constexpr, CAUSAL: tl.constexpr,
                  KV_TMA: tl.constexpr, UPCAST: tl.constexpr):
    offs_n = start + tl.arange(0, BLOCK_N)
    if KV_TMA:
        k = kv_desc_k.load([start, kv_col])
        if UPCAST:
            k = k.to(tl.float32)
    else:
        kv_ptrs, valid = page_rows(KV_INDICES, page_base, offs_n, kv_hi, head_off, offs_d, stride_kp, stride_kt,
                                   PAGE_SIZE, MASKED)
        k = load_rows(K, kv_ptrs, valid, MASKED, UPCAST)
    qk = tl.dot(q, tl.trans(k))
    if MASKED:
        keep = offs_n[None, :] < kv_hi
        if CAUSAL:
            keep = keep & (offs_n[None, :] <= diag[:, None])
        qk = tl.where(keep, qk, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
        # A row that has seen no key yet keeps m = -inf; exponents are then taken against 0 (all give 0).
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
    else:
        m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
        m_use = m_new
    p = tl.exp2(qk * qk_scale - m_use[:, None])
    alpha = tl.exp2(m_i - m_use)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    if KV_TMA:
        v = kv_desc_v.load([start, kv_col])
        if UPCAST:
            v = v.to(tl.float32)
    else:
        v = load_rows(V, kv_ptrs, valid, MASKED, UPCAST)
    acc = tl.dot(p.to(v.dtype), v, acc)
    return acc, m_new, l_i


@triton.jit
def hopper_prefill_kernel(
    Q, K, V, O, LSE, WORK, KV_INDICES,
    stride_qt, stride_qh, stride_ot, stride_oh, stride_lt, stride_kp, stride_kt, stride_kh,
    qk_scale, num_heads, num_qo_heads, num_kv_heads,
    GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, PAGE_SIZE: tl.constexpr, BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr, PACK_GQA: tl.constexpr, CAUSAL: tl.constexpr, WRITE_LSE: tl.constexpr,
    UPCAST: tl.constexpr, Q_TMA: tl.constexpr, KV_TMA: tl.constexpr,
):
    """Program pid: work entry pid // num_heads (a query tile) for head pid % num_heads (a KV head when
    PACK_GQA, else a query head), over the tile's whole visible KV range."""
    pid = tl.program_id(0)
    entry = pid // num_heads
    head = pid % num_heads
    item = WORK + _HEADER + entry * _ITEM_FIELDS
    tok_base = tl.load(item)
    qo_len = tl.load(item + 1)
    kv_len = tl.load(item + 2)
    row_start = tl.load(item + 3)
    kv_lo = tl.load(item + 5)
    kv_hi = tl.load(item + 6)
    page_base = tl.load(item + 7)
    if PACK_GQA:
        ROWS_PER_TOKEN: tl.constexpr = GROUP
        kv_head = head
        q_head0 = head * GROUP
    else:
        ROWS_PER_TOKEN: tl.constexpr = 1
        kv_head = head // GROUP
        q_head0 = head
    TOKENS: tl.constexpr = BLOCK_M // ROWS_PER_TOKEN
    offs_m = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    rows = row_start + offs_m
    tok = rows // ROWS_PER_TOKEN
    q_head = q_head0 + rows % ROWS_PER_TOKEN
    row_ok = tok < qo_len
    tok0 = row_start // ROWS_PER_TOKEN

    if Q_TMA:
        # Per-request descriptors: their first axis ends at the request's last query, so a tile's rows past it
        # read zeros and are not stored (TMA clips them).
        q_desc = tl.make_tensor_descriptor(Q + tok_base.to(tl.int64) * stride_qt,
                                           shape=[qo_len, num_qo_heads, HEAD_DIM], strides=[stride_qt, stride_qh, 1],
                                           block_shape=[TOKENS, ROWS_PER_TOKEN, HEAD_DIM])
        q = tl.reshape(q_desc.load([tok0, q_head0, 0]), [BLOCK_M, HEAD_DIM])
    else:
        q_off = (tok_base + tok).to(tl.int64) * stride_qt + q_head * stride_qh
        q = tl.load(Q + q_off[:, None] + offs_d[None, :], mask=row_ok[:, None], other=0.0)
    if UPCAST:
        q = q.to(tl.float32)

    head_off = kv_head.to(tl.int64) * stride_kh
    kv_col = kv_head * HEAD_DIM
    k_desc = None
    v_desc = None
    if KV_TMA:
        # Ragged K/V: the request's one "page" index is its first token (scheduler.RAGGED_PAGE_SIZE).
        kv_first = tl.load(KV_INDICES + page_base).to(tl.int64)
        k_desc = tl.make_tensor_descriptor(K + kv_first * stride_kt, shape=[kv_len, num_kv_heads * HEAD_DIM],
                                           strides=[stride_kt, 1], block_shape=[BLOCK_N, HEAD_DIM])
        v_desc = tl.make_tensor_descriptor(V + kv_first * stride_kt, shape=[kv_len, num_kv_heads * HEAD_DIM],
                                           strides=[stride_kt, 1], block_shape=[BLOCK_N, HEAD_DIM])
    diag = tok + (kv_len - qo_len)  # last KV position each row may see (causal)

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    # Blocks that every row of the tile sees whole skip the masks: up to the first row's diagonal (causal).
    limit = kv_hi
    if CAUSAL:
        limit = tl.minimum(limit, tok0 + kv_len - qo_len + 1)
    full_hi = kv_lo + tl.maximum(limit - kv_lo, 0) // BLOCK_N * BLOCK_N
    for start in range(kv_lo, full_hi, BLOCK_N):
        acc, m_i, l_i = _attend_block(acc, m_i, l_i, q, K, V, k_desc, v_desc, KV_INDICES, page_base, start, kv_hi,
                                      head_off, kv_col, offs_d, diag, stride_kp, stride_kt, qk_scale,
                                      PAGE_SIZE, BLOCK_N, False, CAUSAL, KV_TMA, UPCAST)
    for start in range(full_hi, kv_hi, BLOCK_N):
        acc, m_i, l_i = _attend_block(acc, m_i, l_i, q, K, V, k_desc, v_desc, KV_INDICES, page_base, start, kv_hi,
                                      head_off, kv_col, offs_d, diag, stride_kp, stride_kt, qk_scale,
                                      PAGE_SIZE, BLOCK_N, True, CAUSAL, KV_TMA, UPCAST)

    has = l_i > 0.0
    out = (acc / tl.where(has, l_i, 1.0)[:, None]).to(O.dtype.element_ty)
    if Q_TMA:
        o_desc = tl.make_tensor_descriptor(O + tok_base.to(tl.int64) * stride_ot,
                                           shape=[qo_len, num_qo_heads, HEAD_DIM], strides=[stride_ot, stride_oh, 1],
                                           block_shape=[TOKENS, ROWS_PER_TOKEN, HEAD_DIM])
        o_desc.store([tok0, q_head0, 0], tl.reshape(out, [TOKENS, ROWS_PER_TOKEN, HEAD_DIM]))
    else:
        o_off = (tok_base + tok).to(tl.int64) * stride_ot + q_head * stride_oh
        tl.store(O + o_off[:, None] + offs_d[None, :], out, mask=row_ok[:, None])
    if WRITE_LSE:
        lse = tl.where(has, m_i + tl.log2(tl.where(has, l_i, 1.0)), float("-inf"))
        tl.store(LSE + (tok_base + tok).to(tl.int64) * stride_lt + q_head, lse, mask=row_ok)


def _graph_refusal(why: str) -> str:
    """Why a graph-mode launch is refused: the TileLang kernel cannot take the call, and the Triton kernel it would
    fall back to is not graph safe."""
    return (f"use_cuda_graph with HopperPrefillConfig: the TileLang kernel {why}; the Triton kernel it would fall "
            "back to is not graph safe")


def _aligned(*values: int) -> bool:
    return all(v % 16 == 0 for v in values)


def _torch_scratch(size: int, alignment: int, stream: Optional[int]) -> torch.Tensor:
    """Triton's global scratch (device-made tensor descriptors live there), from torch's caching allocator."""
    return torch.empty(size, dtype=torch.int8, device="cuda")


def ensure_scratch_allocator() -> None:
    """Install ``_torch_scratch`` as Triton's allocator unless the application has set one (Triton's default
    raises at the first launch of a kernel that makes descriptors on the device)."""
    from triton.runtime import _allocation

    current = getattr(_allocation, "_allocator", None)
    null = getattr(_allocation, "NullAllocator", None)
    if current is None or null is None or isinstance(current.get(), null):
        triton.set_allocator(_torch_scratch)


class HopperPrefillLauncher:
    """Launches ``hopper_prefill_kernel`` for one plan: ``prepare`` fixes the plan, ``__call__`` launches it."""

    def __init__(self, device: torch.device):
        self.device = device
        self._upcast = device.type == "cpu"  # the interpreter's bf16 tl.dot is wrong (see paged_kernel.py)
        # TMA needs sm90+; the interpreter emulates descriptors on any machine.
        self._tma_capable = device.type == "cpu" or torch.cuda.get_device_capability(device)[0] >= 9
        self.grid = 0
        self._tile_counter = None  # the TileLang kernel's tile counter, one per launcher (a graph replays on it)

    def prepare(self, work: torch.Tensor, kv_indices: torch.Tensor, config: HopperPrefillConfig, *, num_entries: int,
                num_qo_heads: int, num_kv_heads: int, head_dim: int, page_size: int, causal: bool,
                sm_scale: float, graph: bool = False) -> None:
        """Fix the plan's buffers and constants; ``num_entries`` is the work list's tile count. ``graph``: the
        launch may be captured in a CUDA graph, so it must not fall back to the Triton kernel (its grid follows the
        plan): a plan or call the TileLang kernel does not take raises UnsupportedError instead."""
        group = num_qo_heads // num_kv_heads
        self.work, self.kv_indices, self.config = work, kv_indices, config
        self._heads = num_kv_heads if config.pack_gqa else num_qo_heads
        self.grid = num_entries * self._heads
        self._scalars = (float(sm_scale * LOG2E), self._heads, num_qo_heads, num_kv_heads)
        self._consts = dict(GROUP=group, HEAD_DIM=head_dim, PAGE_SIZE=page_size, BLOCK_M=config.block_m,
                            BLOCK_N=config.block_n, PACK_GQA=config.pack_gqa, CAUSAL=bool(causal))
        rows_per_token = group if config.pack_gqa else 1
        # Descriptor blocks are [tokens, rows per token, head_dim]: powers of two, at most 256 per axis.
        self._q_tma_shape = (config.use_tma and self._tma_capable and rows_per_token & (rows_per_token - 1) == 0
                             and config.block_m % rows_per_token == 0)
        self._kv_tma_shape = config.use_tma and self._tma_capable and page_size == RAGGED_PAGE_SIZE
        self._options = {"num_warps": config.num_warps, "num_stages": config.num_stages}
        # The TileLang kernel (prefill_tilelang.py) reads the plan's items as rows; CUDA only (the interpreter
        # runs the Triton kernel, the same tiling).
        self._tilelang = config.language == "tilelang" and self.device.type == "cuda"
        if self._tilelang:
            # Head sizes and page sizes it does not serve run the Triton kernel (decided once, at plan).
            self._tilelang = tl_prefill.supported(head_dim, 0 if page_size == RAGGED_PAGE_SIZE else page_size,
                                                  config.block_n, config.block_m, config.num_stages)
        self._graph = graph and self.device.type == "cuda"
        if self._graph and not self._tilelang:
            raise UnsupportedError(_graph_refusal(f"does not take head_dim {head_dim} with pages of {page_size} "
                                                  "tokens"))
        if self._tilelang:
            # In graph mode the kernel reads the tile count from the header and takes the buffer's whole capacity of
            # items: the launch's arguments stay the same from plan to plan.
            rows = (work.numel() - HEADER) // ITEM_FIELDS if self._graph else num_entries
            self._header = work[:HEADER]
            self._items = work[HEADER:HEADER + rows * ITEM_FIELDS].view(rows, ITEM_FIELDS)
            self._tl_args = dict(num_qo_heads=num_qo_heads, num_kv_heads=num_kv_heads, head_dim=head_dim,
                                 page_size=0 if page_size == RAGGED_PAGE_SIZE else page_size, causal=bool(causal),
                                 sm_scale=float(sm_scale), block_m=config.block_m, block_n=config.block_n,
                                 num_stages=config.num_stages, overlap=config.overlap, pingpong=config.pingpong,
                                 ctas=torch.cuda.get_device_properties(self.device).multi_processor_count
                                 if config.persistent else 0, graph=self._graph, fast_math=config.fast_math,
                                 dynamic=config.dynamic)
            if self._tile_counter is None:  # the dynamic kernel's counter: zero between launches (it resets it)
                self._tile_counter = torch.zeros(2, dtype=torch.int32, device=self.device)
            self._tl_kernels = {}  # (rows per page, dtype, lse written) -> compiled kernel, for this plan

    def __call__(self, q, k, v, out, lse, kv_strides):
        """Launch over the planned work list; k/v strides as in paged_kernel.launch_paged_attention."""
        if self.grid == 0:
            return None
        if self._tilelang:
            launched = self._launch_tilelang(q, k, v, out, lse, kv_strides)
            if launched is not None:
                return launched
            if self._graph:
                raise UnsupportedError(_graph_refusal("needs contiguous q, out and lse and K/V rows with heads "
                                                      "packed (NHD)"))
        esize = q.element_size()
        head_dim = q.shape[-1]
        q_tma = self._q_tma_shape and _aligned(q.data_ptr(), out.data_ptr(), *(s * esize for s in (
            q.stride(0), q.stride(1), out.stride(0), out.stride(1))))
        # Ragged K/V through descriptors: rows of [tokens, heads x head_dim], so the heads must be contiguous.
        kv_tma = self._kv_tma_shape and kv_strides[2] == head_dim and _aligned(
            k.data_ptr(), v.data_ptr(), kv_strides[1] * esize)
        if (q_tma or kv_tma) and self.device.type == "cuda":
            ensure_scratch_allocator()
        write_lse = lse is not None
        lse_arg = lse if write_lse else out  # never written when WRITE_LSE is False
        return hopper_prefill_kernel[(self.grid,)](
            q, k, v, out, lse_arg, self.work, self.kv_indices, q.stride(0), q.stride(1), out.stride(0),
            out.stride(1), lse.stride(0) if write_lse else 0, *kv_strides, *self._scalars, **self._consts,
            WRITE_LSE=write_lse, UPCAST=self._upcast, Q_TMA=q_tma, KV_TMA=kv_tma, **self._options)

    def _launch_tilelang(self, q, k, v, out, lse, kv_strides):
        """Launch the TileLang kernel; None (nothing launched) when q, out or K/V are not compact rows."""
        page_size = self._tl_args["page_size"]
        k_rows, v_rows = tl_prefill.rows_view(k, kv_strides, page_size), tl_prefill.rows_view(v, kv_strides, page_size)
        if k_rows is None or v_rows is None or not (q.is_contiguous() and out.is_contiguous()) or (
                lse is not None and not lse.is_contiguous()):
            return None
        key = (k_rows[1], q.dtype, lse is not None)
        kernel = self._tl_kernels.get(key)
        if kernel is None:  # once per plan and layout: the shape and the compile cache's lookup stay off the hot path
            kernel = self._tl_kernels[key] = tl_prefill.compiled_kernel(tl_prefill.kernel_shape(
                **self._tl_args, rows_per_page=k_rows[1], dtype=q.dtype, write_lse=lse is not None),
                tl_prefill.device_arch(q.device))
        args = (q, k_rows[0], v_rows[0], self.kv_indices, self._header, self._items, self._tile_counter, out) + (
            (lse,) if lse is not None else ())
        kernel(*args)
        return kernel
