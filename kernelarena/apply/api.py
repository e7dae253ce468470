"""apply(), enable_apply(), disable_apply(): the public face of dispatch, and the process-wide state.

Each decorated function (and each function-mode call) goes through an ApplySite. A site's ``dispatch``
attribute is swapped whenever the state changes (apply enabled or disabled, tracing on or off), so a call
never tests a flag: it runs whatever function the current state put there.
"""

from __future__ import annotations

import functools
import logging
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from .. import env
from ..errors import DispatchError
from ..store import TraceSet
from . import hooks
from .config import ApplyConfig
from .router import SiteDispatch
from .runtime import ApplyRuntime

logger = logging.getLogger("kernelarena.apply")

APPLY_ENV = env.APPLY
"""Dataset folder: when set, the first apply call of the process enables apply from it."""
APPLY_WARMUP_ENV = env.APPLY_WARMUP
""""1": with KERNELARENA_APPLY, build every solution the table uses at that first call."""
# Read by the floors above through apply's startup hook (hooks.on_startup), from the mapping it passes.
TRACE_ENV = env.TRACE
"""Dataset folder: when set, the first apply call of the process starts tracing into it (kernelarena.tracing)."""
TRACE_POLICY_ENV = env.TRACE_POLICY
"""With KERNELARENA_TRACE: "first_n" (default, one per key), "distinct_shapes" or "sampled"."""
INTEGRATIONS_ENV = env.INTEGRATIONS
"""Comma-separated integrations (e.g. "flashinfer") that ``import kernelarena`` installs (kernelarena.integrations)."""

Observer = Callable[[str, SiteDispatch], SiteDispatch]

_runtimes: List[ApplyRuntime] = []
_sites: "weakref.WeakSet[ApplySite]" = weakref.WeakSet()
_observer: Optional[Observer] = None
_environment_read = False


class ApplySite:
    """One place that calls apply: a definition name and the caller's fallback.

    ``dispatch(args, kwargs)`` is the full path, swapped as the state changes. ``fast`` maps an argument
    count to the router's key cache when the decorated function may read that cache itself (apply on,
    tracing off, a definition keyed by one tensor at argument ``position``); it is empty otherwise.
    """

    __slots__ = ("definition", "fallback", "dispatch", "fast", "position", "router", "compiled_op",
                 "__weakref__")

    def __init__(self, definition: str, fallback: Optional[Callable[..., Any]]):
        self.definition = definition
        self.fallback = fallback
        self.compiled_op: Optional[Callable[..., Any]] = None
        self.dispatch: SiteDispatch = self._first_call
        self.fast: Dict[int, dict] = {}
        self.position = 0
        self.router = None
        _sites.add(self)

    def _first_call(self, args: tuple, kwargs: dict) -> Any:
        read_environment()
        if self.dispatch == self._first_call:
            self.rebind()
        return self.dispatch(args, kwargs)

    def rebind(self) -> None:
        """Point ``dispatch`` (and ``fast``) at what the current state wants: the runtime's router or the
        fallback, wrapped by the tracing observer when there is one."""
        runtime = current_runtime()
        router = runtime.router(self.definition) if runtime is not None else None
        dispatch = router.bind(self.fallback) if router is not None else _direct(self.definition, self.fallback)
        if _observer is not None:
            dispatch = _observer(self.definition, dispatch)
        fast = router.fast_path() if router is not None and _observer is None else None
        self.router = router
        self.fast, self.position = fast if fast is not None else ({}, 0)
        self.dispatch = dispatch
        if router is not None and self.compiled_op is None:
            from .custom_op import register_site_op

            self.compiled_op = register_site_op(self, router.definition)

    def call_compiled(self, args: tuple, kwargs: dict) -> Any:
        """The call as torch.compile sees it: the site's custom op (an opaque node whose eager body is this
        site's dispatch), or the fallback, traced as ordinary code, while apply is off."""
        op = self.compiled_op
        if op is None or (current_runtime() is None and _observer is None):
            return self.fallback(*args, **kwargs)
        merged = op.merge(args, kwargs)
        if merged is None:
            return self.fallback(*args, **kwargs)
        return op(*merged)


def _direct(definition: str, fallback: Optional[Callable[..., Any]]) -> SiteDispatch:
    if fallback is None:
        def refuse(args, kwargs):
            raise DispatchError(f"definition {definition}: apply is not enabled (or lacks it) and no fallback "
                                "was given")
        return refuse
    return lambda args, kwargs: fallback(*args, **kwargs)


