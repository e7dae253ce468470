"""Isolation: per device, reference processes that judge (one per lane) and time references, and a pool of
pre-started solution processes.

Each solution is evaluated in a process no other solution has touched, taken from a pool of clean workers
started ahead (torch imported, sandbox applied), so the start-up cost hides behind the previous evaluation.
The reference process computes reference outputs and timings, compares and decides; it never imports a
solution. The parent relays results between them, keeps the clock, survives crashes and hangs, and records
them as traces. Nothing a solution's process sends is unpickled here.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from .. import env
from ..schema import Definition, Environment, Solution, Status, Trace, Workload
from . import quiet, spent
from .config import RunConfig
from .process import MAX_MESSAGE, ChildDied, ChildProcess, ChildTimeout, ProtocolError

STOPPED = "the run stopped"
"""Why a reference process was not started, or its answer not waited for: the run was stopped meanwhile."""


@dataclass
class WorkerResult:
    trace: Trace
    phases: Dict[str, float]


@dataclass(frozen=True)
class DefinitionError:
    """A failure of the definition's side (its reference raised, inputs could not be made), not a solution's."""

    definition: str
    workload: str
    message: str


class WorkerPool:
    """Solution processes started ahead of need; each is used for one solution and then stopped.

    A worker imports, while it waits, what its solution will import (``warm``: triton, flashinfer, tvm_ffi; a
    flashinfer import alone takes seconds). With ``upcoming`` (the warm imports of the next tasks, in order) the
    pool starts each spare for one of those tasks and hands a solution the spare started for it, so a worker
    imports only what its own solution needs; without it every spare imports ``warm``."""

    def __init__(self, device: str, config: RunConfig, root: Optional[Path], warm: Tuple[str, ...] = (),
                 lock: str = "", upcoming: Optional[Callable[[int], List[Tuple[str, ...]]]] = None):
        self.device, self.config, self.root, self.warm, self.lock = device, config, root, warm, lock
        self.upcoming = upcoming
        self.spares: collections.deque = collections.deque()  # (warm imports, ChildProcess), oldest first
        self.waited_s = 0.0
        self.startups: List[Dict[str, float]] = []
        """Each worker taken: its start-up steps' seconds as it reported them (context, imports, warm_up, total)."""
        self.fits: List[bool] = []
        """Each worker taken: whether it had imported what its solution needs (it was started for it)."""
        self.taking: Optional[ChildProcess] = None
        """The worker ``take`` is handing over now (waiting for it to be ready): out of the spares and not yet a
        lane's, so that a stop (DeviceWorkers.kill) reaches it."""

    def _start(self, warm: Tuple[str, ...]) -> ChildProcess:
        return ChildProcess("solution", self.device, self.config, self.root, warm, self.lock)

    def _fill(self) -> None:
        """Start the spares the next tasks want; stop the oldest unwanted ones past the pool's size."""
        size = max(1, self.config.spares())
        wanted = collections.Counter([self.warm] * size if self.upcoming is None else self.upcoming(size))
        unwanted = []
        for warm, child in self.spares:
            if wanted[warm] > 0:
                wanted[warm] -= 1
            else:
                unwanted.append((warm, child))
        for warm, count in wanted.items():
            for _ in range(count):
                self.spares.append((warm, self._start(warm)))
        for entry in unwanted[:max(0, len(self.spares) - size)]:
            self.spares.remove(entry)
            entry[1].stop(graceful=False)

    def take(self, warm: Optional[Tuple[str, ...]] = None) -> ChildProcess:
        """A clean worker for a solution that imports ``warm`` (default: the pool's), started and sandboxed (or
        dead: its first evaluation then reports why): the spare started for it, else the spare that imported the
        most of it, else a new one."""
        warm = self.warm if warm is None else tuple(warm)
        if not self.spares:
            self._fill()
        best = max(self.spares, key=lambda entry: (entry[0] == warm, len(set(entry[0]) & set(warm)),
                                                   -len(entry[0])), default=None)
        if best is None:
            child, fits = self._start(warm), True
        else:
            self.spares.remove(best)
            child, fits = best[1], set(warm) <= set(best[0])
        self.taking = child
        self._fill()  # the next ones start while this one works
        started = time.perf_counter()
        try:
            child.wait_ready(self.config.timeout_s)
        except (ChildDied, ChildTimeout, ProtocolError):
            child.kill()
        finally:
            self.taking = None
        self.waited_s += time.perf_counter() - started
        self.fits.append(fits)
        steps = (child.ready or {}).get("startup")
        if isinstance(steps, dict):  # the child's own clock: only shown, never used to decide anything
            self.startups.append({str(k): float(v) for k, v in steps.items() if isinstance(v, (int, float))})
        return child

    def close(self) -> None:
        while self.spares:
            self.spares.popleft()[1].stop(graceful=False)


