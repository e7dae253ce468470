"""Adapters for FlashInfer's batch attention wrappers: plan() decides and plans once, run() only runs.

A patched ``plan()`` reads the call, names its definition as FlashInfer-Trace does
(``gqa_paged_decode_h{Hq}_kv{Hkv}_d{D}_ps{P}``, ``gqa_paged_prefill_causal_h{Hq}_kv{Hkv}_d{D}_ps{P}``,
``gqa_ragged_prefill_causal_h{Hq}_kv{Hkv}_d{D}``) and asks apply's router of that definition which solution
the dispatch table picks for the batch's axes. Then, once per plan:

- a solution built from kernelarena's own attention kernels (``PLANNED_FORMS``, by entry point) is planned
  with the matching plan/run wrapper of ``kernelarena.kernels.attention``; run() only launches, so it can be
  captured in a CUDA graph;
- FlashInfer's own wrapper solution, no solution, or anything the definition cannot express (another layout
  or dtype, soft-cap, sliding window, positional encoding, a custom mask, a non-causal prefill, an unknown
  argument) runs FlashInfer's original plan and run (the reason logged once);
- a solution with its own plan step (bench/plan.py's convention: ``plan`` beside ``run``) is planned by it
  once, and run() calls what the plan returned; a solution without one is called by run() with the page
  table moved to the device at plan time. Both are refused under CUDA graphs (their plans are not made for
  fixed buffers).

When a routed run() raises, the solution is excluded from the runtime and the call (and the rest of the
batch) runs FlashInfer's original, whose plan is then made from the saved plan arguments.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import torch

from ...apply import api as apply_api
from ...apply import hooks
from ...apply.adapters import adapt
from ...bench.plan import find_plan
from ...errors import UnsupportedError
from ...kernels import attention as ours
from ...kernels.attention.prefill_hopper import TILELANG_CONFIG
from ...schema import torch_dtype
from .arguments import (
    RUN_KEYWORDS,
    ParsedPlan,
    PlanSettings,
    Unsupported,
    decode_plan,
    forward_matches,
    neutral_run,
    paged_prefill_plan,
    ragged_prefill_plan,
    settings_key,
)
from .support import run_original

PLANNED_FORMS: Dict[str, Callable[..., Any]] = {
    "solution_decode.py::run": ours.BatchDecodeWithPagedKVCacheWrapper,
    "solution_prefill.py::run": ours.BatchPrefillWithPagedKVCacheWrapper,
    # The TileLang solution is the Hopper kernel with the config it was verified with.
    "solution_prefill_tilelang.py::run": functools.partial(ours.BatchPrefillWithPagedKVCacheWrapper,
                                                           config=TILELANG_CONFIG),
}
"""Entry point of a dataset solution built from kernelarena.kernels.attention -> its plan/run wrapper."""

FLASHINFER_ENTRIES = ("flashinfer_decode.py::run", "flashinfer_prefill.py::run", "flashinfer_ragged_prefill.py::run")
"""Entry points of solutions that call FlashInfer itself: the original already is that solution."""

class _State:
    """kernelarena's side of one FlashInfer wrapper object."""

    def __init__(self, wrapper: Any):
        self.workspace = wrapper._float_workspace_buffer
        self.use_cuda_graph = bool(getattr(wrapper, "_use_cuda_graph", False))
        self.kv_layout = getattr(wrapper, "_kv_layout", "NHD")
        self.init_error: Optional[BaseException] = None
        self.route: Optional[Any] = None
        self.saved: Optional[Tuple[tuple, dict]] = None
        self.original_planned = False
        self.ours: Optional[Any] = None
        self.num_pages = 0
        self.decision: Optional[_Decision] = None
        _states.add(self)


class _Decision:
    """What the settings of a wrapper's plan() calls decide under one runtime. A serving loop plans with the same
    settings at every step and a new page table, so the wrapper keeps the last decision and a plan() with equal
    settings skips parsing them, naming the definition and finding its router; the solution is still chosen per
    plan, from the call's axes. ``reason``: why these settings run FlashInfer's original (None: they can route)."""

    __slots__ = ("key", "runtime", "reason", "settings", "router", "var_axes", "device", "verdicts")

    def __init__(self, key: Optional[tuple], runtime: Any):
        self.key, self.runtime = key, runtime
        self.reason: Optional[str] = None
        self.settings: Optional[PlanSettings] = None
        self.router: Any = None
        self.var_axes: Tuple[str, ...] = ()
        self.device = ""
        self.verdicts: Dict[str, Tuple[Optional[Callable[..., Any]], Optional[str]]] = {}

    def verdict(self, solution: str) -> Tuple[Optional[Callable[..., Any]], Optional[str]]:
        """(our plan/run wrapper class for ``solution`` or None, why it cannot be routed or None); once per
        solution."""
        found = self.verdicts.get(solution)
        if found is None:
            spec = self.runtime.traceset.solutions[solution].spec
            entry = spec.entry_point
            if entry in FLASHINFER_ENTRIES or "flashinfer" in (spec.dependencies or ()):
                found = None, f"the dataset's choice for {self.settings.definition} is FlashInfer's own ({solution})"
            else:
                found = PLANNED_FORMS.get(entry), None
            self.verdicts[solution] = found
        return found


