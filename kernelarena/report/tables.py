"""Rich tables and record lookups read from a TraceSet (for the CLI and notebooks)."""

from __future__ import annotations

from typing import Optional, Tuple

from rich.markup import escape
from rich.table import Table

from ..schema import Record
from ..store import TraceSet
from .run_view import one_line_reason


def summary_table(dataset: TraceSet, hardware: Optional[str] = None) -> Table:
    """Definitions with their counts, pass rate and best speedup (of the traces made on ``hardware``, when
    given)."""
    table = Table(title=f"Dataset {dataset.root}")
    for column in ("definition", "op_type", "solutions", "workloads", "traces", "pass rate", "best speedup",
                   "best solution"):
        table.add_column(column, justify="right" if column in ("solutions", "workloads", "traces") else "left")
    for row in dataset.summary(hardware):
        rate = f"{row.pass_rate:.0%} ({row.passed}/{row.traces})" if row.pass_rate is not None else "-"
        speedup = f"{row.best_speedup:.2f}x" if row.best_speedup is not None else "-"
        table.add_row(row.definition, row.op_type, str(row.solutions), str(row.workloads), str(row.traces), rate,
                      speedup, row.best_solution or "-")
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


def run_table(report) -> Table:
    """The closing table of ``kernelarena run``: per definition, passed/failed and the best speedup."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.status_counts().items()))
    phases = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(report.phases.items()))
    table = Table(title=f"kernelarena run: {len(report.traces)} traces in {report.wall_s:.1f}s ({counts})",
                  caption=f"time spent: workers starting {report.worker_startup_s:.1f}s, {phases}; "
                          f"builds compiled {report.compiled_builds} (the rest from cache); "
                          f"worker restarts {report.worker_restarts}")
    for column in ("definition", "solutions", "passed", "failed", "best speedup", "best solution"):
        table.add_column(column)
    for row in report.by_definition():
        speedup = f"{row.best_speedup:.2f}x" if row.best_speedup is not None else "-"
        table.add_row(row.definition, str(row.solutions), str(row.passed), str(row.failed), speedup,
                      row.best_solution or "-")
    return table


def traces_table(dataset: TraceSet, name: str, limit: int = 20) -> Table:
    """Traces of a definition, of a solution, or on a workload (newest last, at most ``limit``)."""
    traces = [t for group in dataset.traces.values() for t in group
              if name in (t.definition, t.solution, t.workload.uuid)]
    table = Table(title=f"{len(traces)} traces mention {name}" + (f" (last {limit})" if len(traces) > limit else ""))
    for column in ("solution", "workload axes", "status", "latency us", "speedup", "timestamp", "hardware", "reason"):
        table.add_column(column)
    for t in traces[-limit:]:
        p = t.evaluation.performance
        table.add_row(t.solution, str(t.workload.axes), t.evaluation.status.value,
                      f"{p.latency_ms * 1e3:.1f}" if p else "-", f"{p.speedup_factor:.2f}x" if p else "-",
                      t.evaluation.timestamp, t.evaluation.environment.hardware,
                      "-" if t.passed else escape(one_line_reason(t.evaluation.log, 100)))
    return table
