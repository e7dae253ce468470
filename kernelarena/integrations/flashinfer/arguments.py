"""What FlashInfer's plan(), run() and forward() arguments say, and whether a definition can express it.

Each ``*_plan`` function binds a plan() call exactly as FlashInfer's own signature would, checks every keyword
against a table of the values a definition can express (a keyword not in the table is unknown), and returns
a ``ParsedPlan``: the call's ``PlanSettings`` (the definition's name, dtype, scale, how to read the axes from a
page table and how to plan kernelarena's wrapper of the same kind) and its tables. A call the definitions cannot
express raises ``Unsupported`` with the reason. Settings depend on nothing but the arguments other than the
tables, so ``settings_key`` lets a caller parse a wrapper's repeated plan() calls once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import numpy as np
import torch

RUN_KEYWORDS = frozenset({"out", "lse", "return_lse", "enable_pdl"})
_NEUTRAL_RUN = {"q_scale": None, "k_scale": None, "v_scale": None, "o_scale": None, "window_left": None,
                "sinks": None, "q_len_per_req": None, "skip_softmax_threshold_scale_factor": None,
                "kv_cache_sf": None, "lse_base": "log2", "lse_layout": "NH", "use_fp16_softmax": None,
                "uses_spcompress": None}


def _any(value: Any) -> bool:
    return True


def _none(value: Any) -> bool:
    return value is None


def _equals(expected: Any) -> Callable[[Any], bool]:
    return lambda value: value == expected


def _no_soft_cap(value: Any) -> bool:
    return value is None or value == 0


# Plan keywords a definition can express, each with the values it can express. A keyword not listed here is
# unknown and runs the original. Hints that change speed but not results (non_blocking, disable_split_kv,
# rope settings without rope) are accepted with any value.
_COMMON_PLAN = {
    "pos_encoding_mode": _equals("NONE"), "window_left": _equals(-1), "logits_soft_cap": _no_soft_cap,
    "q_data_type": _any, "kv_data_type": _any, "o_data_type": _any, "sm_scale": _any, "rope_scale": _any,
    "rope_theta": _any, "non_blocking": _any, "seq_lens": _none, "fixed_split_size": _none,
    "disable_split_kv": _any,
}
_DECODE_PLAN = {**_COMMON_PLAN, "window_right": _equals(0), "data_type": _any, "block_tables": _none,
                "q_len_per_req": _equals(1), "is_causal": lambda v: not v}
_PREFILL_PLAN = {**_COMMON_PLAN, "head_dim_vo": _any, "custom_mask": _none, "packed_custom_mask": _none,
                 "causal": bool, "use_fp16_qk_reduction": _equals(False), "prefix_len_ptr": _none,
                 "token_pos_in_items_ptr": _none, "token_pos_in_items_len": _equals(0), "max_item_len_ptr": _none,
                 "seq_lens_q": _none, "max_token_per_sequence": _any, "max_sequence_kv": _any,
                 "uniform_q_len": _any}
_PAGED_PREFILL_PLAN = {**_PREFILL_PLAN, "block_tables": _none}
_RAGGED_PREFILL_PLAN = {**_PREFILL_PLAN, "v_indptr": _none, "o_indptr": _none}


class Unsupported(Exception):
    """A call the definitions cannot express; its message is the reason logged."""


@dataclass(frozen=True)
class PlanSettings:
    """What one plan() call's arguments other than its page table (or ragged indptr) say: a serving loop passes
    the same settings at every step with a new table, so the adapter decides from them once (see attention.py)."""

    definition: str
    q_dtype: torch.dtype
    sm_scale: float
    causal: bool
    q_heads: Tuple[int, int]
    """(Hq, D): q's shape at run() is (total_q, Hq, D)."""
    kv_shape: Tuple[int, ...]
    """Shape of one K (or V) row block as run() will pass it: (page_size, Hkv, D) paged, (Hkv, D) ragged."""
    axes: Callable[[int, tuple], Dict[str, int]]
    """(pages in the cache run() last saw, the call's tables) -> the axes the call fixes."""
    plan_ours: Callable[[Any, tuple], None]
    """Plans a kernelarena wrapper of this kind with these settings and a call's tables."""


