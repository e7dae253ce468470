"""The Ray engine: a run's tasks on the device slots of a Ray cluster, results back to the driver.

An evaluator actor per device slot (a GPU, or a CPU slot of a node started with the ``kernelarena_cpu``
resource; no more than the run has tasks for), placed by Ray on the slot's resources (GPU model included).
Each actor holds the local engine's ``DeviceWorkers``: the same isolated processes evaluate (a reference process,
and a fresh solution process per solution from a pool started ahead, kept across that solution's workloads and
stopped before the next solution), so a crash or hang is the solution's own trace; the node's disk build cache
(keyed as always, locked per key) is shared by every actor of the node, so a solution is compiled once per node
and device kind.

The driver hands each (definition, solution, workloads) task to an idle actor whose slot the solution admits,
one actor call per workload, and records each result as it arrives; it alone writes. When an actor is lost
(its node died, its process was killed) its unfinished workloads go back to the queue, to any matching actor,
and a replacement actor is started; an evaluation lost ``max_attempts`` times is recorded as RUNTIME_ERROR
with the reason. Every (solution, workload) is recorded exactly once.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

try:
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
except ImportError as e:  # only this engine needs Ray
    raise ImportError("the ray engine needs Ray: pip install 'kernelarena[ray]'") from e

from ... import env
from ...errors import EngineError
from ...schema import Definition, Environment, Solution, Status, Trace, Workload
from ..config import RunConfig
from ..worker import DefinitionError, DeviceWorkers, WorkerResult, warm_imports
from . import EngineStats, Task
from .placement import CPU_RESOURCE, SlotKind, no_placement_reason, placements, slot_kinds

# An actor call outlasting this much more than the worker's own timeout means the actor itself hangs.
_HUNG_MARGIN_S = 120.0


class SlotEvaluator:
    """Lives in a Ray actor on one device slot; evaluates through the local engine's isolated ``DeviceWorkers``.
    A solution's workloads arrive one call each and are evaluated in the one worker process kept for that
    solution; the driver names with each call what the next jobs import, so spares start for them."""

    def __init__(self, device: str, config: RunConfig, root: Optional[str]):
        self.upcoming: List[Tuple[str, ...]] = []
        self.worker = DeviceWorkers(device, config, Path(root) if root else None,
                                    upcoming_imports=lambda count: self.upcoming[:count])

    def where(self) -> Dict[str, Any]:
        """The actor's node, host and process (answering also says the actor is up)."""
        return {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "pid": os.getpid()}

    def evaluate(self, definition_json: str, solution_json: str, workload_json: str,
                 upcoming: Sequence[Sequence[str]] = ()) -> Tuple[Optional[str], Dict[str, float], List[str]]:
        """One workload's trace (JSON; None when the definition's side failed) with its phase timings, and the
        definition-side failure's message if any. ``upcoming``: the warm imports of the jobs queued next."""
        self.upcoming = [tuple(imports) for imports in upcoming]
        results: List[WorkerResult] = []
        errors = len(self.worker.definition_errors)
        self.worker.evaluate(Definition.model_validate_json(definition_json),
                             Solution.model_validate_json(solution_json),
                             [Workload.model_validate_json(workload_json)], results.append, keep=True)
        failures = [e.message for e in self.worker.definition_errors[errors:]]
        if not results:
            return None, {}, failures
        (result,) = results
        return result.trace.to_json(), result.phases, failures

    @ray.method(concurrency_group="control")
    def stop(self) -> Tuple[float, int, List[Dict[str, float]]]:
        """Stop the worker process, even mid-evaluation (this runs beside ``evaluate``, so that a run that is
        stopped leaves no evaluation going on the node); its start-up seconds, restarts and each solution
        worker's start-up steps."""
        self.worker.stop()
        return self.worker.startup_s, self.worker.restarts, list(self.worker.pool.startups)


# Evaluations run one at a time (the default group has one thread); ``stop`` has a thread of its own.
_RemoteEvaluator = ray.remote(max_restarts=0, max_task_retries=0, concurrency_groups={"control": 1})(SlotEvaluator)


@dataclass
class _Job:
    definition: Definition
    solution: Solution
    workloads: Deque[Workload]
    kinds: List[SlotKind]


@dataclass
class _Call:
    ref: Any
    job: _Job
    workload: Workload


@dataclass
class _Actor:
    kind: SlotKind
    handle: Any
    ready: Any
    """The pending ``where`` call while the actor starts; None once it is up."""
    created: float
    calls: Deque[_Call] = field(default_factory=deque)
    current_since: float = 0.0
    """When the actor last finished a call (or was given its first): the running call began then."""


