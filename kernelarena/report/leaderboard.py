"""Leaderboards read from a TraceSet: per hardware, per definition, solutions x workloads.

The HTML page, the Markdown report and ``summary --json`` all render these records, so the three agree on
which trace counts (the newest of each solution, workload and hardware) and on the numbers derived from it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..schema import Definition, Trace, Workload
from ..store import TraceSet

# Bytes per element; float4 packs two elements in a byte.
_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float8_e4m3fn": 1, "float8_e5m2": 1,
                "float4_e2m1": 0.5, "int64": 8, "int32": 4, "int16": 2, "int8": 1, "bool": 1}
_REASON_CHARS = 160


@dataclass(frozen=True)
class Cell:
    """One solution on one workload: the newest trace's outcome."""

    status: str
    latency_ms: Optional[float] = None
    speedup: Optional[float] = None
    sol_fraction: Optional[float] = None
    """Share of the speed of light (ceiling_ms / latency_ms) when the trace records it."""
    reason: str = ""
    """Why it did not pass: the first line of the log, or the errors of an INCORRECT_NUMERICAL trace."""
    timestamp: str = ""
    runs: int = 1
    """Traces of this solution on this workload and hardware; the newest one is shown."""

    @property
    def passed(self) -> bool:
        return self.status == "PASSED"


@dataclass(frozen=True)
class WorkloadRow:
    uuid: str
    axes: Dict[str, int]
    size: float
    """The x value of the charts: the one variable axis, or the bytes of all inputs and outputs."""

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.axes.items()) or self.uuid[:8]


@dataclass(frozen=True)
class SolutionScore:
    solution: str
    passed: int
    evaluated: int
    geomean_speedup: Optional[float]
    """Geometric mean of the speedups over the workloads it passed."""
    mean_sol_fraction: Optional[float]
    """Mean share of the speed of light over the passed workloads that record one."""


@dataclass
class DefinitionBoard:
    """One definition on one hardware: rows are workloads (by size), columns solutions (best first)."""

    definition: str
    op_type: str
    description: str
    size_label: str
    workloads: List[WorkloadRow]
    solutions: List[str]
    cells: Dict[Tuple[str, str], Cell]
    """(solution, workload uuid) -> Cell; absent where the solution was not evaluated on that workload."""
    scores: Dict[str, SolutionScore]

    def cell(self, solution: str, uuid: str) -> Optional[Cell]:
        return self.cells.get((solution, uuid))

    def best_on(self, uuid: str) -> Optional[str]:
        """The passing solution with the lowest latency on a workload."""
        passed = [(c.latency_ms, s) for s in self.solutions if (c := self.cell(s, uuid)) and c.passed]
        return min(passed)[1] if passed else None

    @property
    def has_speed_of_light(self) -> bool:
        return any(c.sol_fraction is not None for c in self.cells.values())


@dataclass
class EnvironmentSummary:
    """What the traces of one hardware ran with: every library version seen, with its trace count."""

    hardware: str
    traces: int
    libs: Dict[str, Dict[str, int]]
    timing_modes: Dict[str, int]
    first: str
    last: str


@dataclass
class HardwareSection:
    hardware: str
    environment: EnvironmentSummary
    boards: List[DefinitionBoard] = field(default_factory=list)


def build_leaderboards(dataset: TraceSet, definitions: Optional[List[str]] = None) -> List[HardwareSection]:
    """One section per hardware seen in the traces (sorted by name), each with a board per definition that has
    traces on it. ``definitions`` limits the boards; KeyError names an unknown one."""
    for name in definitions or []:
        dataset.definition(name)
    by_hardware: Dict[str, Dict[str, List[Trace]]] = defaultdict(lambda: defaultdict(list))
    for name in sorted(dataset.definitions):
        if definitions and name not in definitions:
            continue
        for trace in dataset.traces.get(name, []):
            by_hardware[trace.evaluation.environment.hardware][name].append(trace)
    sections = []
    for hardware in sorted(by_hardware):
        traces = [t for group in by_hardware[hardware].values() for t in group]
        section = HardwareSection(hardware, _environment(hardware, traces))
        for name, group in by_hardware[hardware].items():
            section.boards.append(_board(dataset, dataset.definitions[name], group))
        sections.append(section)
    return sections