class ParsedPlan(NamedTuple):
    """One plan() call, parsed: its settings and its tables, in the definition's input order."""

    settings: PlanSettings
    tables: Tuple[Any, ...]


PLAIN_TYPES = frozenset({int, float, bool, str, type(None), torch.dtype})


def settings_key(args: tuple, n_tables: int, kwargs: dict) -> Optional[tuple]:
    """A key equal for two plan() calls whose settings (every argument but the first ``n_tables`` positional ones)
    are the same, or None when a setting is not a plain value (a tensor compares element-wise, and a call that
    passes one is not one to remember). Types are part of the key: head_dim 128 and 128.0 name different
    definitions. The key is flat (0.6 us to build where nested tuples took 0.8); the positional count and the
    key's length fix where the values, the keyword names and the types are in it."""
    if len(args) < n_tables:
        return None
    values = [*args[n_tables:], *kwargs.values()]
    types = [*map(type, values)]
    if not PLAIN_TYPES.issuperset(types):
        return None
    return (len(args), *values, *kwargs, *types)


def neutral_run(kwargs: dict) -> bool:
    missing = object()
    return all(k in RUN_KEYWORDS or _NEUTRAL_RUN.get(k, missing) == v for k, v in kwargs.items())


_NEUTRAL_FORWARD = {"pos_encoding_mode": _equals("NONE"), "window_left": _equals(-1),
                    "use_fp16_qk_reduction": _equals(False), "logits_soft_cap": _no_soft_cap,
                    "q_scale": lambda v: v is None or v == 1.0, "k_scale": lambda v: v is None or v == 1.0,
                    "v_scale": lambda v: v is None or v == 1.0, "rope_scale": _any, "rope_theta": _any}


def forward_matches(route: Any, kwargs: dict) -> bool:
    """True when the deprecated forward()'s settings are those the route was planned with (forward() sets
    them on the wrapper, overriding the plan's, before it calls run())."""
    if bool(kwargs.get("causal", False)) != route.causal:  # forward's causal defaults to False
        return False
    scale = kwargs.get("sm_scale")
    if scale is not None and not math.isclose(scale, route.sm_scale, rel_tol=1e-6):
        return False
    return all(name in ("causal", "sm_scale") or _NEUTRAL_FORWARD.get(name, lambda v: False)(value)
               for name, value in kwargs.items())


