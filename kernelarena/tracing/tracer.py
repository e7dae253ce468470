"""Tracer: records the workloads of live apply calls into a dataset.

It hooks in as apply's observer, so with tracing off no call pays anything. A call costs a shape read and
a set lookup once its key is saturated (the policy will admit no more of it); the full check and the record
happen only for calls that may be kept. Records are buffered and appended to workloads/<op>/<def>.jsonl in
one locked write per file — at exit, on flush(), and when the buffer fills.
"""

from __future__ import annotations

import atexit
import logging
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Dict, Hashable, List, Optional, Set, Union

from ..apply import api, hooks
from ..apply.key import make_key_reader, merge_keywords, read_axes
from ..schema import Definition, RandomInput, SafetensorsInput, ScalarInput, Trace, Workload
from ..store import TraceSet
from .policy import POLICIES, FirstN, TracingPolicy

logger = logging.getLogger("kernelarena.tracing")


@dataclass
class _Plan:
    definition: Definition
    read_key: Callable[[tuple], Hashable]
    names: tuple
    saturated: Set[Hashable] = field(default_factory=set)


class Tracer:
    """Records workloads of apply calls into ``traceset`` following ``policy``.

    ``save_inputs``: False records axis values only (inputs drawn at random when benchmarked); True saves
    every tensor input under blob/ as safetensors, one file per tensor named by its content hash, so a weight
    seen a thousand times is stored once; a collection of input names saves only those. Saving copies the
    tensor to the host (a device sync), so use it with a sparse policy. Use as a context manager, or call
    close(); either flushes.
    """

    def __init__(self, traceset: TraceSet, policy: TracingPolicy, save_inputs: Union[bool, Collection[str]] = False,
                 max_buffered: int = 1024):
        self.traceset = traceset
        self.policy = policy
        self.save_inputs = save_inputs
        self.max_buffered = max_buffered
        self.recorded = 0
        self._buffer: List[Trace] = []
        self._plans: Dict[str, Optional[_Plan]] = {}
        self._lock = threading.RLock()
        for name, entries in traceset.workloads.items():
            definition = traceset.definitions.get(name)
            for entry in entries if definition is not None else ():
                if all(a in entry.workload.axes for a in definition.var_axes):
                    policy.seed(name, tuple(entry.workload.axes[a] for a in definition.var_axes))

    # ------------------------------------------------------------------ observing calls
    def observer(self, definition: str, dispatch: Callable[[tuple, dict], Any]) -> Callable[[tuple, dict], Any]:
        """Wrap a site's dispatch so that its calls are observed first (apply's observer hook)."""
        observe = self.observe

        def traced(args, kwargs):
            observe(definition, args, kwargs)
            return dispatch(args, kwargs)

        return traced

    def observe(self, definition: str, args: tuple, kwargs: dict) -> None:
        """Consider one call for recording. Never raises: tracing must not break the call it watches."""
        try:
            plan = self._plans[definition] if definition in self._plans else self._plan_for(definition)
            if plan is None:
                return
            if kwargs:
                args = merge_keywords(plan.names, args, kwargs)
                if args is None:
                    return
            key = plan.read_key(args)
            if key in plan.saturated:
                return
            self._consider(plan, key, args)
        except Exception:
            self._log_failure(definition)

    def _consider(self, plan: _Plan, key: Hashable, args: tuple) -> None:
        definition = plan.definition
        inputs = args[:len(definition.inputs)]
        try:
            axes = read_axes(definition, inputs)
        except ValueError:
            plan.saturated.add(key)  # does not fit the definition: never a workload
            return
        axes_key = tuple(axes[a] for a in definition.var_axes)
        with self._lock:
            admitted = self.policy.admit(definition.name, axes_key)
            if self.policy.saturated(definition.name, axes_key):
                plan.saturated.add(key)
            if not admitted:
                return
            self._buffer.append(Trace(definition=definition.name, workload=self._workload(definition, axes, inputs)))
            self.recorded += 1
            full = len(self._buffer) >= self.max_buffered
        if full:
            self.flush()

    def _workload(self, definition: Definition, axes: Dict[str, int], inputs: tuple) -> Workload:
        specs = {}
        for (name, spec), value in zip(definition.inputs.items(), inputs):
            if spec.shape is None:
                specs[name] = ScalarInput(value=value.item() if hasattr(value, "item") else value)
            elif self.save_inputs is True or (self.save_inputs and name in self.save_inputs):
                path = self.traceset.save_blob(definition.name, {name: value})
                specs[name] = SafetensorsInput(path=path, tensor_key=name)
            else:
                specs[name] = RandomInput()
        return Workload(uuid=str(uuid.uuid4()), axes=axes, inputs=specs)

    def _plan_for(self, name: str) -> Optional[_Plan]:
        definition = self.traceset.definitions.get(name)
        plan = None
        if definition is None:
            logger.warning("tracing: definition %r is not in %s; its calls are not recorded", name,
                           self.traceset.root)
        else:
            plan = _Plan(definition, make_key_reader(definition), (*definition.inputs, *definition.outputs))
        self._plans[name] = plan
        return plan

    def _log_failure(self, definition: str) -> None:
        logger.warning("tracing: cannot record a call of %s; its calls are no longer traced", definition,
                       exc_info=True)
        self._plans[definition] = None

    # ------------------------------------------------------------------ writing
    def flush(self) -> int:
        """Append the buffered workloads to the dataset now; returns how many were written. A batch the store
        refuses is logged and dropped, never raised (this also runs at interpreter exit)."""
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return 0
        try:
            self.traceset.add_workloads(batch)
        except Exception:
            logger.exception("tracing: %d workloads could not be written to %s", len(batch), self.traceset.root)
            return 0
        return len(batch)

    def close(self) -> int:
        """Stop tracing (when this tracer is the active one) and flush."""
        global _active
        if _active is self:
            _active = None
            api.set_observer(None)
        atexit.unregister(self.flush)
        return self.flush()

    def __enter__(self) -> "Tracer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_active: Optional[Tracer] = None