class RayEngine:
    """Evaluate on a Ray cluster: ``address`` as ``ray.init`` takes it ("auto", "ray://host:10001"); None
    joins the cluster of ``RAY_ADDRESS`` or starts one on this machine (with one CPU slot when it has no GPU).
    Within a process that already called ``ray.init``, that connection is used."""

    name = "ray"

    def __init__(self, address: Optional[str] = None, max_attempts: int = 3, start_timeout_s: float = 600.0):
        if max_attempts < 1:
            raise ValueError(f"max_attempts={max_attempts}: must be at least 1")
        self.address, self.max_attempts, self.start_timeout_s = address, max_attempts, start_timeout_s

    def execute(self, tasks: Sequence[Task], config: RunConfig, root: Optional[Path],
                record: Callable[[WorkerResult], None],
                on_start: Optional[Callable[[Definition, Solution, int], None]] = None) -> EngineStats:
        """See ``Engine.execute``. EngineError when the cluster cannot be reached or offers no device slot."""
        if not tasks:
            return EngineStats()
        self._connect()
        return _Dispatch(self, config, root, record, on_start).run(tasks)

    def devices(self, requested: Sequence[str] = ()) -> Tuple[str, ...]:
        """One evaluator device per kind of slot in the cluster (see ``Engine.devices``)."""
        self._connect()
        return tuple(sorted({kind.evaluator_device for kind in _cluster_kinds(requested)}))

    def slot_hardware(self, requested: Sequence[str] = ()) -> List[Tuple[str, str]]:
        """(device, hardware) of each kind of device slot in the cluster (of the kinds ``requested`` names, as
        ``RunConfig.devices`` does), the hardware named as traces name it (``environment(device).hardware``,
        asked of a node by one short task per kind): what a resumed run compares existing traces with.
        EngineError when the cluster offers no slot."""
        self._connect()
        kinds = _cluster_kinds(requested)
        refs = [_probe_hardware.options(**kind.ray_options()).remote(kind.evaluator_device) for kind in kinds]
        hardware = ray.get(refs, timeout=self.start_timeout_s)
        return [(kind.evaluator_device, name) for kind, name in zip(kinds, hardware)]

    def _connect(self) -> None:
        """Connect unless connected. A Ray instance started here lives until this process exits (Ray stops it
        then), so that the runs of one process share it."""
        if ray.is_initialized():
            return
        try:
            if self.address is None and not env.ray_address():
                import torch

                resources = {} if torch.cuda.is_available() else {CPU_RESOURCE: 1}
                ray.init(resources=resources, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=self.address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise EngineError(f"cannot join the Ray cluster at {self.address or env.ray_address()}: "
                              f"{e}") from e


def _hardware(device: str) -> str:
    from ..environment import environment

    return environment(device).hardware


_probe_hardware = ray.remote(max_retries=1)(_hardware)


def _cluster_kinds(devices: Sequence[str] = ()) -> Dict[SlotKind, int]:
    """Slots per kind over the cluster's alive nodes, only of the device kinds ``devices`` names ("cpu",
    "cuda", "cuda:0" all name their kind; empty: every kind); EngineError when there are none."""
    wanted = {device.partition(":")[0] for device in devices}
    kinds = {kind: slots for kind, slots in slot_kinds(node["Resources"] for node in ray.nodes()
                                                       if node.get("Alive")).items()
             if not wanted or kind.device in wanted}
    if not kinds:
        raise EngineError(f"the Ray cluster offers no {'/'.join(sorted(wanted)) + ' ' if wanted else ''}device "
                          "slot: start its nodes on GPU machines, or with "
                          f"--resources '{{\"{CPU_RESOURCE}\": 1}}' for CPU evaluations (see docs/scale.md)")
    return kinds


class _Dispatch:
    """One run's driver loop: actors, the job queue, the in-flight calls."""

    def __init__(self, engine: RayEngine, config: RunConfig, root: Optional[Path],
                 record: Callable[[WorkerResult], None],
                 on_start: Optional[Callable[[Definition, Solution, int], None]]):
        self.engine, self.config, self.record, self.on_start = engine, config, record, on_start
        self.root = str(root) if root else None
        self.stats = EngineStats()
        self.actors: List[_Actor] = []
        self.queue: Deque[_Job] = deque()
        self.lost: Dict[Tuple[str, str], List[str]] = {}
        """(solution, workload uuid) -> why each attempt at it was lost."""
        self.last_loss: Dict[SlotKind, str] = {}
        """Why the last actor of each slot kind was lost."""
        self.environments: Dict[SlotKind, Environment] = {}
        """The environment the traces of each slot kind were made in (what a lost evaluation is recorded in)."""
        self.replacements_left = 0

    # ------------------------------------------------------------------ set-up
    def run(self, tasks: Sequence[Task]) -> EngineStats:
        kinds = _cluster_kinds(self.config.devices)
        for definition, solution, workloads in tasks:
            where = placements(solution, kinds)
            if not where:
                reason = no_placement_reason(solution, kinds)
                for workload in workloads:
                    self._record_failure(definition, solution, workload, reason)
                continue
            self.queue.append(_Job(definition, solution, deque(workloads), where))
        for kind, slots in kinds.items():  # no more actors of a kind than jobs that may use it
            for _ in range(min(slots, sum(kind in job.kinds for job in self.queue))):
                self._start_actor(kind)
        self.replacements_left = self.engine.max_attempts * len(self.actors)
        try:
            self._loop()
        finally:
            self._stop_actors()
        return self.stats

    def _start_actor(self, kind: SlotKind) -> None:
        handle = _RemoteEvaluator.options(**kind.ray_options()).remote(kind.evaluator_device, self.config,
                                                                        self.root)
        self.actors.append(_Actor(kind, handle, handle.where.remote(), time.monotonic()))

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        while self.queue or any(a.calls for a in self.actors):
            self._assign()
            self._fail_unplaceable()
            waiting = {a.ready: a for a in self.actors if a.ready is not None}
            calls = {c.ref: (a, c) for a in self.actors for c in a.calls}
            refs = list(waiting) + list(calls)
            if not refs:
                time.sleep(0.1)
                continue
            done, _ = ray.wait(refs, num_returns=1, timeout=1.0)
            for ref in done:
                if ref in waiting:
                    self._actor_started(waiting[ref])
                else:
                    self._call_finished(*calls[ref])
            self._check_hung()

    def _assign(self) -> None:
        """Give each idle, started actor the first queued job it can run: one call per workload."""
        for actor in self.actors:
            if actor.ready is not None or actor.calls:
                continue
            job = next((j for j in self.queue if actor.kind in j.kinds), None)
            if job is None:
                continue
            self.queue.remove(job)
            if self.on_start is not None:
                self.on_start(job.definition, job.solution, len(job.workloads))
            definition, solution = job.definition.to_json(), job.solution.to_json()
            upcoming = self._upcoming(actor.kind)
            for workload in job.workloads:
                actor.calls.append(_Call(actor.handle.evaluate.remote(definition, solution, workload.to_json(),
                                                                      upcoming), job, workload))
            job.workloads = deque()
            actor.current_since = time.monotonic()

    def _upcoming(self, kind: SlotKind) -> List[Tuple[str, ...]]:
        """What the next queued jobs that a ``kind`` slot may take import (its pool starts spares for them)."""
        device, spares = kind.evaluator_device, max(1, self.config.spares())
        jobs = [job for job in self.queue if kind in job.kinds][:spares]
        return [warm_imports((job.solution,), device) for job in jobs]

    def _fail_unplaceable(self) -> None:
        """Record as failed the queued jobs that no actor, up or starting, can take any more."""
        kinds = {a.kind for a in self.actors}
        for job in [j for j in self.queue if not kinds & set(j.kinds)]:
            self.queue.remove(job)
            last = "; ".join(self.last_loss[k] for k in job.kinds if k in self.last_loss)
            for workload in job.workloads:
                history = "; ".join(self.lost.get((job.solution.name, workload.uuid), [])) or "none"
                self._record_failure(job.definition, job.solution, workload,
                                     f"no Ray actor is left for the device slots {[k.label for k in job.kinds]} "
                                     f"(last actor lost: {last or 'none'}; this evaluation lost: {history})")

    def _actor_started(self, actor: _Actor) -> None:
        try:
            ray.get(actor.ready)
        except RayActorError as e:
            self._actor_lost(actor, f"the evaluator actor for {actor.kind.label} did not start: {e}")
            return
        actor.ready = None

    def _call_finished(self, actor: _Actor, call: _Call) -> None:
        try:
            result = self._result(call)
        except RayActorError as e:
            self._actor_lost(actor, f"Ray lost the evaluator on {actor.kind.label} ({type(e).__name__}: "
                                    f"{str(e).splitlines()[0] if str(e) else ''})")
            return
        actor.calls.remove(call)
        actor.current_since = time.monotonic()
        if result is None:  # the definition's side failed: reported against it, not as the solution's trace
            return
        self.environments[actor.kind] = result.trace.evaluation.environment
        self.record(result)

    def _result(self, call: _Call) -> Optional[WorkerResult]:
        """The finished call's result (None when the definition's side failed: kept in the stats); RayActorError
        when its actor was lost."""
        try:
            trace_json, phases, failures = ray.get(call.ref)
        except RayTaskError as e:  # kernelarena's own code failed in the actor: a bug, not the solution's
            raise EngineError(f"the evaluator failed on {call.job.solution.name}, workload "
                              f"{call.workload.uuid}:\n{e}") from e
        known = {(e.definition, e.workload) for e in self.stats.definition_errors}
        if failures and (call.job.definition.name, call.workload.uuid) not in known:  # once, whichever actor saw it
            self.stats.definition_errors.append(DefinitionError(call.job.definition.name, call.workload.uuid,
                                                                failures[0]))
        return None if trace_json is None else WorkerResult(Trace.model_validate_json(trace_json), phases)

    def _check_hung(self) -> None:
        limit = self.config.timeout_s + _HUNG_MARGIN_S
        now = time.monotonic()
        for actor in list(self.actors):
            if actor.calls and now - actor.current_since > limit:
                self._actor_lost(actor, f"the evaluator on {actor.kind.label} gave no answer in {limit:.0f} s")
            elif actor.ready is not None and now - actor.created > self.engine.start_timeout_s:
                self._actor_lost(actor, f"no evaluator for {actor.kind.label} started in "
                                        f"{self.engine.start_timeout_s:.0f} s")

    # ------------------------------------------------------------------ losses
    def _actor_lost(self, actor: _Actor, reason: str) -> None:
        """Drop the actor and record the results it had finished; its running workload (the first unfinished
        one) counts one lost attempt, the ones queued behind it go back to the queue as they were; start a
        replacement."""
        ray.kill(actor.handle, no_restart=True)
        self.actors.remove(actor)
        self.last_loss[actor.kind] = reason
        calls = []
        for call in actor.calls:  # results that arrived before the loss still count, once
            if ray.wait([call.ref], timeout=0)[0]:
                try:
                    result = self._result(call)
                    if result is not None:
                        self.record(result)
                    continue
                except RayActorError:
                    pass
            calls.append(call)
        requeue: Dict[int, _Job] = {}
        for index, call in enumerate(calls):
            key = (call.job.solution.name, call.workload.uuid)
            if index == 0:
                self.lost.setdefault(key, []).append(reason)
                if len(self.lost[key]) >= self.engine.max_attempts:
                    self._record_failure(call.job.definition, call.job.solution, call.workload,
                                         f"the evaluation was lost {len(self.lost[key])} times, not retried "
                                         f"further: " + "; ".join(self.lost[key]), actor.kind)
                    continue
                self.stats.retried += 1
            job = requeue.setdefault(id(call.job), _Job(call.job.definition, call.job.solution, deque(),
                                                         call.job.kinds))
            job.workloads.append(call.workload)
        for job in requeue.values():
            self.queue.appendleft(job)
        # A lost node takes its resources along: no replacement when the cluster has no slot of the kind left;
        # one that Ray has not yet seen go waits for a slot (up to start_timeout_s).
        alive = slot_kinds(node["Resources"] for node in ray.nodes() if node.get("Alive"))
        if self.replacements_left > 0 and actor.kind in alive:
            self.replacements_left -= 1
            self._start_actor(actor.kind)

    def _record_failure(self, definition: Definition, solution: Solution, workload: Workload, log: str,
                        kind: Optional[SlotKind] = None) -> None:
        """A RUNTIME_ERROR trace made here: in the environment of ``kind``'s slots when one of their traces has
        been seen, else in this machine's."""
        from ..evaluate import failure_trace

        trace = failure_trace(definition.name, workload, solution.name, Status.RUNTIME_ERROR, log, "cpu")
        if kind in self.environments:
            trace.evaluation.environment = self.environments[kind]
        self.record(WorkerResult(trace, {}))

    def _stop_actors(self) -> None:
        for ref in [a.handle.stop.remote() for a in self.actors if a.ready is None]:
            try:
                startup_s, restarts, starts = ray.get(ref, timeout=30)
            except (RayActorError, GetTimeoutError):
                continue  # an actor already gone has nothing left to stop
            self.stats.worker_startup_s += startup_s
            self.stats.worker_restarts += restarts
            self.stats.worker_starts.extend(starts)
        for actor in self.actors:
            ray.kill(actor.handle, no_restart=True)
        self.actors.clear()