def _board(dataset: TraceSet, definition: Definition, traces: List[Trace]) -> DefinitionBoard:
    size_label, size_of = _size_measure(definition)
    newest: Dict[Tuple[str, str], Trace] = {}
    runs: Counter = Counter()
    workloads: Dict[str, Workload] = {w.uuid: w for w in dataset.workloads_for(definition.name)}
    for trace in traces:  # file order breaks timestamp ties: later lines were appended later
        key = (trace.solution, trace.workload.uuid)
        runs[key] += 1
        if key not in newest or trace.evaluation.timestamp >= newest[key].evaluation.timestamp:
            newest[key] = trace
        workloads.setdefault(trace.workload.uuid, trace.workload)
    cells = {key: _cell(trace, runs[key]) for key, trace in newest.items()}
    evaluated = {uuid for _, uuid in cells}
    rows = sorted((WorkloadRow(w.uuid, dict(w.axes), size_of(w)) for w in workloads.values() if w.uuid in evaluated),
                  key=lambda r: (r.size, r.label))
    scores = {s: _score(s, [c for (sol, _), c in cells.items() if sol == s]) for s, _ in cells}
    order = sorted(scores, key=lambda s: (-(scores[s].geomean_speedup or 0.0), -scores[s].passed, s))
    return DefinitionBoard(definition.name, definition.op_type, definition.description or "", size_label, rows,
                           order, cells, scores)


def _cell(trace: Trace, runs: int) -> Cell:
    e = trace.evaluation
    p = e.performance
    if p is not None:
        sol = p.speed_of_light.fraction if p.speed_of_light is not None else None
        return Cell(e.status.value, p.latency_ms, p.speedup_factor, sol, "", e.timestamp, runs)
    return Cell(e.status.value, reason=failure_reason(trace), timestamp=e.timestamp, runs=runs)


def failure_reason(trace: Trace) -> str:
    """A short reason a trace did not pass: its errors when numerically wrong, else its log's last line that
    says something (tracebacks end with the exception)."""
    e = trace.evaluation
    if e.correctness is not None and e.status.value == "INCORRECT_NUMERICAL":
        c = e.correctness
        reason = f"max abs error {c.max_absolute_error:.3g}, max rel error {c.max_relative_error:.3g}"
    else:
        lines = [line.strip() for line in e.log.splitlines() if line.strip()]
        reason = lines[-1] if lines else "(no log)"
    return reason if len(reason) <= _REASON_CHARS else reason[:_REASON_CHARS - 1] + "…"


def _score(solution: str, cells: List[Cell]) -> SolutionScore:
    passed = [c for c in cells if c.passed]
    speedups = [c.speedup for c in passed if c.speedup and c.speedup > 0]
    sols = [c.sol_fraction for c in passed if c.sol_fraction is not None]
    geomean = math.exp(sum(map(math.log, speedups)) / len(speedups)) if speedups else None
    return SolutionScore(solution, len(passed), len(cells), geomean, sum(sols) / len(sols) if sols else None)


def _size_measure(definition: Definition):
    """The chart's x axis: a definition's single variable axis, or the bytes of its inputs and outputs (one
    number for ops whose workloads vary several axes at once)."""
    if len(definition.var_axes) == 1:
        axis = definition.var_axes[0]
        return axis, lambda w: float(w.axes.get(axis, 0))

    def tensor_bytes(w: Workload) -> float:
        total = 0.0
        for which in ("inputs", "outputs"):
            specs = getattr(definition, which)
            try:
                shapes = definition.shapes(w.axes, which)
            except ValueError:
                return 0.0
            for name, shape in shapes.items():
                total += math.prod(shape or ()) * _DTYPE_BYTES.get(specs[name].dtype.value, 1)
        return total

    return "bytes of inputs and outputs", tensor_bytes


def _environment(hardware: str, traces: List[Trace]) -> EnvironmentSummary:
    libs: Dict[str, Counter] = defaultdict(Counter)
    modes: Counter = Counter()
    for t in traces:
        for lib, version in t.evaluation.environment.libs.items():
            libs[lib][version] += 1
        p = t.evaluation.performance
        if p is not None and p.solution_timing is not None:
            modes[p.solution_timing.mode] += 1
    stamps = sorted(t.evaluation.timestamp for t in traces)
    return EnvironmentSummary(hardware, len(traces), {k: dict(v.most_common()) for k, v in sorted(libs.items())},
                              dict(modes.most_common()), stamps[0], stamps[-1])