def enable_tracing(dataset: Union[str, Path, TraceSet], policy: Union[TracingPolicy, str, None] = None, *,
                   save_inputs: Union[bool, Collection[str]] = False, max_buffered: int = 1024) -> Tracer:
    """Record the workloads of apply calls into ``dataset`` (a folder or a TraceSet) until disable_tracing().

    ``policy``: a TracingPolicy or one of the names "first_n", "distinct_shapes", "sampled" (default FirstN(1)).
    Records are flushed at exit, on flush_tracing(), and every ``max_buffered`` records. Enabling again
    replaces (and flushes) the active tracer. Raises DatasetError when the folder does not exist.
    """
    global _active
    if isinstance(policy, str):
        if policy not in POLICIES:
            raise ValueError(f"unknown tracing policy {policy!r}; known: {sorted(POLICIES)}")
        policy = POLICIES[policy]()
    traceset = dataset if isinstance(dataset, TraceSet) else TraceSet.load(dataset, strict=False)
    tracer = Tracer(traceset, policy or FirstN(1), save_inputs=save_inputs, max_buffered=max_buffered)
    if _active is not None:
        _active.close()
    _active = tracer
    atexit.register(tracer.flush)
    api.set_observer(tracer.observer)
    return tracer


def disable_tracing() -> int:
    """Stop tracing and flush; returns how many workloads the final flush wrote (0 when tracing was off)."""
    return _active.close() if _active is not None else 0


def flush_tracing() -> int:
    """Write the active tracer's buffered workloads now; returns how many."""
    return _active.flush() if _active is not None else 0


def active_tracer() -> Optional[Tracer]:
    return _active


@hooks.on_startup
def _trace_from_environment(environ) -> None:
    """apply's startup hook: start tracing from KERNELARENA_TRACE (and KERNELARENA_TRACE_POLICY) when set."""
    path = environ.get(api.TRACE_ENV)
    if not path:
        return
    try:
        enable_tracing(path, policy=environ.get(api.TRACE_POLICY_ENV) or None)
    except Exception:
        logger.exception("tracing: cannot start from %s=%s", api.TRACE_ENV, path)
