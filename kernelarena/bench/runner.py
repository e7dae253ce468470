"""The run loop: every (definition, solution, workload) of a dataset through the device workers, each trace
written to the dataset as soon as it exists."""

from __future__ import annotations

import itertools
import queue
import statistics
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Set, Tuple

from ..errors import KernelArenaError
from ..schema import Definition, Solution, Status, Trace, Workload
from ..store import TraceSet
from .config import RunConfig
from .worker import DefinitionError, DeviceWorkers, WorkerResult, warm_imports

if TYPE_CHECKING:
    from .engines import Engine

# Languages whose kernels only run on a CUDA GPU: on a CPU they are skipped before building.
_GPU_ONLY_LANGUAGES = ("cuda", "tilelang")


@dataclass(frozen=True)
class DefinitionResult:
    definition: str
    solutions: int
    passed: int
    failed: int
    best_speedup: Optional[float]
    best_solution: Optional[str]


@dataclass(frozen=True)
class Skipped:
    """A (definition, solution) left out before building, with the reason."""

    definition: str
    solution: str
    workloads: int
    reason: str


@dataclass
class RunReport:
    """What a run produced, and where its wall time went. ``traces`` are the traces made (with ``save``,
    each is on disk); ``skipped`` the solutions that cannot run on the run's devices; ``resumed`` the
    (solution, workload) pairs left out because a trace of them with the same settings exists."""

    traces: List[Trace] = field(default_factory=list)
    skipped: List[Skipped] = field(default_factory=list)
    resumed: int = 0
    wall_s: float = 0.0
    phases: Dict[str, float] = field(default_factory=lambda: defaultdict(float))
    """Seconds per phase of the evaluations (build, correctness, timing, reference), summed over lanes."""
    steps: Dict[str, float] = field(default_factory=lambda: defaultdict(float))
    """Where a phase's seconds went, as "PHASE: STEP" (bench/spent.py): the reference process's steps and the
    turns its requests waited, and the steps a solution's process reported (shown, never used to decide)."""
    worker_startup_s: float = 0.0
    worker_starts: List[Dict[str, float]] = field(default_factory=list)
    """Each solution worker's start-up steps in seconds (context, imports, warm_up, total), as it reported them."""
    worker_restarts: int = 0
    compiled_builds: int = 0
    """Evaluations whose build was compiled here rather than taken from the memory or disk cache."""
    definition_errors: List[DefinitionError] = field(default_factory=list)
    """Workloads whose reference or inputs failed: reported here, not as any solution's trace."""
    retried: int = 0
    """Evaluations started again because the machine or process evaluating them was lost (cluster engines)."""

    def by_definition(self) -> List[DefinitionResult]:
        """Per definition: solutions seen, passed and failed traces, best speedup and its solution."""
        groups: Dict[str, List[Trace]] = defaultdict(list)
        for t in self.traces:
            groups[t.definition].append(t)
        rows = []
        for name, traces in sorted(groups.items()):
            passed = [t for t in traces if t.passed]
            best = max(passed, key=lambda t: t.evaluation.performance.speedup_factor, default=None)
            rows.append(DefinitionResult(name, len({t.solution for t in traces}), len(passed),
                                         len(traces) - len(passed),
                                         best.evaluation.performance.speedup_factor if best else None,
                                         best.solution if best else None))
        return rows

    def worker_start_summary(self) -> str:
        """The median solution worker's start-up, by step ("" when none reported one)."""
        if not self.worker_starts:
            return ""
        steps = dict.fromkeys(k for start in self.worker_starts for k in start)
        median = {k: statistics.median(s[k] for s in self.worker_starts if k in s) for k in steps}
        parts = ", ".join(f"{k.replace('_', '-')} {v:.2f}" for k, v in median.items() if k != "total")
        total = median.get("total", 0.0)
        return f"a solution worker starts in {total:.2f}s ({parts}; median of {len(self.worker_starts)})"

    def status_counts(self) -> Dict[str, int]:
        counts: Dict[str, int] = defaultdict(int)
        for t in self.traces:
            counts[t.evaluation.status.value] += 1
        return dict(counts)


class TraceWriteError(KernelArenaError):
    """Appending a trace to the dataset failed; the run stopped. ``report`` holds what was saved before."""

    def __init__(self, message: str, report: RunReport):
        super().__init__(message)
        self.report = report


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the workers were stopped. ``report`` holds the traces finished (and, with
    ``save``, saved) before it."""

    def __init__(self, report: RunReport):
        super().__init__("run interrupted")
        self.report = report


class _Stopped(Exception):
    """Raised from the record callback to end a worker's task once the run is stopping."""


