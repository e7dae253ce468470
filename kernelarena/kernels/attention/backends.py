"""The paged-attention backends, one table row each, and the choice a wrapper's plan() makes among them.

plan() picks the backend for the batch (``choose``); run() only launches it (runner.py). Rows are in order of
preference: the first whose availability check passes serves the batch, and the last one serves every batch.

    cuda    small_decode.py + small_decode.cu: decode batches with fewer (request, KV head) pairs than SMs
    hopper  prefill_hopper.py + scheduler.py: prefill on sm90 by default, the TileLang kernel of
            prefill_tilelang.py wherever it serves the plan (prefill_hopper.tilelang_unavailable); with
            KERNELARENA_HOPPER_PREFILL=1 the Triton one where TileLang does not; =0 never. On any device when the
            wrapper was given a HopperPrefillConfig (language "tilelang": CUDA only); no window, soft-cap or
            split; CUDA graphs with a given persistent TileLang config only
    triton  paged_kernel.py + scheduler.py: every batch (decode, paged and ragged prefill), CPU included

Adding a backend is a module beside this one plus one row in ``TABLE`` (and its plan/launch in runner.py).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import torch

from . import prefill_hopper, small_decode


class AttentionProblem(NamedTuple):
    """What the choice depends on, for one plan."""

    decode: bool  # one query per request
    on_gpu: bool
    pairs: int  # requests x KV heads
    num_sms: int
    fixed_config: bool  # the wrapper was given a KernelConfig (Triton's)
    q_dtype: torch.dtype
    head_dim: int
    group: int  # query heads per KV head
    kv_rows: Callable[[], int]  # (token, KV head) rows of the batch's K/V, an upper bound; computed on demand
    sm: int = 0  # compute capability x 10 (90: Hopper); 0 on the CPU
    hopper_config: bool = False  # the wrapper was given a HopperPrefillConfig (it selects the Hopper kernel)
    hopper_unsupported: Optional[str] = None  # an option of the plan that the Hopper kernel lacks, if any
    page_size: int = 0  # tokens a K/V page (scheduler.RAGGED_PAGE_SIZE: ragged K/V)
    kv_layout: str = "NHD"  # the wrapper's paged K/V layout


class Backend(NamedTuple):
    name: str
    unavailable: Callable[[AttentionProblem], Optional[str]]  # why it cannot serve the batch, or None
    host_cost: str  # what run() costs the host with this backend


def _small_decode_unavailable(p: AttentionProblem) -> Optional[str]:
    if not (p.decode and p.on_gpu):
        return "decode batches on a CUDA device only"
    if not small_decode.enabled:
        return f"switched off ({small_decode.ENV_SWITCH}=0)"
    if p.fixed_config:
        return "a KernelConfig was given (it configures the Triton kernel)"
    if not 0 < p.pairs < p.num_sms:
        return "as many (request, KV head) pairs as SMs or more: the Triton kernel streams K/V faster"
    if not small_decode.supports(p.q_dtype, p.head_dim, p.group):
        return "dtype, head_dim or GQA group not built"
    if p.kv_rows() > small_decode.MAX_TOKEN_HEADS:
        return "more K/V rows than MAX_TOKEN_HEADS: the Triton kernel streams K/V faster"
    return None


def _hopper_prefill_unavailable(p: AttentionProblem) -> Optional[str]:
    if p.decode:
        return "prefill only (one query per request is decode)"
    if not p.hopper_config:
        if p.fixed_config:
            return "a KernelConfig was given (it configures the Triton kernel)"
        if prefill_hopper.mode == "off":
            return f"switched off ({prefill_hopper.ENV_SWITCH}=0)"
        if p.sm != 90:
            return "automatic on sm90 (Hopper) GPUs only; pass a HopperPrefillConfig to force it"
        if prefill_hopper.mode == "auto" and p.hopper_unsupported is None:
            why = prefill_hopper.tilelang_unavailable(p.head_dim, p.page_size, p.kv_layout)
            if why is not None:
                return f"{why} ({prefill_hopper.ENV_SWITCH}=1 runs the Triton Hopper kernel there)"
    return p.hopper_unsupported


TABLE: dict[str, Backend] = {b.name: b for b in (
    Backend("cuda", _small_decode_unavailable,
            "one ctypes call with a packed argument block (struct.pack_into) and the stream"),
    Backend("hopper", _hopper_prefill_unavailable, "Triton's ordinary launch (binder and cache lookup)"),
    Backend("triton", lambda p: None,
            "Triton's compiled-kernel launcher with the data pointers as integers (paged_kernel.py)"),
)}


def choose(p: AttentionProblem) -> str:
    """The first backend in TABLE that can serve ``p``."""
    for name, backend in TABLE.items():
        if backend.unavailable(p) is None:
            return name
    return name
