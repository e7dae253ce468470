"""Plan and launch in one call, for the dataset's destination-passing entry points.

The dataset embeds a solution's files verbatim and loads them as a package, so this file imports only
torch, numpy and its sibling kernel files. Planning copies the (device) page table to the host, plans
(scheduler.plan_work) and copies the schedule back in one transfer; launching runs the attention kernel (which
merges split chunks itself). run() does both per call; plan() keeps a plan for the calls that follow. Buffers are
allocated once per device and reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .kernel_config import choose_config
from .paged_kernel import launch_paged_attention
from .scheduler import plan_work

WORK_WORDS = 1 << 20
WORKSPACE_BYTES = 256 << 20
_BUFFERS: dict = {}


def _buffers(device: torch.device):
    """(pinned host words, their numpy view, device words, float32 workspace, number of SMs) per device."""
    key = str(device)
    if key not in _BUFFERS:
        on_gpu = device.type == "cuda"
        host = torch.zeros(WORK_WORDS, dtype=torch.int32, pin_memory=on_gpu)
        num_sms = torch.cuda.get_device_properties(device).multi_processor_count if on_gpu else 2
        _BUFFERS[key] = (host, host.numpy(), torch.zeros(WORK_WORDS, dtype=torch.int32, device=device),
                         torch.empty(WORKSPACE_BYTES // 4, dtype=torch.float32, device=device), num_sms)
    return _BUFFERS[key]


@dataclass(frozen=True)
class PagedPlan:
    """A schedule for one page table: the kernel configuration, the work list on the device and the partial
    result buffers (shared by every plan of a device: calls on one stream run one after another)."""

    config: Any
    work: torch.Tensor
    o_part: torch.Tensor
    lse_part: torch.Tensor
    split: bool
    group: int
    causal: bool
    equal_items: bool = False  # every item as long (the header's word 7): the static schedule alone


def plan_paged_attention(q, k_cache, qo_indptr, kv_indptr, kv_last_page_len, *, causal: bool, max_qo_len=None,
                         own_work: bool = False) -> PagedPlan:
    """Copy the page table to the host, plan the work list and copy it to the device. ``own_work``: into a new
    device buffer (a plan kept for later calls) rather than the per-device one the next call overwrites."""
    host, host_np, work, workspace, num_sms = _buffers(q.device)
    num_qo_heads, head_dim = q.shape[1], q.shape[2]
    page_size, num_kv_heads = k_cache.shape[1], k_cache.shape[2]
    group = num_qo_heads // num_kv_heads
    # .cpu() synchronizes the stream, so the previous call's copy out of `host` has finished.
    qo_np = qo_indptr.cpu().numpy() if isinstance(qo_indptr, torch.Tensor) else np.asarray(qo_indptr)
    kv_np = kv_indptr.cpu().numpy()
    last_np = kv_last_page_len.cpu().numpy()
    if max_qo_len is None:
        max_qo_len = int((qo_np[1:] - qo_np[:-1]).max(initial=0))
    config = choose_config(head_dim, group, max_qo_len * group, q.device.type == "cuda",
                           (len(kv_np) - 1) * num_kv_heads, num_sms)
    max_slots = workspace.numel() // (config.block_m * (head_dim + 1))
    rows = max_slots * config.block_m
    o_part, lse_part = workspace[: rows * head_dim].view(rows, head_dim), workspace[rows * head_dim:][:rows]
    summary = plan_work(
        host_np, qo_np, kv_np, last_np, page_size=page_size, group_size=group, num_kv_heads=num_kv_heads,
        block_m=config.block_m, block_n=config.block_n, causal=causal, window_left=-1,
        target_ctas=num_sms * config.ctas_per_sm, min_chunk=config.min_chunk, max_slots=max_slots,
        split_factor=config.split_factor)
    if own_work:
        work = torch.from_numpy(host_np[: summary.words].copy()).to(q.device)
    else:
        work[: summary.words].copy_(host[: summary.words], non_blocking=True)
    return PagedPlan(config, work, o_part, lse_part, summary.num_groups > 0, group, causal, bool(host_np[7]))


def launch_planned(plan: PagedPlan, q, k_cache, v_cache, kv_indices, sm_scale, output, lse) -> None:
    """The attention kernel on a planned page table: device work only."""
    config, num_sms = plan.config, _buffers(q.device)[4]
    indices = kv_indices if kv_indices.dtype == torch.int32 else kv_indices.int()
    launch_paged_attention(
        q, k_cache, v_cache, output, lse, plan.o_part, plan.lse_part, plan.work, indices,
        kv_strides=(k_cache.stride(0), k_cache.stride(1), k_cache.stride(2)), group_size=plan.group,
        page_size=k_cache.shape[1], block_m=config.block_m, block_n=config.block_n, num_warps=config.num_warps,
        num_stages=config.num_stages, num_programs=num_sms * config.ctas_per_sm, causal=plan.causal,
        window_left=-1, sm_scale=float(sm_scale), logits_soft_cap=0.0, split=plan.split, equal_items=plan.equal_items)


def paged_attention_into(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale,
                         output, lse, *, causal: bool, max_qo_len=None) -> None:
    """Attention of q [tokens, Hq, D] over NHD caches [pages, page_size, Hkv, D] into output and lse."""
    plan = plan_paged_attention(q, k_cache, qo_indptr, kv_indptr, kv_last_page_len, causal=causal,
                                max_qo_len=max_qo_len)
    launch_planned(plan, q, k_cache, v_cache, kv_indices, sm_scale, output, lse)
