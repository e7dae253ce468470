"""Plan/run machinery shared by the attention wrappers: buffers, host schedule, fixed-grid launches.

``AttentionRunner.plan`` builds the schedule on the host (``scheduler.plan_work``, in C through
``native_plan`` when it is available and enabled, else the vectorized numpy original) into one of two pinned
int32 staging buffers (alternating, so a plan never waits for the previous plan's transfer) and
copies the used prefix to the device in one transfer; it also fixes every launch argument that does not come
with run()'s tensors. ``run`` only launches one kernel (split chunks are merged inside it), with a persistent
grid that depends on nothing but the device, reading every per-batch quantity from device buffers owned here.
Small decode batches (fewer (request, KV head) pairs than SMs, few K/V rows) go to the CUDA kernel of
``small_decode`` instead, planned by its own schedule into the same buffers; prefill may go to the Hopper
kernel of ``prefill_hopper`` (opt-in, see backends.py; same work list, never split, one program per item);
everything else to Triton.
A CUDA graph captured around ``run`` stays
valid across later ``plan`` calls as long as no buffer has to grow: with ``use_cuda_graph=True`` growth is
refused (UnsupportedError) and the kernel configuration chosen by the first plan is kept.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Union

import numpy as np
import torch

from kernelarena.errors import ShapeError, UnsupportedError

from . import native_plan, small_decode
from .backends import TABLE, AttentionProblem, choose
from .kernel_config import KernelConfig, choose_config
from .paged_kernel import PagedAttentionLauncher, default_sm_scale
from .prefill_hopper import HopperPrefillConfig, HopperPrefillLauncher, choose_hopper_config
from .scheduler import plan_work
from .staging import StagedCopy

HostArray = Union[np.ndarray, torch.Tensor]
SUPPORTED_HEAD_DIMS = (64, 128, 256)
SUPPORTED_DTYPES = (torch.bfloat16, torch.float16)
DEFAULT_WORK_WORDS = 1 << 20  # 4 MiB of int32: about 87k work items


def host_array(values: HostArray) -> np.ndarray:
    """A host view/copy of an index tensor (a device tensor costs one synchronizing copy)."""
    if isinstance(values, np.ndarray):
        return values
    return values.numpy() if values.is_cpu else values.cpu().numpy()


class PlannedProblem(NamedTuple):
    """Everything run() needs besides the tensors: fixed by plan() (a NamedTuple: a frozen dataclass of
    12 fields took 1.4 us to build, this 0.3 us)."""

    num_qo_heads: int
    num_kv_heads: int
    head_dim: int
    page_size: int
    causal: bool
    window_left: int
    logits_soft_cap: float
    sm_scale: float
    q_dtype: torch.dtype
    kv_dtype: torch.dtype
    total_q: int
    num_groups: int


class AttentionRunner:
    """Owns the schedule buffers of one wrapper; see the module docstring."""

    def __init__(self, float_workspace_buffer: torch.Tensor, *, use_cuda_graph: bool = False,
                 config: Union[KernelConfig, HopperPrefillConfig, None] = None, num_sms: Optional[int] = None,
                 max_work_words: int = DEFAULT_WORK_WORDS, kv_layout: str = "NHD"):
        self.device = float_workspace_buffer.device
        self.on_gpu = self.device.type == "cuda"
        self.use_cuda_graph = use_cuda_graph
        self.kv_layout = kv_layout  # the caller's paged K/V layout: the TileLang prefill kernel reads NHD rows
        self._workspace = float_workspace_buffer.view(torch.uint8).view(-1)
        self._fixed_config = config
        self._configs: dict = {}  # (head_dim, group, max_rows, fewer pairs than SMs) -> choose_config's answer
        self.config: Union[KernelConfig, HopperPrefillConfig, None] = None
        if isinstance(config, HopperPrefillConfig) and use_cuda_graph and not config.graph_safe:
            raise UnsupportedError(f"HopperPrefillConfig {config.label} with use_cuda_graph=True: its grid follows "
                                   "each plan; the TileLang kernel with persistent blocks (language='tilelang', "
                                   "persistent=True) replays in a graph, or use a KernelConfig (or none)")
        cap = torch.cuda.get_device_capability(self.device) if self.on_gpu else (0, 0)
        self.sm = cap[0] * 10 + cap[1]
        if num_sms is None:
            num_sms = torch.cuda.get_device_properties(self.device).multi_processor_count if self.on_gpu else 2
        self.num_sms = num_sms
        self._work = torch.zeros(max_work_words, dtype=torch.int32, device=self.device)
        self._staged = StagedCopy(self._work)  # pinned staging buffers, used in turn, and the copy to _work
        self._launcher = PagedAttentionLauncher(self.device)
        self._indices: Optional[torch.Tensor] = None  # owned copy of kv_indices (graph mode, ragged)
        self._kv_indices: Optional[torch.Tensor] = None
        self._o_part = self._lse_part = None
        self._partial_shape, self._max_slots = None, 0
        self.problem: Optional[PlannedProblem] = None
        # scheduler.plan_work in C, used while native_plan.enabled (None: unavailable or switched off when this
        # runner was made, see native_plan.unavailable_reason()); the first runner of a process loads or builds it
        self._native = native_plan.planner()
        # small_decode.cu for decode batches with fewer (request, KV head) pairs than SMs, per variant (None:
        # it failed to build or load, the reason in small_decode_failures); _small: the one in use, if any
        self._small_launchers: dict = {}
        self.small_decode_failures: dict = {}
        self._small: Optional[small_decode.SmallDecodeLauncher] = None
        self._counters: Optional[torch.Tensor] = None
        self._small_views: tuple = (None, None, None)  # ((group, head_dim), partial outputs, partial lses)
        self._kv_list: list = []
        self._hopper: Optional[HopperPrefillLauncher] = None  # set by a plan that chose the Hopper prefill kernel
        self._hopper_launcher: Optional[HopperPrefillLauncher] = None

    # ----------------------------------------------------------------------------------------- plan
    def plan(self, qo_indptr: Optional[HostArray], kv_page_indptr: HostArray, kv_last_page_len: HostArray,
             kv_indices: HostArray, *, num_qo_heads: int, num_kv_heads: int, head_dim: int, page_size: int,
             causal: bool, window_left: int, logits_soft_cap: Optional[float], sm_scale: Optional[float],
             q_dtype: torch.dtype, kv_dtype: Optional[torch.dtype], kv_chunk_size: Optional[int],
             max_qo_len: Optional[int] = None) -> None:
        """Schedule one batch (see AttentionRunner); qo_indptr None: one query per request (decode).

        Raises ShapeError/UnsupportedError on bad input. Every line here is host time on the serving path
        (the target: plan() within 50 us on the H100 machine): benchmarks/profile_plan.py measures it.
        """
        if num_qo_heads % num_kv_heads:
            raise ShapeError(f"num_qo_heads ({num_qo_heads}) must be a multiple of num_kv_heads ({num_kv_heads})")
        if head_dim not in SUPPORTED_HEAD_DIMS:
            raise UnsupportedError(f"head_dim {head_dim} not supported (supported: {SUPPORTED_HEAD_DIMS})")
        kv_dtype = q_dtype if kv_dtype is None else kv_dtype
        if q_dtype not in SUPPORTED_DTYPES or kv_dtype != q_dtype:
            raise UnsupportedError(f"q/kv dtypes {q_dtype}/{kv_dtype} not supported: both bf16 or both fp16")
        native = self._native if native_plan.enabled else None
        # The native planner reads CPU tensors and numpy arrays in place (tensor.numpy() costs 0.7 us, len() of
        # a tensor 0.4 us) and finds the batch's sizes in the same pass; None: numpy, as without it.
        extent = None if native is None else native.read_batch(qo_indptr, kv_page_indptr, kv_last_page_len)
        if extent is not None:
            qo_np, kv_np, last_np = qo_indptr, kv_page_indptr, kv_last_page_len
            batch, total_q, most = extent
            if qo_np is None or (max_qo_len is None and batch and self._fixed_config is None):
                max_qo_len = most
        else:
            native = None
            kv_np, last_np = host_array(kv_page_indptr), host_array(kv_last_page_len)
            qo_np = None if qo_indptr is None else host_array(qo_indptr)
            batch = len(kv_np) - 1
            if batch < 0 or len(last_np) != batch or (qo_np is not None and len(qo_np) != batch + 1):
                raise ShapeError(f"qo_indptr ({batch + 1 if qo_np is None else len(qo_np)}), kv_indptr "
                                 f"({len(kv_np)}) and kv_last_page_len ({len(last_np)}) must describe the same "
                                 "batch: [b+1], [b+1], [b]")
            total_q = batch if qo_np is None else int(qo_np[-1])
            if qo_np is None:
                max_qo_len = 1
            elif max_qo_len is None and batch and self._fixed_config is None:
                qo_len = qo_np[1:] - qo_np[:-1]
                max_qo_len = int(qo_len[qo_len.argmax()])  # argmax: a fifth of the time of max()
        group = num_qo_heads // num_kv_heads
        launcher = self._small_decode_launcher(qo_np is None, batch * num_kv_heads, group, head_dim, q_dtype,
                                               kv_np, page_size)
        if launcher is not None:
            try:
                self._plan_small_decode(launcher, self._kv_list, last_np, kv_indices, num_qo_heads=num_qo_heads,
                                        num_kv_heads=num_kv_heads, head_dim=head_dim, page_size=page_size,
                                        window_left=window_left, logits_soft_cap=logits_soft_cap,
                                        sm_scale=sm_scale, q_dtype=q_dtype, kv_chunk_size=kv_chunk_size)
                return
            except UnsupportedError:
                if self.use_cuda_graph and self.problem is not None:
                    raise  # a captured graph cannot switch kernels
        self._small = None
        hopper = self._hopper_prefill_config(qo_np is None, batch * num_kv_heads, group, head_dim, q_dtype,
                                             window_left, logits_soft_cap, kv_chunk_size, page_size)
        if hopper is not None and self._plan_hopper(
                hopper, native, qo_np, kv_np, last_np, kv_indices, num_qo_heads=num_qo_heads,
                num_kv_heads=num_kv_heads, head_dim=head_dim, page_size=page_size, causal=causal,
                sm_scale=sm_scale, q_dtype=q_dtype, kv_dtype=kv_dtype, total_q=total_q):
            return
        self._hopper = None
        config = self._choose_config(head_dim, group, (max_qo_len or 0) * group, batch * num_kv_heads)
        max_slots = self._partials(config.block_m, head_dim)
        num_programs = self.num_sms * config.ctas_per_sm
        words = self._staged.begin()
        try:
            summary = (plan_work if native is None else native)(
                words, qo_np, kv_np, last_np, page_size=page_size, group_size=group,
                num_kv_heads=num_kv_heads, block_m=config.block_m, block_n=config.block_n, causal=causal,
                window_left=window_left, target_ctas=num_programs, min_chunk=config.min_chunk,
                split_size=kv_chunk_size, max_slots=max_slots, split_factor=config.split_factor)
        except ValueError as exc:
            raise UnsupportedError(f"batch too large for this wrapper's buffers: {exc}") from exc
        self._staged.commit(summary.words)
        self._kv_indices = self._place_indices(kv_indices)
        self.config = config
        cap = float(logits_soft_cap or 0.0)
        scale = default_sm_scale(head_dim) if sm_scale is None else float(sm_scale)
        self.problem = PlannedProblem(num_qo_heads, num_kv_heads, head_dim, page_size, causal, window_left, cap,
                                      scale, q_dtype, kv_dtype, total_q, summary.num_groups)
        self._launcher.prepare(
            self._o_part, self._lse_part, self._work, self._kv_indices, group_size=group, head_dim=head_dim,
            page_size=page_size, block_m=config.block_m, block_n=config.block_n, num_warps=config.num_warps,
            num_stages=config.num_stages, num_programs=num_programs, causal=causal, window_left=window_left,
            sm_scale=scale, logits_soft_cap=cap,
            # A captured graph must survive a re-plan that splits: in graph mode the merge is always compiled,
            # and the schedule stays the runtime choice (a later plan's items may differ in length).
            split=self.use_cuda_graph or summary.num_groups > 0,
            equal_items=not self.use_cuda_graph and bool(words[7]))
        self.summary = summary

    # ------------------------------------------------------------------------ Hopper prefill
    def _hopper_prefill_config(self, decode: bool, pairs: int, group: int, head_dim: int, q_dtype: torch.dtype,
                               window_left: int, logits_soft_cap: Optional[float],
                               kv_chunk_size: Optional[int], page_size: int) -> Optional[HopperPrefillConfig]:
        """The Hopper prefill kernel's config if the backend table picks it for this plan, else None.

        Raises UnsupportedError when a HopperPrefillConfig was given for a plan that kernel cannot serve."""
        explicit = isinstance(self._fixed_config, HopperPrefillConfig)
        if not explicit and (self.use_cuda_graph or decode or self._fixed_config is not None):
            return None  # the common paths decide without building the problem
        lacks = [name for name, on in (("a sliding window", window_left >= 0),
                                       ("logits soft-capping", bool(logits_soft_cap)),
                                       ("kv_chunk_size (it never splits KV)", kv_chunk_size is not None)) if on]
        problem = AttentionProblem(decode, self.on_gpu, pairs, self.num_sms, self._fixed_config is not None and
                                   not explicit, q_dtype, head_dim, group, lambda: 0, self.sm, explicit,
                                   f"the Hopper prefill kernel has no {', '.join(lacks)}" if lacks else None,
                                   page_size, self.kv_layout)
        if choose(problem) == "hopper":
            return self._fixed_config if explicit else choose_hopper_config(head_dim, self.on_gpu)
        if explicit:
            raise UnsupportedError(f"HopperPrefillConfig given, but {TABLE['hopper'].unavailable(problem)}")
        return None

    def _plan_hopper(self, config: HopperPrefillConfig, native, qo_np, kv_np, last_np, kv_indices, *,
                     num_qo_heads, num_kv_heads, head_dim, page_size, causal, sm_scale, q_dtype, kv_dtype,
                     total_q) -> bool:
        """Plan the batch for the Hopper prefill kernel: the work list unsplit (one item per tile). Returns
        False, having planned nothing, when the Triton Hopper kernel was chosen automatically but the batch has
        fewer (tile, head) programs than SMs (the portable kernel splits KV to fill the GPU). The TileLang kernel
        takes those too: one request of 512 queries over 512 / 4096 keys (128 tiles) ran in 17.5 / 65.7 us on it,
        22.0 / 97.2 on the portable kernel (H200, 2026-12-04, same run, results/attention_prefill_latest.md)."""
        group = num_qo_heads // num_kv_heads
        heads = num_kv_heads if config.pack_gqa else num_qo_heads
        words = self._staged.begin()
        try:
            summary = (plan_work if native is None else native)(
                words, qo_np, kv_np, last_np, page_size=page_size, group_size=group if config.pack_gqa else 1,
                num_kv_heads=heads, block_m=config.block_m, block_n=config.block_n, causal=causal, window_left=-1,
                target_ctas=1, min_chunk=config.block_n)  # one program: nothing is ever split
        except ValueError as exc:
            raise UnsupportedError(f"batch too large for this wrapper's buffers: {exc}") from exc
        if self._fixed_config is None and config.language != "tilelang" and summary.num_entries * heads < self.num_sms:
            return False
        self._staged.commit(summary.words)
        self._kv_indices = self._place_indices(kv_indices)
        if self._hopper_launcher is None:
            self._hopper_launcher = HopperPrefillLauncher(self.device)
        scale = default_sm_scale(head_dim) if sm_scale is None else float(sm_scale)
        self._hopper_launcher.prepare(self._work, self._kv_indices, config, num_entries=summary.num_entries,
                                      num_qo_heads=num_qo_heads, num_kv_heads=num_kv_heads, head_dim=head_dim,
                                      page_size=page_size, causal=causal, sm_scale=scale, graph=self.use_cuda_graph)
        self._hopper = self._hopper_launcher
        self.config = config
        self.problem = PlannedProblem(num_qo_heads, num_kv_heads, head_dim, page_size, causal, -1, 0.0, scale,
                                      q_dtype, kv_dtype, total_q, 0)
        self.summary = summary
        return True

    # ------------------------------------------------------------------------ small-batch decode
    def _small_decode_launcher(self, decode: bool, pairs: int, group: int, head_dim: int, q_dtype: torch.dtype,
                               kv_indptr: HostArray, page_size: int) -> Optional[small_decode.SmallDecodeLauncher]:
        """The CUDA small-batch decode launcher this plan should use, or None for the Triton kernel (the
        backend table's choice, backends.py)."""
        if self.use_cuda_graph and self.problem is not None:  # a captured graph keeps the first plan's kernel
            if self._small is not None:
                self._kv_list = small_decode.as_list(kv_indptr)
            return self._small
        def kv_rows() -> int:
            self._kv_list = small_decode.as_list(kv_indptr)  # one conversion, for this test and the schedule
            return self._kv_list[-1] * page_size * (pairs // max(len(self._kv_list) - 1, 1))

        problem = AttentionProblem(decode, self.on_gpu, pairs, self.num_sms, self._fixed_config is not None,
                                   q_dtype, head_dim, group, kv_rows)
        if choose(problem) != "cuda":
            return None
        variant = small_decode.variant_for(q_dtype, head_dim, group)
        if variant not in self._small_launchers:
            try:
                self._small_launchers[variant] = small_decode.SmallDecodeLauncher(variant, self.device)
            except (UnsupportedError, OSError) as exc:  # no nvcc, a failed build: the Triton kernel serves
                self._small_launchers[variant] = None
                self.small_decode_failures[variant] = str(exc)
        return self._small_launchers[variant]

    def _plan_small_decode(self, launcher, kv_np, last_np, kv_indices, *, num_qo_heads, num_kv_heads, head_dim,
                           page_size, window_left, logits_soft_cap, sm_scale, q_dtype, kv_chunk_size) -> None:
        group = num_qo_heads // num_kv_heads
        slot_floats = group * (head_dim + 1)
        max_items = self._workspace.numel() // (slot_floats * 4)
        programs = self.num_sms * small_decode.CTAS_PER_SM
        schedule = small_decode.plan_small_decode(  # UnsupportedError: the caller plans for Triton instead
            kv_np, last_np, page_size=page_size, num_kv_heads=num_kv_heads, window_left=window_left,
            target_items=programs, min_chunk=small_decode.MIN_CHUNK, max_items=max_items, chunk=kv_chunk_size)
        n = len(schedule.words)
        if max(n, small_decode.MIN_WORDS) > self._work.numel():
            raise UnsupportedError(f"batch too large for this wrapper's buffers: {n} words > {self._work.numel()}")
        words = self._staged.begin()
        words[:n] = schedule.words
        self._staged.commit(n)
        if self._counters is None or self._counters.numel() < schedule.pairs:
            if self.use_cuda_graph and self._counters is not None:
                raise UnsupportedError("with use_cuda_graph the first plan() must have the most (request, head) pairs")
            self._counters = torch.zeros(max(schedule.pairs, self.num_sms), dtype=torch.int32, device=self.device)
        self._kv_indices = self._place_indices(kv_indices)
        o_part, lse_part = self._small_parts(group, head_dim, max_items)
        scale = default_sm_scale(head_dim) if sm_scale is None else float(sm_scale)
        grid = programs if self.use_cuda_graph else max(1, min(schedule.items, programs))
        launcher.prepare(o_part=o_part, lse_part=lse_part, counters=self._counters, words=self._work,
                         kv_indices=self._kv_indices, num_kv_heads=num_kv_heads, page_size=page_size,
                         window_left=window_left, sm_scale=scale, logits_soft_cap=float(logits_soft_cap or 0.0),
                         grid=grid,
                         inline_words=None if self.use_cuda_graph or not small_decode.INLINE else schedule.words)
        self._small = launcher
        self._hopper = None
        batch = schedule.words[3]
        self.problem = PlannedProblem(num_qo_heads, num_kv_heads, head_dim, page_size, False, window_left,
                                      float(logits_soft_cap or 0.0), scale, q_dtype, q_dtype, batch,
                                      int(schedule.items > schedule.pairs))
        self.config = None
        self.summary = schedule

    def _small_parts(self, group: int, head_dim: int, max_items: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The workspace as small_decode's partial outputs [items, group, head_dim] and lses (cached views)."""
        key = (group, head_dim)
        if self._small_views[0] != key:
            parts = self._workspace[: max_items * group * (head_dim + 1) * 4].view(torch.float32)
            self._small_views = (key, parts[: max_items * group * head_dim], parts[max_items * group * head_dim:])
        return self._small_views[1], self._small_views[2]

    def _partials(self, block_m: int, head_dim: int) -> int:
        """Carve the float workspace into partial outputs and lses; returns how many slots fit."""
        if self._partial_shape != (block_m, head_dim):
            max_slots = self._workspace.numel() // (block_m * (head_dim + 1) * 4)
            rows = max_slots * block_m
            self._o_part = self._workspace[: rows * head_dim * 4].view(torch.float32).view(rows, head_dim)
            self._lse_part = self._workspace[rows * head_dim * 4:][: rows * 4].view(torch.float32)
            self._partial_shape, self._max_slots = (block_m, head_dim), max_slots
        return self._max_slots

    def _choose_config(self, head_dim: int, group: int, max_rows: int, pairs: int) -> KernelConfig:
        if self.use_cuda_graph and self.config is not None:
            return self.config  # a captured graph bakes in the kernel and its tile sizes
        if self._fixed_config is not None:
            return self._fixed_config
        key = (head_dim, group, max_rows, 0 < pairs < self.num_sms)
        config = self._configs.get(key)
        if config is None:  # choose_config is a pure function of the key; a lookup costs a fifth of a call
            if len(self._configs) >= 256:
                self._configs.clear()
            config = self._configs[key] = choose_config(head_dim, group, max_rows, self.on_gpu, pairs,
                                                        self.num_sms)
        return config

    def reserve_page_indices(self, capacity: int) -> None:
        """Own a device buffer for up to ``capacity`` page indices now, at an address later plans keep.

        With ``use_cuda_graph`` the first plan() fixes that buffer's size and a later, larger batch is refused;
        a caller that knows the most pages a batch will use (FlashInfer's fixed ``paged_kv_indices_buffer``)
        reserves that many before the first plan. A smaller ``capacity`` than the buffer already has is a
        no-op. Raises UnsupportedError when growing it would move a buffer a captured graph may read (graph
        mode, after a plan)."""
        if capacity < 1:
            raise ShapeError(f"reserve_page_indices({capacity}): capacity must be at least 1")
        if self._indices is not None and self._indices.numel() >= capacity:
            return
        if self.use_cuda_graph and self.problem is not None:
            raise UnsupportedError(f"reserve_page_indices({capacity}) after plan() with use_cuda_graph: the "
                                   f"{0 if self._indices is None else self._indices.numel()} indices planned "
                                   "first are fixed; reserve before the first plan()")
        self._indices = torch.empty(capacity, dtype=torch.int32, device=self.device)

    def _place_indices(self, kv_indices: HostArray) -> torch.Tensor:
        """Device int32 page indices; copied into an owned buffer when the address must stay fixed."""
        host = isinstance(kv_indices, np.ndarray)
        if not (host or self.use_cuda_graph) and kv_indices.dtype == torch.int32 and kv_indices.device == self.device:
            return kv_indices
        n = len(kv_indices)
        if self._indices is None or self._indices.numel() < max(n, 1):
            if self.use_cuda_graph and self._indices is not None:
                raise UnsupportedError(f"{n} page indices exceed the {self._indices.numel()} planned first; with "
                                       "use_cuda_graph the first plan() must be the largest")
            self._indices = torch.empty(max(n, 1), dtype=torch.int32, device=self.device)
        source = torch.from_numpy(np.ascontiguousarray(kv_indices, dtype=np.int32)) if host else kv_indices
        self._indices[:n].copy_(source, non_blocking=True)
        return self._indices

    # ------------------------------------------------------------------------------------------ run
    def run(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kv_strides: tuple[int, int, int],
            out: Optional[torch.Tensor], lse: Optional[torch.Tensor], return_lse: bool):
        """Launch attention for the planned batch; returns out or (out, lse)."""
        p = self.problem
        if p is None:
            raise UnsupportedError("run() called before plan()")
        if q.dtype != p.q_dtype or k.dtype != p.kv_dtype:
            raise ShapeError(f"q/kv dtypes {q.dtype}/{k.dtype} differ from the planned {p.q_dtype}/{p.kv_dtype}")
        if q.shape[1:] != (p.num_qo_heads, p.head_dim) or q.shape[0] < p.total_q or q.stride(-1) != 1:
            raise ShapeError(f"q {tuple(q.shape)} does not match the plan: [>= {p.total_q}, {p.num_qo_heads}, "
                             f"{p.head_dim}] with a contiguous last axis")
        if out is None:
            out = torch.empty_like(q)
        if return_lse and lse is None:
            lse = torch.empty(q.shape[:2], dtype=torch.float32, device=q.device)
        lse_arg = lse if return_lse or lse is not None else None
        launcher = self._launcher if self._small is None else self._small
        if self._hopper is not None:
            launcher = self._hopper
        self.last_kernel = launcher(q, k, v, out, lse_arg, kv_strides)
        return (out, lse) if return_lse else out