_states: "weakref.WeakSet[_State]" = weakref.WeakSet()


@hooks.on_change
def _forget_routes(runtime) -> None:
    """apply was enabled or disabled: routes chosen from the old table are dropped; the next run() of a
    batch planned before runs the original (planned then from the saved arguments), the next plan() decides
    again."""
    for state in list(_states):
        state.route = state.decision = None


class _PlannedRoute:
    """A batch planned by a kernelarena plan/run wrapper."""

    def __init__(self, solution: str, runtime: Any, wrapper: Any, sm_scale: float, causal: bool):
        self.solution, self.runtime, self.wrapper = solution, runtime, wrapper
        self.sm_scale, self.causal = sm_scale, causal

    def run(self, q, kv, kwargs):
        if not kwargs:
            return self.wrapper.run(q, *kv)
        return self.wrapper.run(q, *kv, out=kwargs.get("out"), lse=kwargs.get("lse"),
                                return_lse=kwargs.get("return_lse", False))


class _OneCallRoute:
    """A batch answered by a solution that takes the page table on every call."""

    def __init__(self, solution: str, runtime: Any, call: Callable[..., Any], tables: tuple, sm_scale: float,
                 causal: bool, layout_split: Callable[[tuple], tuple]):
        self.solution, self.runtime, self.call = solution, runtime, call
        self.tables, self.sm_scale, self.causal, self.layout_split = tables, sm_scale, causal, layout_split

    def run(self, q, kv, kwargs):
        output, lse_value = self.call(q, *self.layout_split(kv), *self.tables, self.sm_scale)
        out, lse = kwargs.get("out"), kwargs.get("lse")
        if out is not None:
            out.copy_(output)
            output = out
        if lse is not None:
            lse.copy_(lse_value)
            lse_value = lse
        return (output, lse_value) if kwargs.get("return_lse", False) else output


def _paged_kv(kv: tuple) -> tuple:
    """(k_cache, v_cache) from run()'s paged_kv_cache: a (k, v) tuple or one [pages, 2, P, H, D] tensor."""
    cache = kv[0]
    if isinstance(cache, (tuple, list)):
        return tuple(cache)
    return cache[:, 0], cache[:, 1]


def _ragged_kv(kv: tuple) -> tuple:
    return kv


@dataclass(frozen=True)
class WrapperKind:
    """How one FlashInfer wrapper class is planned and run."""

    api: str
    parse_plan: Callable[..., ParsedPlan]
    layout_split: Callable[[tuple], tuple]
    n_kv: int
    """Positional run() arguments after q: 1 (a paged cache) or 2 (ragged k, v)."""
    n_tables: int
    """Leading plan() arguments that are the batch's page table (or ragged indptr): new at every plan."""


KINDS = {
    "BatchDecodeWithPagedKVCacheWrapper": WrapperKind("BatchDecodeWithPagedKVCacheWrapper", decode_plan,
                                                      _paged_kv, 1, 3),
    "BatchPrefillWithPagedKVCacheWrapper": WrapperKind("BatchPrefillWithPagedKVCacheWrapper",
                                                       paged_prefill_plan, _paged_kv, 1, 4),
    "BatchPrefillWithRaggedKVCacheWrapper": WrapperKind("BatchPrefillWithRaggedKVCacheWrapper",
                                                        ragged_prefill_plan, _ragged_kv, 2, 2),
}