# ---------------------------------------------------------------------- public API
def apply(definition: str, args: Optional[Tuple[Any, ...]] = None, kwargs: Optional[Dict[str, Any]] = None,
          fallback: Optional[Callable[..., Any]] = None) -> Any:
    """Route a call of ``definition`` to its best verified solution.

    Decorator mode, ``@apply("rmsnorm_h4096")`` over a function: the function becomes the fallback, run when
    apply is off, the key was never benchmarked (by default), the call does not fit the definition, or the
    chosen solution fails. Function mode, ``apply(name, args=..., kwargs=..., fallback=...)``: route one call
    now (slower per call than the decorator; without a fallback an unroutable call raises DispatchError).

    Arguments match the definition's inputs by position, then by name. Passing only the inputs is the
    value-returning convention (outputs are returned: one tensor, or a tuple); passing the inputs then the
    outputs is destination-passing (outputs are written). Either convention reaches solutions of either kind.
    """
    if args is None and kwargs is None:
        if fallback is not None:
            raise TypeError("apply(name, fallback=...) needs args= or kwargs=; as a decorator use @apply(name)")
        return functools.partial(_decorate, definition)
    read_environment()
    runtime = current_runtime()
    router = runtime.router(definition) if runtime is not None else None
    dispatch = router.bind(fallback) if router is not None else _direct(definition, fallback)
    if _observer is not None:
        dispatch = _observer(definition, dispatch)
    return dispatch(tuple(args or ()), dict(kwargs or {}))


def _decorate(definition: str, fallback: Callable[..., Any]) -> Callable[..., Any]:
    from torch.compiler import is_dynamo_compiling  # False in eager (22 ns); constant True while dynamo traces

    from .key import tensor_key
    from .router import FALLBACK

    site = ApplySite(definition, fallback)

    # The hot path: every line is paid on every call. A miss of any kind (apply off, tracing on, keywords,
    # a key not seen yet, odd arguments) leaves it for site.dispatch, which decides and fills the cache.
    @functools.wraps(fallback)
    def routed(*args, **kwargs):
        if is_dynamo_compiling():
            return site.call_compiled(args, kwargs)
        entries = site.fast.get(len(args))
        if entries is None or kwargs:
            return site.dispatch(args, kwargs)
        try:
            entry = entries[tensor_key(args[site.position])]
        except (KeyError, AttributeError, IndexError):
            return site.dispatch(args, kwargs)
        if entry is FALLBACK:
            return fallback(*args)
        try:
            return entry(*args)
        except Exception as error:  # a bad kernel must not take the serving process down
            return site.router.failed(entries, error, fallback, args)

    routed.apply_site = site
    return routed


def enable_apply(dataset: Union[str, Path, TraceSet], config: Optional[ApplyConfig] = None, *,
                 warmup: Optional[bool] = None) -> ApplyRuntime:
    """Route apply calls through the dispatch table of ``dataset`` (a folder or a loaded TraceSet).

    The table is built now, once. ``warmup=True`` (or ``config.warmup``) also builds every solution it can
    choose now, instead of on first use. Enabling again nests: disable_apply() returns to the previous
    dataset. The returned runtime is a context manager that disables it on exit. An explicit call wins over
    the KERNELARENA_APPLY environment variable. Raises DatasetError when the folder does not exist, and
    ValueError when the config names a solution the dataset lacks.
    """
    global _environment_read
    _environment_read = True
    traceset = dataset if isinstance(dataset, TraceSet) else _load(dataset)
    config = config or ApplyConfig()
    if warmup is not None:
        config = config.with_options(warmup=warmup)
    runtime = ApplyRuntime(traceset, config, on_exit=disable_apply)
    if config.warmup:
        runtime.warmup()
    _runtimes.append(runtime)
    _rebind_all()
    hooks.run_change(runtime)
    return runtime


def disable_apply(runtime: Optional[ApplyRuntime] = None) -> None:
    """Stop routing through ``runtime`` (default: the most recently enabled); calls go back to the previously
    enabled dataset, or to their fallbacks. Does nothing when it is not enabled."""
    target = runtime if runtime is not None else (_runtimes[-1] if _runtimes else None)
    if target is None or target not in _runtimes:
        return
    _runtimes.remove(target)
    _rebind_all()
    hooks.run_change(current_runtime())


def current_runtime() -> Optional[ApplyRuntime]:
    """The runtime calls are routed through now, or None when apply is off."""
    return _runtimes[-1] if _runtimes else None


def set_observer(observer: Optional[Observer]) -> None:
    """Wrap every site's dispatch with ``observer(definition, dispatch) -> dispatch`` (None removes it). Used
    by kernelarena.tracing; a call pays for an observer only while one is set."""
    global _observer
    read_environment()
    _observer = observer
    _rebind_all()


def read_environment() -> None:
    """Once per process: enable apply from KERNELARENA_APPLY when set, then run the startup hooks (tracing
    starts from KERNELARENA_TRACE there). A bad value is logged, never raised: the process it runs in did
    not ask for us."""
    global _environment_read
    if _environment_read:
        return
    _environment_read = True
    path = env.apply_dataset()
    if path:
        try:
            enable_apply(path, warmup=env.apply_warmup())
            logger.info("apply: enabled from %s=%s", APPLY_ENV, path)
        except Exception:
            logger.exception("apply: cannot enable from %s=%s; calls run their fallbacks", APPLY_ENV, path)
    hooks.run_startup(env.environment())


def _rebind_all() -> None:
    for site in list(_sites):
        site.rebind()


def _load(path: Union[str, Path]) -> TraceSet:
    traceset = TraceSet.load(path, strict=False)
    if traceset.problems:
        logger.warning("apply: %d invalid records in %s skipped (see kernelarena validate)",
                       len(traceset.problems), path)
    return traceset