def default_devices() -> Tuple[str, ...]:
    """Every visible GPU, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    return ("cpu",)


def check_devices(devices: Sequence[str]) -> None:
    """Raise ValueError naming a device that is not "cpu", "cuda" or "cuda:N" of a visible GPU."""
    import torch

    for device in devices:
        kind, _, index = device.partition(":")
        if kind == "cpu" and not index:
            continue
        if kind != "cuda" or (index and not index.isdigit()):
            raise ValueError(f"device {device!r}: expected cpu, cuda or cuda:N")
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {device!r}: no CUDA GPU is visible on this machine (use cpu)")
        if index and int(index) >= count:
            raise ValueError(f"device {device!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")


def workload_size(definition: Definition, workload: Workload) -> int:
    """Elements in all tensor inputs: how big a workload is."""
    total = 0
    for shape in definition.shapes(workload.axes).values():
        count = 1
        for dim in shape or ():
            count *= dim
        total += count if shape is not None else 0
    return total


def select(dataset: TraceSet, definitions: Sequence[str] = (), solutions: Sequence[str] = (),
           workloads: Sequence[str] = (), smallest: Optional[int] = None
           ) -> List[Tuple[Definition, Solution, List[Workload]]]:
    """The (definition, solution, workloads) tasks matching the filters (empty filter: all); ``smallest`` keeps
    only that many of each definition's workloads, the smallest first. KeyError names a filter value that
    matches nothing."""
    for kind, names, known in (("definition", definitions, dataset.definitions),
                               ("solution", solutions, dataset.solutions)):
        missing = [n for n in names if n not in known]
        if missing:
            raise KeyError(f"no {kind} {missing[0]!r} in {dataset.root}")
    all_uuids = {w.workload.uuid for entries in dataset.workloads.values() for w in entries}
    missing = [u for u in workloads if u not in all_uuids]
    if missing:
        raise KeyError(f"no workload {missing[0]!r} in {dataset.root}")
    tasks = []
    for name, definition in sorted(dataset.definitions.items()):
        if definitions and name not in definitions:
            continue
        chosen = [w for w in dataset.workloads_for(name) if not workloads or w.uuid in workloads]
        if smallest is not None:
            chosen = sorted(chosen, key=lambda w: workload_size(definition, w))[:smallest]
        for solution in sorted(dataset.solutions_for(name), key=lambda s: s.name):
            if (not solutions or solution.name in solutions) and chosen:
                tasks.append((definition, solution, chosen))
    return tasks


def unrunnable_reason(solution: Solution, device: str) -> Optional[str]:
    """Why ``solution`` cannot run on ``device`` ("cpu", "cuda:0"), judged from its spec before building;
    None when it may run."""
    targets = {t.lower() for t in solution.spec.target_hardware}
    language = solution.spec.language.value
    if device.startswith("cuda"):
        if targets == {"cpu"}:
            return "target_hardware is cpu only"
        return None
    if "cpu" not in targets:
        return f"target_hardware {sorted(solution.spec.target_hardware)} does not include cpu"
    if language in _GPU_ONLY_LANGUAGES:
        return f"{language} solutions need a CUDA GPU"
    return None


def same_settings(config: RunConfig, device: str, hardware: Optional[str] = None) -> Callable[[Trace], bool]:
    """A test of whether an existing trace was made with the settings of this run on ``device``'s hardware
    (``hardware`` names it when the device is elsewhere, on a cluster): same hardware, and where the trace
    records them, the same correctness rounds, timed calls and timing mode (a failure trace records only the
    hardware). With the default rep count on a GPU, a slow call's loop took fewer (bench/timing.bounded_reps):
    any count from FEWEST_REPS up to the default is the same setting."""
    from .environment import environment
    from .timing import FEWEST_REPS

    hardware = hardware or environment(device).hardware
    reps = config.timing.counts(device)[1]
    gpu = device.startswith("cuda")
    fewest = min(FEWEST_REPS, reps) if gpu and config.timing.reps is None else reps

    def same(trace: Trace) -> bool:
        evaluation = trace.evaluation
        if evaluation is None or evaluation.environment.hardware != hardware:
            return False
        extra = (evaluation.correctness.extra or {}) if evaluation.correctness else {}
        if "rounds" in extra and extra["rounds"] != config.correctness_rounds:
            return False
        timing = evaluation.performance.solution_timing if evaluation.performance else None
        if timing is not None:
            if not fewest <= timing.count <= reps:
                return False
            if gpu and config.timing.mode is not None and config.timing.mode not in timing.mode:
                return False
        return True

    return same


@dataclass
class Schedule:
    """What a run will do: the tasks (definition, solution, workloads) in order, the solutions skipped
    before building, and how many (solution, workload) pairs ``resume`` leaves out."""

    tasks: List[Tuple[Definition, Solution, List[Workload]]]
    skipped: List[Skipped]
    resumed: int

    @property
    def evaluations(self) -> int:
        return sum(len(w) for _, _, w in self.tasks)


def schedule(dataset: TraceSet, config: RunConfig = RunConfig(), definitions: Sequence[str] = (),
             solutions: Sequence[str] = (), workloads: Sequence[str] = (), smallest: Optional[int] = None,
             resume: bool = False, engine: Optional["Engine"] = None) -> Schedule:
    """The work of a run with these filters (see ``run``), decided before anything is built. KeyError names a
    filter value that matches nothing."""
    if engine is None:
        devices = config.devices or default_devices()
        slots = [(devices[0], None)]
    else:  # the devices and hardware are the engine's (a cluster's slots); a pair traced on any of them is done
        devices = engine.devices(config.devices)
        slots = engine.slot_hardware(config.devices) if resume else []
    done = set().union(*(_traced_pairs(dataset, config, d, h) for d, h in slots)) if resume else set()
    plan = Schedule([], [], 0)
    for definition, solution, chosen in select(dataset, definitions, solutions, workloads, smallest):
        reasons = [unrunnable_reason(solution, d) for d in devices]
        if all(reasons):
            plan.skipped.append(Skipped(definition.name, solution.name, len(chosen), reasons[0]))
            continue
        remaining = [w for w in chosen if (solution.name, w.uuid) not in done]
        plan.resumed += len(chosen) - len(remaining)
        if remaining:
            plan.tasks.append((definition, solution, remaining))
    return plan


def run(dataset: TraceSet, config: RunConfig = RunConfig(), definitions: Sequence[str] = (),
        solutions: Sequence[str] = (), workloads: Sequence[str] = (), save: bool = True,
        on_trace: Optional[Callable[[Trace], None]] = None, smallest: Optional[int] = None,
        on_start: Optional[Callable[[Definition, Solution, int], None]] = None, resume: bool = False,
        engine: Optional["Engine"] = None) -> RunReport:
    """Evaluate the selected solutions on their workloads and return the report.

    Each device (``config.devices``, default every visible GPU or the CPU) takes tasks from a shared queue,
    ``config.lanes_for(device)`` at once, each solution in a fresh process; ``engine`` (bench/engines, e.g. Ray)
    evaluates them elsewhere instead (``config.devices`` then names kinds of its slots), and this process still
    records every trace. A solution that cannot run
    on any of the devices (its target_hardware, its language) is skipped before building, listed in
    ``report.skipped`` and written nowhere. With ``resume``, (solution,
    workload) pairs that already have a trace made on this hardware with the same settings are left out.
    With ``save``, each trace is appended to the dataset as soon as it exists, so a run that is interrupted
    keeps everything it finished. ``on_start(definition, solution, workloads)`` is called as a worker takes a
    task, ``on_trace(trace)`` after each trace is recorded (saved, with ``save``).

    Raises KeyError for a filter value that matches nothing, TraceWriteError when a trace cannot be appended
    (the run stops there) and, on Ctrl-C, RunInterrupted; both carry the report of what was done.
    """
    started = time.perf_counter()
    if engine is None:
        check_devices(config.devices)
    plan = schedule(dataset, config, definitions, solutions, workloads, smallest, resume, engine)
    report = RunReport(skipped=list(plan.skipped), resumed=plan.resumed)
    todo: "queue.Queue" = queue.Queue()
    for task in plan.tasks:
        todo.put(task)
    lock = threading.Lock()
    stopping = threading.Event()
    failures: List[BaseException] = []
    workers: List[DeviceWorkers] = []

    def record(result: WorkerResult) -> None:
        """The one path by which a trace becomes part of the run: saved first (with ``save``), then
        reported. A failed save stops the run."""
        with lock:
            if stopping.is_set():
                raise _Stopped()
            if save:
                try:
                    dataset.add_traces([result.trace])
                except (OSError, KernelArenaError) as e:
                    stopping.set()
                    failures.append(TraceWriteError(
                        f"could not append the trace of {result.trace.solution} on workload "
                        f"{result.trace.workload.uuid} under {dataset.root}: {e}; the run stopped "
                        f"({len(report.traces)} traces saved before it)", report))
                    raise _Stopped() from e
            report.traces.append(result.trace)
            for phase, seconds in result.phases.items():
                if phase == "compiled_builds":
                    report.compiled_builds += int(seconds)
                elif ": " in phase:
                    report.steps[phase] += seconds
                else:
                    report.phases[phase] += seconds
            if on_trace is not None:
                on_trace(result.trace)

    def upcoming(count: int) -> List[Solution]:
        """The solutions of the next ``count`` tasks still queued (the pool starts their workers ahead)."""
        with todo.mutex:
            return [solution for _, solution, _ in itertools.islice(todo.queue, count)]

    def lane(worker: DeviceWorkers) -> None:
        """Take tasks from the queue and evaluate them on ``worker``'s device until none is left."""
        try:
            while not stopping.is_set():
                with lock:  # taking a task and announcing it at once: ``on_start`` sees the queue's order
                    try:
                        definition, solution, chosen = todo.get_nowait()
                    except queue.Empty:
                        return
                    if on_start is not None:
                        on_start(definition, solution, len(chosen))
                worker.evaluate(definition, solution, chosen, record)
        except _Stopped:
            pass
        except BaseException as e:  # noqa: B902 - handed to the main thread, which raises it
            stopping.set()
            failures.append(e)

    def serve(device: str) -> None:
        """The device's reference process and pool, and its lanes (config.lanes_for) taking tasks at once."""
        try:
            worker = DeviceWorkers(device, config, dataset.root,
                                   warm_imports((s for _, s, _ in plan.tasks), device), upcoming)
        except BaseException as e:  # noqa: B902 - handed to the main thread, which raises it
            stopping.set()
            failures.append(e)
            return
        with lock:
            workers.append(worker)
        lanes = [threading.Thread(target=lane, args=(worker,), name=f"lane-{device}-{i}", daemon=True)
                 for i in range(config.lanes_for(device))]
        try:
            for t in lanes:
                t.start()
            for t in lanes:
                t.join()
        finally:
            worker.stop()
            with lock:
                report.worker_startup_s += worker.startup_s
                report.worker_starts.extend(worker.pool.startups)
                report.worker_restarts += worker.restarts
                report.definition_errors.extend(worker.definition_errors)

    if engine is not None:
        try:
            stats = engine.execute(plan.tasks, config, dataset.root, record, on_start)
            report.worker_startup_s, report.worker_restarts = stats.worker_startup_s, stats.worker_restarts
            report.retried = stats.retried
            report.worker_starts.extend(stats.worker_starts)
            report.definition_errors.extend(stats.definition_errors)
        except _Stopped:
            pass  # a failed append: ``failures`` says which
        except KeyboardInterrupt:  # the engine stopped its evaluators on the way out
            report.wall_s = time.perf_counter() - started
            raise RunInterrupted(report) from None
        report.wall_s = time.perf_counter() - started
        if failures:
            raise failures[0]
        return report

    devices = config.devices or default_devices()
    threads = [threading.Thread(target=serve, args=(d,), name=f"serve-{d}", daemon=True) for d in devices]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        stopping.set()
        with lock:
            alive = list(workers)
        for worker in alive:  # the threads waiting on their processes wake up and see ``stopping``
            worker.kill()
        for t in threads:
            t.join(10)
        report.wall_s = time.perf_counter() - started
        raise RunInterrupted(report) from None
    report.wall_s = time.perf_counter() - started
    if failures:
        raise failures[0]
    return report


def _traced_pairs(dataset: TraceSet, config: RunConfig, device: str,
                  hardware: Optional[str] = None) -> Set[Tuple[str, str]]:
    """(solution, workload uuid) pairs with a trace made on ``device``'s hardware (or ``hardware``) with this
    run's settings."""
    same = same_settings(config, device, hardware)
    return {(t.solution, t.workload.uuid) for group in dataset.traces.values() for t in group if same(t)}


def count_evaluations(dataset: TraceSet, definitions=(), solutions=(), workloads=(), smallest=None) -> int:
    """How many traces a run with these filters will produce (for a progress bar)."""
    return schedule(dataset, RunConfig(), definitions, solutions, workloads, smallest).evaluations


__all__ = ["DefinitionResult", "RunInterrupted", "RunReport", "Schedule", "Skipped", "Status", "TraceWriteError",
           "check_devices", "count_evaluations", "default_devices", "run", "schedule", "select", "unrunnable_reason"]