def _decide(kind: WrapperKind, wrapper: Any, state: _State, args: tuple, kwargs: dict):
    """The route of one plan() call; raises Unsupported with the reason when FlashInfer's original runs."""
    apply_api.read_environment()
    runtime = apply_api.current_runtime()
    key = settings_key(args, kind.n_tables, kwargs)
    decision = state.decision
    if key is None or decision is None or decision.runtime is not runtime or decision.key != key:
        decision, tables = _settle(kind, state, runtime, args, kwargs, key)
        state.decision = decision if key is not None else None
    else:
        tables = args[:kind.n_tables]
    if decision.reason is not None:
        raise Unsupported(decision.reason)
    settings = decision.settings
    axes = settings.axes(state.num_pages, tables)
    axes_key = tuple([axes.get(name, 0) for name in decision.var_axes])
    solution, runnable, how = decision.router.choose(axes_key, decision.device)
    if solution is None:
        raise Unsupported(f"no solution of {settings.definition} chosen for "
                          f"{dict(zip(decision.var_axes, axes_key))} ({how})")
    form, reason = decision.verdict(solution)
    if reason is not None:
        raise Unsupported(reason)
    if form is not None:
        ours = state.ours
        if ours is None or not isinstance(ours, form):
            ours = state.ours = form(state.workspace, "NHD", use_cuda_graph=state.use_cuda_graph)
            if state.use_cuda_graph:
                _reserve_indices(ours, wrapper)
        settings.plan_ours(ours, tables)
        return _PlannedRoute(solution, runtime, ours, settings.sm_scale, settings.causal)
    return _one_call_route(kind, state, decision, solution, runnable,
                           {**axes, **dict(zip(decision.var_axes, axes_key))}, tables)


def _settle(kind: WrapperKind, state: _State, runtime: Any, args: tuple, kwargs: dict,
            key: Optional[tuple]) -> Tuple[_Decision, tuple]:
    """Parse a plan() call's settings and find its router: (the decision, the call's tables)."""
    decision, tables = _Decision(key, runtime), ()
    try:
        if state.kv_layout != "NHD":
            raise Unsupported(f"kv_layout={state.kv_layout} (the definitions are NHD)")
        try:
            settings, tables = kind.parse_plan(*args, **kwargs)
        except TypeError as error:  # arguments that do not bind to FlashInfer's own signature
            raise Unsupported(f"arguments FlashInfer's plan signature does not take ({error})") from None
        decision.settings = settings
        if runtime is None:
            raise Unsupported("apply is not enabled")
        router = runtime.router(settings.definition)
        if router is None:
            raise Unsupported(f"definition {settings.definition} is not in the dataset")
        definition = router.definition
        if torch_dtype(definition.inputs["q"].dtype) != settings.q_dtype:
            raise Unsupported(f"q_data_type={settings.q_dtype} (definition {definition.name} takes "
                              f"{definition.inputs['q'].dtype})")
        decision.router, decision.var_axes = router, tuple(definition.var_axes)
        decision.device = runtime.config.device or state.workspace.device.type
    except Unsupported as reason:
        decision.reason = str(reason)
    return decision, tables


def _one_call_route(kind: WrapperKind, state: _State, decision: _Decision, solution: str, runnable: Any,
                    axes: Dict[str, int], tables: tuple) -> "_OneCallRoute":
    """A route to a solution that takes the page table on every call (planned by its own plan step, if any)."""
    if state.use_cuda_graph:
        raise Unsupported(f"{solution} takes the page table on every call, which a CUDA graph cannot capture")
    settings, device = decision.settings, state.workspace.device
    tables = tuple(t.to(device=device, dtype=torch.int32) if isinstance(t, torch.Tensor)
                   else torch.as_tensor(t, dtype=torch.int32, device=device) for t in tables)
    entry_fn = getattr(runnable, "entry", runnable)
    plan_step = find_plan(runnable)
    if plan_step is not None:
        # The solution's own plan step (bench/plan.py's convention) reads only the page table; q and the
        # caches it is given are stand-ins of the right shape, dtype and device (the real ones come to run()).
        rows = axes.get("total_q", axes["batch_size"])
        q = torch.empty((rows, *settings.q_heads), dtype=settings.q_dtype, device=device)
        kv = torch.empty((1, *settings.kv_shape), dtype=settings.q_dtype, device=device).expand(
            max(axes.get("num_pages", 0), axes.get("total_kv", 0), 1), *settings.kv_shape)
        entry_fn = plan_step(q, kv, kv, *tables, settings.sm_scale)
    call = adapt(entry_fn, runnable.destination_passing_style, False, decision.router.definition, axes, device)
    return _OneCallRoute(solution, decision.runtime, call, tables, settings.sm_scale, settings.causal,
                         kind.layout_split)


def _reserve_indices(ours: Any, wrapper: Any) -> None:
    """Under CUDA graphs our runner sizes its page-index buffer at the first plan and refuses to grow it
    later; FlashInfer's caller already said the most pages a batch will use (the fixed indices buffer it
    gave the wrapper), so reserve that much now, before the first plan, at a fixed address."""
    capacity = getattr(wrapper, "_paged_kv_indices_buf", None)
    if isinstance(capacity, torch.Tensor):
        ours.reserve_page_indices(max(capacity.numel(), 1))


