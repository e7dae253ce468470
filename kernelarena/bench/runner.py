"""The run loop: every (definition, solution, workload) of a dataset through the device workers, each trace
written to the dataset as soon as it exists."""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..schema import Definition, Solution, Status, Trace, Workload
from ..store import TraceSet
from .config import RunConfig
from .worker import DefinitionError, DeviceWorkers, WorkerResult, warm_imports


@dataclass(frozen=True)
class DefinitionResult:
    definition: str
    solutions: int
    passed: int
    failed: int
    best_speedup: Optional[float]
    best_solution: Optional[str]


@dataclass
class RunReport:
    """What a run produced, and where its wall time went."""

    traces: List[Trace] = field(default_factory=list)
    wall_s: float = 0.0
    phases: Dict[str, float] = field(default_factory=lambda: defaultdict(float))
    worker_startup_s: float = 0.0
    worker_restarts: int = 0
    compiled_builds: int = 0
    """Evaluations whose build was compiled here rather than taken from the memory or disk cache."""
    definition_errors: List[DefinitionError] = field(default_factory=list)
    """Workloads whose reference or inputs failed: reported here, not as any solution's trace."""

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

    def status_counts(self) -> Dict[str, int]:
        counts: Dict[str, int] = defaultdict(int)
        for t in self.traces:
            counts[t.evaluation.status.value] += 1
        return dict(counts)


def default_devices() -> Tuple[str, ...]:
    """Every visible GPU, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    return ("cpu",)


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


def run(dataset: TraceSet, config: RunConfig = RunConfig(), definitions: Sequence[str] = (),
        solutions: Sequence[str] = (), workloads: Sequence[str] = (), save: bool = True,
        on_trace: Optional[Callable[[Trace], None]] = None, smallest: Optional[int] = None) -> RunReport:
    """Evaluate the selected solutions on their workloads and return the report.

    One worker process per device (``config.devices``, default every visible GPU or the CPU) takes tasks from
    a shared queue. With ``save``, each trace is appended to the dataset as soon as it exists, so a run that
    is interrupted keeps everything it finished.
    """
    started = time.perf_counter()
    tasks = select(dataset, definitions, solutions, workloads, smallest)
    todo: "queue.Queue" = queue.Queue()
    for task in tasks:
        todo.put(task)
    report = RunReport()
    lock = threading.Lock()

    def record(result: WorkerResult) -> None:
        with lock:
            if save:
                dataset.add_traces([result.trace])
            report.traces.append(result.trace)
            for phase, seconds in result.phases.items():
                if phase == "compiled_builds":
                    report.compiled_builds += int(seconds)
                else:
                    report.phases[phase] += seconds
            if on_trace is not None:
                on_trace(result.trace)

    def serve(device: str) -> None:
        worker = DeviceWorkers(device, config, dataset.root, warm_imports((s for _, s, _ in tasks), device))
        try:
            while True:
                try:
                    definition, solution, chosen = todo.get_nowait()
                except queue.Empty:
                    return
                worker.evaluate(definition, solution, chosen, record)
        finally:
            worker.stop()
            with lock:
                report.worker_startup_s += worker.startup_s
                report.worker_restarts += worker.restarts
                report.definition_errors.extend(worker.definition_errors)

    devices = config.devices or default_devices()
    threads = [threading.Thread(target=serve, args=(d,), name=f"serve-{d}") for d in devices]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.wall_s = time.perf_counter() - started
    return report


def count_evaluations(dataset: TraceSet, definitions=(), solutions=(), workloads=(), smallest=None) -> int:
    """How many traces a run with these filters will produce (for a progress bar)."""
    return sum(len(w) for _, _, w in select(dataset, definitions, solutions, workloads, smallest))


__all__ = ["DefinitionResult", "RunReport", "Status", "count_evaluations", "default_devices", "run", "select"]