class _Reference:
    """A reference process's place: the process (None before its start and after it died or hung), its requests one
    at a time, and how many lanes use it now."""

    def __init__(self) -> None:
        self.child: Optional[ChildProcess] = None
        self.turn = threading.Lock()
        self.users = 0


class DeviceWorkers:
    """The reference processes and the solution pool of one device. ``evaluate`` never raises for a solution's
    misbehaviour; definition-side failures go to ``definition_errors`` instead of traces. Several threads (the
    device's lanes) may call ``evaluate`` at once, for different solutions: they share the pool and the reference
    timer, and each evaluation is judged by the judging process that the fewest lanes use now
    (``config.judges_for``: one per lane, or one shared, its requests taking turns)."""

    def __init__(self, device: str, config: RunConfig, root: Optional[Path], warm: Tuple[str, ...] = (),
                 upcoming: Optional[Callable[[int], List[Solution]]] = None,
                 upcoming_imports: Optional[Callable[[int], List[Tuple[str, ...]]]] = None):
        """``warm``: what every spare imports; ``upcoming(n)``: the solutions of the next ``n`` tasks this device
        may get (the pool then starts each spare with what one of them imports); ``upcoming_imports(n)`` the same
        given as those solutions' ``warm_imports`` (for a caller that has only those, a Ray actor)."""
        # Absolute: the reference and solution processes run in scratch folders of their own, where a dataset
        # path relative to the caller's working folder (its blobs, say) would name nothing.
        root = Path(root).resolve() if root is not None else None
        self.device, self.config, self.root = device, config, root
        # On a GPU, timed loops and worker start-ups take turns on the device (bench/quiet.py).
        gpu = device.startswith("cuda")
        self.lock = quiet.make(tempfile.gettempdir(), device) if gpu and env.device_lock_enabled() else ""
        needs = upcoming_imports if upcoming is None else \
            (lambda n: [warm_imports((solution,), device) for solution in upcoming(n)])
        self.pool = WorkerPool(device, config, root, warm, self.lock, needs)
        self.judges = [_Reference() for _ in range(config.judges_for(device))]
        """The judging reference processes: the first started here, the others at their first request."""
        self.timer = _Reference()
        """The reference process that only times references (``config.reference_timer_for``), started at its first
        request, so that the judging ones go on comparing meanwhile."""
        self._timer_threads = ThreadPoolExecutor(1, thread_name_prefix=f"reference-timer-{device}") \
            if config.reference_timer_for(device) else None
        self._timings: Dict[Tuple[str, str], Future] = {}
        self._timings_reported: set = set()
        self._fallback_timings: Dict[Tuple[str, str], str] = {}
        """Per workload, the timing a judging process made where the timer could not start."""
        self._fallback_turn = threading.Lock()
        self.environment = Environment(hardware=device)
        self.definition_errors: List[DefinitionError] = []
        self._broken: Dict[Tuple[str, str], str] = {}
        self.restarts = 0
        self.oracle_startup_s = 0.0
        self.stopped = False
        self.active: set = set()
        """The solution processes evaluating now (one per lane), for ``kill``."""
        self._state = threading.Lock()  # the counters, ``active``
        self._pool_turn = threading.Lock()  # one lane takes a worker from the pool at a time
        self.handoff = Path(tempfile.mkdtemp(prefix="kernelarena-handoff-"))
        """Our copies of the solutions' payload files, read by the reference process (``_handed_over``)."""
        self._kept: Optional[Tuple[str, ChildProcess]] = None
        """The worker ``evaluate(..., keep=True)`` kept for more workloads of its solution (the solution's JSON)."""
        started = time.perf_counter()
        self.pool._fill()  # the template process starts here (a torch import), then the first workers fork
        self.pool.waited_s += time.perf_counter() - started
        self._ensure(self.judges[0], "the reference worker process")

    @property
    def startup_s(self) -> float:
        """Seconds the run waited for workers to start (what the pool did not hide)."""
        return self.pool.waited_s + self.oracle_startup_s

    def kill(self) -> None:
        """Stop at once (Ctrl-C): the current worker, the spares and the reference process; evaluate returns."""
        self.stopped = True
        kept = [self._kept[1]] if self._kept is not None else []
        with self._state:
            active = list(self.active)
        references = [reference.child for reference in (*self.judges, self.timer)]
        for child in [*active, *references, *kept, self.pool.taking, *(spare for _, spare in self.pool.spares)]:
            if child is not None:
                child.kill()

    def stop(self) -> None:
        self.stopped = True  # a reference timing still under way ends here (its process stopped below)
        self.release()
        self.pool.close()
        if self._timer_threads is not None:
            self._timer_threads.shutdown(wait=False, cancel_futures=True)
        for reference in (*self.judges, self.timer):
            if reference.child is not None:
                reference.child.stop()
                reference.child = None
        if self.lock:
            quiet.remove(self.lock)
        shutil.rmtree(self.handoff, ignore_errors=True)

    # ------------------------------------------------------------------ the reference processes
    def _ensure(self, reference: _Reference, called: str) -> Optional[str]:
        """Start ``reference``'s process unless it runs (one that died is a restart); why it could not start, or
        None. A judging process's start counts as the run's wait for workers; the timer starts in the
        background."""
        if reference.child is not None and reference.child.alive():
            return None
        if reference.child is not None:
            reference.child.stop(graceful=False)
            self._count_restart()
        started = time.perf_counter()
        reference.child = ChildProcess("reference", self.device, self.config, self.root, lock=self.lock)
        try:
            if self.stopped:  # ``stop`` ran while it was being made: nothing else would stop it
                reference.child.stop(graceful=False)
                reference.child = None
                return STOPPED
            ready = reference.child.wait_ready(self.config.timeout_s + 120)  # a first start measures the ceilings
            self.environment = Environment.model_validate(ready["environment"])
            return None
        except (ChildDied, ChildTimeout, ProtocolError, KeyError, ValueError) as e:
            log = reference.child.log_tail()
            reference.child.stop(graceful=False)
            reference.child = None
            return f"{called} for {self.device} could not start ({type(e).__name__}).\n{log}"
        finally:
            if reference is not self.timer:
                with self._state:
                    self.oracle_startup_s += time.perf_counter() - started

    @contextlib.contextmanager
    def _judge(self):
        """The judging process for one evaluation (its check and verdict must reach the same process): the one the
        fewest lanes use now, the first of those."""
        with self._state:
            judge = min(self.judges, key=lambda j: j.users)
            judge.users += 1
        try:
            yield judge
        finally:
            with self._state:
                judge.users -= 1

    def _ask(self, judge: _Reference, request: tuple, timeout: float) -> Tuple[dict, Dict[str, float]]:
        """``judge``'s answer ({"dead": log} when it died or hung: it is then restarted) and the seconds it took as
        phases: "reference" in all, of which "reference: turn wait" waiting for the requests of other lanes that
        share it and "reference: STEP" the process's own steps (bench/spent.py). ``timeout`` counts from this
        request's turn."""
        started = time.perf_counter()
        with judge.turn:
            turn = time.perf_counter()
            answer = self._ask_now(judge, request, timeout)
        phases = {"reference": time.perf_counter() - started, "reference: turn wait": turn - started}
        for step, seconds in spent.reported(answer.pop("spent", None), phases["reference"]).items():
            phases[f"reference: {step}"] = seconds
        phases["reference: request send"] = spent.take().get("request send", 0.0)
        return answer, phases

    def _count_restart(self) -> None:
        with self._state:
            self.restarts += 1

    def _ask_now(self, judge: _Reference, request: tuple, timeout: float) -> dict:
        problem = self._ensure(judge, "the reference worker process")
        if problem:
            return {"dead": problem}
        return self._exchange(judge, request, timeout, "the reference process")

    def _exchange(self, reference: _Reference, request: tuple, timeout: float, called: str) -> dict:
        """The answer of ``reference``'s process (a judge or the timer) to ``request``; one that dies or hangs
        meanwhile is stopped and forgotten (the next request starts a fresh one), and the answer is {"dead": what
        happened, with its log}. A judging process's send is timed (its lane's step)."""
        child = reference.child
        offset = child.log_size()
        try:
            with spent.timed("request send") if reference is not self.timer else contextlib.nullcontext():
                child.send(request)  # payloads travel as files: a request is small, this stays short
            return child.receive(timeout)
        except (ChildDied, ChildTimeout, ProtocolError) as e:
            log = child.log_tail(offset)
            child.stop(graceful=False)
            reference.child = None
            self._count_restart()
            what = "did not answer in time" if isinstance(e, ChildTimeout) else "died"
            return {"dead": f"{called} {what} ({e}).\n{log}"}

    # ------------------------------------------------------------------ the reference timer
    def _request_reference_timing(self, definition: Definition, workload: Workload) -> None:
        """Have the reference timer time the reference on ``workload`` (once per workload), in the background."""
        if self._timer_threads is None:
            return
        key = (definition.name, workload.uuid)
        with self._state:
            if key not in self._timings:
                self._timings[key] = self._timer_threads.submit(self._time_reference, definition, workload)

    def _time_reference(self, definition: Definition, workload: Workload) -> Tuple[dict, Dict[str, float]]:
        """The reference timer's answer ({"timing": json}, {"definition_error": ...} or {"dead": ...}) and its time
        as the "reference timing" phase with the process's own steps."""
        started = time.perf_counter()
        answer = self._ask_timer(("time", definition.to_json(), workload.to_json()))
        took = time.perf_counter() - started
        phases = {"reference timing": took}
        for step, seconds in spent.reported(answer.pop("spent", None), took).items():
            phases[f"reference timing: {step}"] = seconds
        return answer, phases

    def _ask_timer(self, request: tuple) -> dict:
        with self.timer.turn:
            if self.stopped:
                return {"dead": STOPPED}
            problem = self._ensure(self.timer, "the reference timer process")
            if problem:  # one that could not start hands its timing to a judging process (_reference_timing)
                return {"dead": problem, **({} if problem == STOPPED else {"unstarted": True})}
            return self._exchange(self.timer, request, self.config.timeout_s, "the reference timer process")

    def _reference_timing(self, judge: _Reference, definition: Definition, workload: Workload,
                          phases: Dict[str, float]) -> Tuple[Optional[str], Optional[str]]:
        """(the reference timer's timing of the reference as JSON, or None when the judging process timed it
        itself; why it could not be timed, or None), waiting for it. The wait is the lane's "reference: timing
        wait"; the timer's own time goes to the first evaluation of the workload that waits for it, as the
        "reference timing" phase. A timer that cannot start hands the timing to ``judge``, once per workload
        (the lanes' other judges take that timing, so every trace of the workload has the same one)."""
        key = (definition.name, workload.uuid)
        future = self._timings.get(key)
        if future is None:
            return None, None
        started = time.perf_counter()
        answer, timer_phases = future.result()
        waited = time.perf_counter() - started
        _add_phases(phases, {"reference": waited, "reference: timing wait": waited})
        with self._state:
            first = key not in self._timings_reported
            self._timings_reported.add(key)
        if first:
            _add_phases(phases, timer_phases)
        if "timing" in answer:
            return str(answer["timing"]), None
        if answer.get("unstarted"):  # not the definition's fault: a judging process times it instead
            with self._fallback_turn:
                if key not in self._fallback_timings:
                    answer, reference = self._ask(judge, ("time", definition.to_json(), workload.to_json()),
                                                  self.config.timeout_s)
                    _add_phases(phases, reference)
                    if "timing" not in answer:
                        return None, str(answer.get("definition_error") or answer.get("dead") or answer)
                    self._fallback_timings[key] = str(answer["timing"])
                return self._fallback_timings[key], None
        return None, str(answer.get("definition_error") or answer.get("dead") or answer)

    def _definition_failed(self, definition: Definition, workload: Workload, message: str) -> None:
        """Record a failure of the definition's side on ``workload``, once, whichever lane found it."""
        key = (definition.name, workload.uuid)
        with self._state:
            if key not in self._broken:
                self._broken[key] = message
                self.definition_errors.append(DefinitionError(definition.name, workload.uuid, message))

    # ------------------------------------------------------------------ evaluation
    def release(self) -> None:
        """Stop the worker a ``keep`` evaluation kept, if any."""
        kept, self._kept = self._kept, None
        if kept is not None:
            self._retire(kept[1])

    def evaluate(self, definition: Definition, solution: Solution, workloads: List[Workload],
                 on_result: Callable[[WorkerResult], None], keep: bool = False) -> None:
        """Evaluate ``solution`` on each workload in one fresh worker (a new one after a crash), calling
        ``on_result`` as each trace is ready. With ``keep`` the worker stays for the next call if that call is
        for the same solution (a caller that hands over one workload at a time, the Ray engine); a call for any
        other solution stops it first, so no process ever sees two solutions."""
        child: Optional[ChildProcess] = None
        identity = solution.to_json()
        if self._kept is not None:
            if self._kept[0] == identity:
                child = self._kept[1]
                self._kept = None
            else:
                self.release()
        try:
            with self._judge() as judge:
                for workload in workloads:
                    if self.stopped:
                        return
                    key = (definition.name, workload.uuid)
                    if key in self._broken:
                        continue
                    answer, reference = self._ask(judge, ("prepare", definition.to_json(), workload.to_json(),
                                                          self._timer_threads is None), self.config.timeout_s)
                    if "dead" in answer and judge.child is None and self._unstartable(answer):
                        on_result(WorkerResult(self._failure(definition, solution, workload, Status.RUNTIME_ERROR,
                                                             answer["dead"], None), {}))
                        continue
                    if not answer.get("ok"):
                        if self.stopped:  # the run stopped under the request: nobody's failure
                            return
                        self._definition_failed(definition, workload,
                                                answer.get("definition_error") or answer.get("dead") or str(answer))
                        continue
                    self._request_reference_timing(definition, workload)
                    if child is None or not child.alive():
                        if child is not None:
                            self._retire(child, graceful=False)
                            self._count_restart()
                        with self._pool_turn:
                            child = self.pool.take(warm_imports((solution,), self.device))
                        with self._state:  # kill() sets ``stopped``, then reads ``active`` under this lock
                            self.active.add(child)
                            stopped = self.stopped
                        if stopped:  # stopped while the pool handed this worker over: it evaluates nothing
                            return
                    trace, phases, reusable = self._evaluate_one(judge, child, definition, solution, workload)
                    if self.stopped:  # killed under the evaluation: the run's stop, not the solution's failure
                        return
                    _add_phases(phases, reference)
                    if trace is not None:  # None: the reference could not be timed, a definition error
                        on_result(WorkerResult(trace, phases))
                    if not reusable:
                        self._retire(child, graceful=False)
                        child = None
                        self._count_restart()
        finally:
            if child is not None and keep and not self.stopped and child.alive():
                self._kept = (identity, child)
            elif child is not None:
                self._retire(child)

    def _retire(self, child: ChildProcess, graceful: bool = True) -> None:
        with self._state:
            self.active.discard(child)
        child.stop(graceful=graceful)

    def _unstartable(self, answer: dict) -> bool:
        return "could not start" in answer.get("dead", "")

    def _failure(self, definition, solution, workload, status, log, sandbox, comparison=None) -> Trace:
        from .correctness import Comparison
        from .evaluate import failure_trace

        environment = self.environment.model_copy(update={"sandbox": sandbox})
        if comparison is not None:
            comparison = Comparison(status, comparison.get("max_absolute_error", 0.0),
                                    comparison.get("max_relative_error", 0.0))
        return failure_trace(definition.name, workload, solution.name, status, log, environment, comparison)

    def _evaluate_one(self, judge: _Reference, child: ChildProcess, definition: Definition, solution: Solution,
                      workload: Workload) -> Tuple[Optional[Trace], Dict[str, float], bool]:
        """(trace, seconds per phase by our clock, whether the worker may go on with this solution), judged by
        ``judge``; no trace when the reference could not be timed (a definition error, recorded)."""
        phases: Dict[str, float] = {}
        sandbox = _sandbox_of(child)
        offset = child.log_size()
        budget = self.config.timeout_s  # the solution's time; waits on the reference process are not counted
        phase, mark = "build", time.perf_counter()

        def fail(status: Status, log: str, comparison: Optional[dict] = None):
            return self._failure(definition, solution, workload, status, log, sandbox, comparison)

        def close_phase(next_phase: Optional[str]) -> None:
            nonlocal phase, mark, budget
            now = time.perf_counter()
            phases[phase] = phases.get(phase, 0.0) + now - mark
            budget -= now - mark
            phase, mark = next_phase, now

        try:
            if not child.alive():
                raise ChildDied("it is not running")
            child.send(("evaluate", definition.to_json(), solution.to_json(), workload.to_json()))
            while True:
                message = child.receive(budget - (time.perf_counter() - mark))
                if "phase" in message:
                    close_phase(str(message["phase"]) if message["phase"] in ("build", "correctness", "timing")
                                else phase)
                    if message.get("compiled"):
                        phases["compiled_builds"] = 1.0
                elif "failure" in message:
                    close_phase(None)
                    failure = message["failure"]
                    status = Status(failure.get("status")) if failure.get("status") in _SOLUTION_FAILURES else None
                    if status is None:
                        raise ProtocolError(f"the solution process reported an unknown failure {failure!r:.200}")
                    return fail(status, str(failure.get("log", ""))), phases, not failure.get("fatal")
                elif message.get("payload") == "rounds":
                    data = self._handed_over(child, message)
                    _add_reported(phases, "correctness", message.get("spent"),
                                  phases.get("correctness", 0.0) + time.perf_counter() - mark)
                    close_phase(None)
                    try:
                        answer, reference = self._ask(judge, ("check", definition.to_json(), workload.to_json(),
                                                              data, solution.name), self.config.timeout_s)
                    finally:
                        _remove(data)
                    _add_phases(phases, reference)
                    if not answer.get("ok"):
                        child.send("stop")
                        return self._judged_failure(answer, fail), phases, "malformed" not in answer
                    phase, mark = "timing", time.perf_counter()  # before the child can start: its steps fall inside
                    child.send("time")
                elif message.get("payload") == "timing":
                    data = self._handed_over(child, message)
                    _add_reported(phases, "timing", message.get("spent"),
                                  phases.get("timing", 0.0) + time.perf_counter() - mark)
                    close_phase(None)
                    environment = self.environment.model_copy(update={"sandbox": sandbox})
                    try:
                        timing, problem = self._reference_timing(judge, definition, workload, phases)
                        if problem is not None:
                            if not self.stopped:  # else the run was stopped under it: nobody's fault
                                self._definition_failed(definition, workload, problem)
                            return None, phases, True
                        answer, reference = self._ask(judge, ("verdict", definition.to_json(), solution.name,
                                                              workload.to_json(), data, environment.to_json(),
                                                              timing), self.config.timeout_s)
                    finally:
                        _remove(data)
                    _add_phases(phases, reference)
                    if "trace" in answer:
                        return Trace.model_validate_json(answer["trace"]), phases, True
                    return self._judged_failure(answer, fail), phases, False
                else:
                    raise ProtocolError(f"the solution process sent a message outside the protocol: "
                                        f"{json.dumps(message)[:200]}")
        except ChildTimeout:
            close_phase(None)
            return (fail(Status.TIMEOUT, f"timed out after {self.config.timeout_s:.0f} s (build included); worker "
                         f"killed.\n" + child.log_tail(offset)), phases, False)
        except ChildDied:
            child.process.join(10)
            close_phase(None)
            return (fail(Status.RUNTIME_ERROR, f"worker process died (exit code {child.exit_code()}) while "
                         "evaluating.\n" + child.log_tail(offset)), phases, False)
        except ProtocolError as e:
            close_phase(None)
            return fail(Status.RUNTIME_ERROR, f"{e}; worker killed.\n" + child.log_tail(offset)), phases, False

    def _handed_over(self, child: ChildProcess, message: dict) -> str:
        """The path of our copy of the payload file the solution's process named, for the reference process.
        Copied, not linked or moved: the solution's process cannot change what is judged after handing it over.
        Only a regular file directly in its scratch folder is read (no link followed, nothing blocking), at most
        MAX_MESSAGE bytes; anything else is ProtocolError."""
        name = message.get("file")
        if not isinstance(name, str) or not _PAYLOAD_NAME.fullmatch(name):
            raise ProtocolError(f"the solution process named no payload file it may name: {name!r:.100}")
        target = self.handoff / f"{uuid.uuid4().hex}.pt"
        try:
            source = os.open(child.scratch / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as e:
            raise ProtocolError(f"the payload file {name} of the solution process could not be opened: {e}") from e
        try:
            status = os.fstat(source)
            if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_MESSAGE:
                raise ProtocolError(f"the payload {name} of the solution process is not a regular file of at most "
                                    f"{MAX_MESSAGE} bytes")
            with open(target, "wb") as out:
                copied = 0
                while copied < status.st_size:
                    sent = os.sendfile(out.fileno(), source, copied, status.st_size - copied)
                    if sent == 0:  # shortened meanwhile: what is there is what is judged
                        break
                    copied += sent
        finally:
            os.close(source)
        with contextlib.suppress(OSError):
            os.unlink(child.scratch / name)
        return str(target)

    @staticmethod
    def _judged_failure(answer: dict, fail) -> Trace:
        if "failure" in answer:
            failure = answer["failure"]
            return fail(Status(failure["status"]), failure["log"], failure)
        if "malformed" in answer:
            return fail(Status.RUNTIME_ERROR, "the solution's process sent results the reference process could "
                        f"not check:\n{answer['malformed']}")
        if "definition_error" in answer:
            return fail(Status.RUNTIME_ERROR, "the reference failed while checking this solution's results:\n"
                        + answer["definition_error"])
        return fail(Status.RUNTIME_ERROR, "the reference process failed while judging this solution's results:\n"
                    + str(answer.get("dead", answer))[-8000:])


_PAYLOAD_NAME = re.compile(r"payload-(rounds|timing)\.pt")


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _add_phases(phases: Dict[str, float], more: Dict[str, float]) -> None:
    for name, seconds in more.items():
        phases[name] = phases.get(name, 0.0) + seconds


def _add_reported(phases: Dict[str, float], phase: str, reported, limit: float) -> None:
    """The steps of ``phase`` as the solution's process reported them (only shown: it may report anything),
    kept only if together they fit in the phase's length by our clock (spent.reported)."""
    _add_phases(phases, {f"{phase}: {step}": s for step, s in spent.reported(reported, limit).items()})


def warm_imports(solutions, device: str) -> Tuple[str, ...]:
    """Modules the given solutions will import on ``device`` that a pool worker can import while it waits (each
    worker is a fresh process, so without this every solution would pay for them)."""
    modules = []
    gpu = device.startswith("cuda")
    for solution in solutions:
        language = solution.spec.language.value
        sources = " ".join(source.content for source in solution.sources)
        if language == "triton" or "import triton" in sources:
            modules.append("triton")
        if not gpu:  # the rest are GPU libraries: on the CPU their solutions do not get as far as importing
            continue
        if language == "tilelang":
            modules.append("tilelang")
        if solution.spec.binding is not None and solution.spec.binding.value == "tvm-ffi":
            modules.append("tvm_ffi")
        if "flashinfer" in sources:
            modules.append("flashinfer")
    return tuple(dict.fromkeys(modules))


_SOLUTION_FAILURES = {Status.COMPILE_ERROR.value, Status.RUNTIME_ERROR.value}


def _sandbox_of(child: ChildProcess) -> Dict[str, str]:
    reported = (child.ready or {}).get("sandbox")
    if not isinstance(reported, dict):
        return {"process": "fresh", "landlock": "unknown: the worker did not start", "seccomp": "unknown"}
    return {str(k): str(v) for k, v in reported.items()}