def patch_wrapper(patches, cls: type, kind: WrapperKind) -> None:
    """Replace ``cls.__init__``, ``cls.plan`` and ``cls.run`` with routed versions (recorded in ``patches``)."""
    original_init = cls.__dict__["__init__"]
    original_plan = cls.__dict__["plan"]
    original_run = cls.__dict__["run"]

    def state_of(wrapper) -> _State:
        state = wrapper.__dict__.get("_kernelarena")
        if state is None:
            state = wrapper._kernelarena = _State(wrapper)
        return state

    def __init__(self, float_workspace_buffer, kv_layout="NHD", use_cuda_graph=False, *args, **kwargs):
        try:
            original_init(self, float_workspace_buffer, kv_layout, use_cuda_graph, *args, **kwargs)
            init_error = None
        except Exception as error:
            if float_workspace_buffer.device.type == "cuda":
                raise
            # FlashInfer cannot set itself up off the GPU (it pins host memory); routed calls do not need it,
            # and its own path raises this error if it is ever asked for.
            self._float_workspace_buffer, self._kv_layout = float_workspace_buffer, kv_layout
            self._use_cuda_graph, self.device = use_cuda_graph, float_workspace_buffer.device
            init_error = error
        state_of(self).init_error = init_error

    def plan(self, *args, **kwargs):
        state = state_of(self)
        state.saved, state.original_planned, state.route = (args, kwargs), False, None
        try:
            state.route = _decide(kind, self, state, args, kwargs)
        except Unsupported as reason:
            run_original(kind.api, str(reason))
            plan_original(self, state)

    def plan_original(self, state: _State) -> None:
        if state.init_error is not None:
            raise UnsupportedError(f"{kind.api}: FlashInfer's own kernels are needed for this call and FlashInfer "
                                   f"could not set up on {state.workspace.device}") from state.init_error
        args, kwargs = state.saved
        original_plan(self, *args, **kwargs)
        state.original_planned = True

    n_kv = kind.n_kv

    # The hot path (a run per layer per step): the route planned, the arguments checked, one call.
    def run(self, q, *args, **kwargs):
        state = self.__dict__.get("_kernelarena")
        route = state.route if state is not None else None
        if route is not None:
            if len(args) == n_kv and (not kwargs or kwargs.keys() <= RUN_KEYWORDS or neutral_run(kwargs)):
                try:
                    if n_kv == 1:  # the cache's page count is an axis of the next plan
                        cache = args[0]
                        state.num_pages = (cache[0] if isinstance(cache, (tuple, list)) else cache).shape[0]
                    return route.run(q, args, kwargs)
                except Exception as error:  # a bad kernel must not take the serving process down
                    route.runtime.exclude(route.solution, f"raised {type(error).__name__} in {kind.api}.run", error)
                    state.route = None
                    plan_original(self, state)
                    return original_run(self, q, *args, **kwargs)
            run_original(kind.api, f"run() arguments beyond out/lse/return_lse ({len(args)} positional, "
                                   f"keywords {sorted(kwargs)})")
            state.route = None
        if state is not None and not state.original_planned and state.saved is not None:
            plan_original(self, state)
        return original_run(self, q, *args, **kwargs)

    original_forward = cls.__dict__.get("forward")

    def forward(self, q, *args, **kwargs):
        state = self.__dict__.get("_kernelarena")
        route = state.route if state is not None else None
        if route is not None:
            if len(args) == kind.n_kv and forward_matches(route, kwargs):
                return run(self, q, *args)
            run_original(kind.api, f"forward() settings the plan did not make ({sorted(kwargs)}, "
                                   f"{len(args) - kind.n_kv} extra positional)")
            state.route = None
            if not state.original_planned:
                plan_original(self, state)
        return original_forward(self, q, *args, **kwargs)

    __init__.__wrapped__, plan.__wrapped__, run.__wrapped__ = original_init, original_plan, original_run
    patches.replace(cls, "__init__", __init__)
    patches.replace(cls, "plan", plan)
    patches.replace(cls, "run", run)
    # FlashInfer's aliases refer to the original functions themselves: point them at ours too.
    for name, value in list(cls.__dict__.items()):
        if name != "plan" and value is original_plan:
            patches.replace(cls, name, plan)
        elif isinstance(value, functools.partialmethod) and value.func is original_run:
            patches.replace(cls, name, functools.partialmethod(run, *value.args, **value.keywords))
    if original_forward is not None:
        forward.__wrapped__ = original_forward
        patches.replace(cls, "forward", forward)


def routed_solution(wrapper: Any) -> Optional[str]:
    """The solution the wrapper's current plan runs (None: FlashInfer's original)."""
    state = wrapper.__dict__.get("_kernelarena")
    route = state.route if state is not None else None
    return route.solution if route is not None else None