def host_array(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values
    return values.numpy() if values.device.type == "cpu" else values.cpu().numpy()


def _dtype(value: Any) -> torch.dtype:
    return getattr(torch, value) if isinstance(value, str) else value


def _check_keywords(table: Dict[str, Callable[[Any], bool]], kwargs: dict) -> None:
    for name, value in kwargs.items():
        accepts = table.get(name)
        if accepts is None:
            raise Unsupported(f"unknown argument {name}")
        if not accepts(value):
            raise Unsupported(f"{name}={value!r}")


def _common(kwargs: dict, head_dim: int) -> Tuple[torch.dtype, float]:
    # FlashInfer's older spelling: data_type is the q and kv dtype when q_data_type is not given.
    q_dtype = _dtype(kwargs.get("q_data_type") or kwargs.get("data_type") or "float16")
    for name in ("kv_data_type", "o_data_type", "data_type"):
        other = kwargs.get(name)
        if other is not None and _dtype(other) != q_dtype:
            raise Unsupported(f"{name}={other} differs from q_data_type={q_dtype}")
    if kwargs.get("head_dim_vo") not in (None, head_dim):
        raise Unsupported(f"head_dim_vo={kwargs['head_dim_vo']} differs from head_dim_qk={head_dim}")
    sm_scale = kwargs.get("sm_scale")
    return q_dtype, float(sm_scale) if sm_scale is not None else 1.0 / math.sqrt(head_dim)


def _rows(values: Any) -> int:
    # len() of a tensor goes through torch's Python-level __len__ (0.4 us); shape[0] is read in C.
    try:
        return values.shape[0]
    except AttributeError:
        return len(values)


def _paged_axes(num_pages: int, tables: tuple) -> Dict[str, int]:
    batch, used = _rows(tables[0]) - 1, _rows(tables[1])
    return {"batch_size": batch, "len_indptr": batch + 1, "num_kv_indices": used, "num_pages": max(num_pages, used)}


def _paged_prefill_axes(num_pages: int, tables: tuple) -> Dict[str, int]:
    qo = host_array(tables[0])
    batch, used = len(qo) - 1, _rows(tables[2])
    return {"batch_size": batch, "len_indptr": batch + 1, "total_q": int(qo[-1]), "num_kv_indices": used,
            "num_pages": max(num_pages, used)}


def _ragged_axes(num_pages: int, tables: tuple) -> Dict[str, int]:
    qo, kv = host_array(tables[0]), host_array(tables[1])
    batch = len(qo) - 1
    return {"batch_size": batch, "len_indptr": batch + 1, "total_q": int(qo[-1]), "total_kv": int(kv[-1])}


def decode_plan(indptr, indices, last_page_len, num_qo_heads, num_kv_heads, head_dim, page_size, *deprecated,
                **kwargs) -> ParsedPlan:
    if deprecated:
        raise Unsupported("positional plan arguments after page_size (deprecated by FlashInfer)")
    _check_keywords(_DECODE_PLAN, kwargs)
    q_dtype, sm_scale = _common(kwargs, head_dim)

    def plan_ours(wrapper, tables):
        wrapper.plan(*tables, num_qo_heads, num_kv_heads, head_dim, page_size, q_data_type=q_dtype,
                     sm_scale=sm_scale)

    settings = PlanSettings(f"gqa_paged_decode_h{num_qo_heads}_kv{num_kv_heads}_d{head_dim}_ps{page_size}",
                            q_dtype, sm_scale, False, (num_qo_heads, head_dim), (page_size, num_kv_heads, head_dim),
                            _paged_axes, plan_ours)
    return ParsedPlan(settings, (indptr, indices, last_page_len))


def paged_prefill_plan(qo_indptr, paged_kv_indptr, paged_kv_indices, paged_kv_last_page_len, num_qo_heads,
                       num_kv_heads, head_dim_qk, page_size, **kwargs) -> ParsedPlan:
    _check_keywords(_PAGED_PREFILL_PLAN, kwargs)
    if not kwargs.get("causal", False):
        raise Unsupported("causal=False (the paged prefill definitions are causal)")
    q_dtype, sm_scale = _common(kwargs, head_dim_qk)

    def plan_ours(wrapper, tables):
        qo, kv_indptr, kv_indices, last_page_len = tables
        wrapper.plan(host_array(qo), kv_indptr, kv_indices, last_page_len, num_qo_heads, num_kv_heads, head_dim_qk,
                     page_size, causal=True, q_data_type=q_dtype, sm_scale=sm_scale)

    name = f"gqa_paged_prefill_causal_h{num_qo_heads}_kv{num_kv_heads}_d{head_dim_qk}_ps{page_size}"
    settings = PlanSettings(name, q_dtype, sm_scale, True, (num_qo_heads, head_dim_qk),
                            (page_size, num_kv_heads, head_dim_qk), _paged_prefill_axes, plan_ours)
    return ParsedPlan(settings, (qo_indptr, paged_kv_indptr, paged_kv_indices, paged_kv_last_page_len))


def ragged_prefill_plan(qo_indptr, kv_indptr, num_qo_heads, num_kv_heads, head_dim_qk, **kwargs) -> ParsedPlan:
    _check_keywords(_RAGGED_PREFILL_PLAN, kwargs)
    if not kwargs.get("causal", False):
        raise Unsupported("causal=False (the ragged prefill definitions are causal)")
    q_dtype, sm_scale = _common(kwargs, head_dim_qk)

    def plan_ours(wrapper, tables):
        wrapper.plan(host_array(tables[0]), host_array(tables[1]), num_qo_heads, num_kv_heads, head_dim_qk,
                     causal=True, q_data_type=q_dtype, sm_scale=sm_scale)

    settings = PlanSettings(f"gqa_ragged_prefill_causal_h{num_qo_heads}_kv{num_kv_heads}_d{head_dim_qk}", q_dtype,
                            sm_scale, True, (num_qo_heads, head_dim_qk), (num_kv_heads, head_dim_qk), _ragged_axes,
                            plan_ours)
    return ParsedPlan(settings, (qo_indptr, kv_indptr))
