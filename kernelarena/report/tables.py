"""Rich tables and record lookups read from a TraceSet (for the CLI and notebooks)."""

from __future__ import annotations

from typing import Iterable, Optional, Tuple

from rich.markup import escape
from rich.table import Table

from ..schema import Record, Trace
from ..store import TraceSet


def one_line_reason(log: str, width: int = 160) -> str:
    """The line of a failure log that says why: the exception at the end of a traceback (after the log's
    first line when that line is the harness's own), else the first line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    if not lines:
        return "(no log)"
    reason = lines[0]
    if "Traceback (most recent call last)" in log:
        last = next((line for line in reversed(lines) if not line.startswith(("^", "~"))), lines[-1])
        reason = last if lines[0].startswith("Traceback") else f"{lines[0]} {last}"
    return reason if len(reason) <= width else reason[:width - 3] + "..."


COST_COLUMNS = ("latency us", "host us", "plan us", "% SOL")
"""Device-time latency, host time per call, host time of the plan step (once per input set), and the share of
the speed of light the latency reached (the device's measured ceilings), side by side."""


def cost_cells(trace: Optional[Trace]) -> Tuple[str, str, str, str]:
    """The COST_COLUMNS cells of one trace: "-" where it has no figure (failed, no plan step, or a trace made
    before speed of light was recorded)."""
    performance = trace.evaluation.performance if trace is not None and trace.evaluation else None
    if performance is None:
        return "-", "-", "-", "-"
    timing = performance.solution_timing
    host = timing.host_overhead_us if timing is not None else None
    plan = timing.plan_host_us if timing is not None else None
    sol = performance.speed_of_light
    return (f"{performance.latency_ms * 1e3:.1f}", f"{host:.1f}" if host is not None else "-",
            f"{plan:.1f}" if plan is not None else "-", f"{100 * sol.fraction:.1f}" if sol is not None else "-")


def best_trace(traces: Iterable[Trace], definition: str) -> Optional[Trace]:
    """The passed trace of ``definition`` with the highest speedup (the one the tables call best)."""
    passed = [t for t in traces if t.definition == definition and t.passed]
    return max(passed, key=lambda t: t.evaluation.performance.speedup_factor, default=None)


def summary_table(dataset: TraceSet, hardware: Optional[str] = None) -> Table:
    """Definitions with their counts, pass rate and best speedup (of the traces made on ``hardware``, when
    given)."""
    table = Table(title=f"Dataset {dataset.root}")
    numbers = ("solutions", "workloads", "traces") + COST_COLUMNS
    for column in ("definition", "op_type", "solutions", "workloads", "traces", "pass rate", "best speedup",
                   "best solution") + COST_COLUMNS:
        table.add_column(column, justify="right" if column in numbers else "left")
    for row in dataset.summary(hardware):
        rate = f"{row.pass_rate:.0%} ({row.passed}/{row.traces})" if row.pass_rate is not None else "-"
        speedup = f"{row.best_speedup:.2f}x" if row.best_speedup is not None else "-"
        best = best_trace([t for t in dataset.traces.get(row.definition, []) if hardware is None
                           or t.evaluation.environment.hardware == hardware], row.definition)
        table.add_row(row.definition, row.op_type, str(row.solutions), str(row.workloads), str(row.traces), rate,
                      speedup, row.best_solution or "-", *cost_cells(best))
    return table


def find_record(dataset: TraceSet, name: str) -> Tuple[str, Record]:
    """The definition, solution or workload called ``name``; KeyError if none is."""
    if name in dataset.definitions:
        return "definition", dataset.definitions[name]
    if name in dataset.solutions:
        return "solution", dataset.solutions[name]
    for entries in dataset.workloads.values():
        for entry in entries:
            if entry.workload.uuid == name:
                return "workload", entry
    raise KeyError(f"no definition, solution or workload called {name!r} in {dataset.root}")


def run_caption(report) -> str:
    """Where a run's time went: waiting for workers, each phase, builds, restarts, and a worker's start-up."""
    def phase(name: str, seconds: float) -> str:
        steps = sorted(((k.split(": ", 1)[1], v) for k, v in report.steps.items()
                        if k.startswith(name + ": ") and v >= 0.05), key=lambda kv: -kv[1])
        inside = f" ({', '.join(f'{k} {v:.1f}s' for k, v in steps)})" if steps else ""
        return f"{name} {seconds:.1f}s{inside}"

    phases = ", ".join(phase(k, v) for k, v in sorted(report.phases.items()))
    starts = report.worker_start_summary()
    return (f"time spent: workers starting {report.worker_startup_s:.1f}s, {phases}; builds compiled "
            f"{report.compiled_builds} (the rest from cache); worker restarts {report.worker_restarts}"
            + (f"; {starts}" if starts else ""))


def run_table(report) -> Table:
    """The closing table of ``kernelarena run``: per definition, passed/failed and the best speedup."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.status_counts().items()))
    table = Table(title=f"kernelarena run: {len(report.traces)} traces in {report.wall_s:.1f}s ({counts})",
                  caption=run_caption(report))
    for column in ("definition", "solutions", "passed", "failed", "best speedup", "best solution") + COST_COLUMNS:
        table.add_column(column, justify="right" if column in COST_COLUMNS else "left")
    for row in report.by_definition():
        speedup = f"{row.best_speedup:.2f}x" if row.best_speedup is not None else "-"
        table.add_row(row.definition, str(row.solutions), str(row.passed), str(row.failed), speedup,
                      row.best_solution or "-", *cost_cells(best_trace(report.traces, row.definition)))
    return table


def traces_table(dataset: TraceSet, name: str, limit: int = 20) -> Table:
    """Traces of a definition, of a solution, or on a workload (newest last, at most ``limit``)."""
    traces = [t for group in dataset.traces.values() for t in group
              if name in (t.definition, t.solution, t.workload.uuid)]
    table = Table(title=f"{len(traces)} traces mention {name}" + (f" (last {limit})" if len(traces) > limit else ""))
    for column in ("solution", "workload axes", "status") + COST_COLUMNS + ("timing", "speedup", "timestamp",
                                                                             "hardware", "reason"):
        table.add_column(column, justify="right" if column in COST_COLUMNS else "left")
    for t in traces[-limit:]:
        p = t.evaluation.performance
        mode = p.solution_timing.mode if p and p.solution_timing else "-"
        table.add_row(t.solution, str(t.workload.axes), t.evaluation.status.value, *cost_cells(t), mode,
                      f"{p.speedup_factor:.2f}x" if p else "-", t.evaluation.timestamp,
                      t.evaluation.environment.hardware,
                      "-" if t.passed else escape(one_line_reason(t.evaluation.log, 100)))
    return table
