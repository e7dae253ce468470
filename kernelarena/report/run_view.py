"""What ``kernelarena run`` shows while it works and when it ends: a live progress bar, one line per finished
trace, and a closing table per solution with the reason of every failure."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from typing import Dict, List, Optional

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..bench.runner import RunReport, Skipped
from ..schema import Definition, Solution, Status, Trace
from .tables import COST_COLUMNS, cost_cells, one_line_reason, run_caption

_STYLE = {Status.PASSED: "green", Status.TIMEOUT: "yellow"}


def trace_line(trace: Trace) -> str:
    """One line (rich markup) for a finished trace: status, solution, workload axes, latency and speedup, or
    the reason it failed."""
    evaluation = trace.evaluation
    status = evaluation.status
    axes = ",".join(f"{k}={v}" for k, v in trace.workload.axes.items())
    head = f"[{_STYLE.get(status, 'red')}]{status.value:<19}[/] {escape(trace.solution)} [dim]{escape(axes)}[/]"
    if status == Status.PASSED:
        p = evaluation.performance
        return f"{head}  {p.latency_ms * 1e3:.1f} us  {_speedup(p.speedup_factor)}"
    return f"{head}  {escape(one_line_reason(evaluation.log))}"


def skipped_line(skipped: Skipped) -> str:
    return (f"[dim]skipped            {escape(skipped.solution)}: {escape(skipped.reason)} "
            f"({skipped.workloads} workloads)[/]")


class RunProgress:
    """A live view of a run for a console: a progress bar (done/total, the task under way, elapsed time and
    ETA) and a line printed above it per finished trace. Its ``started`` and ``finished`` methods are the
    run's ``on_start`` and ``on_trace`` callbacks (called from the run's worker threads)."""

    def __init__(self, console: Console, total: int):
        self.console = console
        self._lock = threading.Lock()
        self._current: Dict[str, str] = {}
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                  console=console, transient=False, disable=not console.is_terminal)
        self._bar = self._progress.add_task("starting workers", total=total)
        self.done = 0
        self.started_at = time.perf_counter()

    def __enter__(self) -> "RunProgress":
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def started(self, definition: Definition, solution: Solution, workloads: int) -> None:
        with self._lock:
            self._current[threading.current_thread().name] = f"{definition.name} / {solution.name}"
            self._progress.update(self._bar, description=escape(" | ".join(self._current.values())))

    def finished(self, trace: Trace) -> None:
        with self._lock:
            self.done += 1
            self._progress.update(self._bar, advance=1)
            if not self.console.is_terminal:  # no live bar: say where the run stands on each line
                elapsed = time.perf_counter() - self.started_at
                self.console.print(f"[{self.done}/{self._progress.tasks[0].total} {elapsed:.0f}s] "
                                   + trace_line(trace), highlight=False, soft_wrap=True)
            else:
                self._progress.console.print(trace_line(trace), highlight=False, soft_wrap=True)


def solution_table(report: RunReport) -> Table:
    """The closing table of a run: per solution, traces passed and failed, the costs and speedup of its median
    passed trace (by latency), and each kind of failure with a reason."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.status_counts().items()))
    skipped = f"; {len(report.skipped)} solutions skipped (cannot run here)" if report.skipped else ""
    resumed = f"; {report.resumed} evaluations already traced (--resume)" if report.resumed else ""
    table = Table(title=f"kernelarena run: {len(report.traces)} traces in {report.wall_s:.1f}s ({counts})"
                        f"{skipped}{resumed}",
                  caption=run_caption(report))
    for column in ("definition", "solution", "passed", "failed") + COST_COLUMNS + ("speedup", "failures"):
        table.add_column(column, overflow="fold", justify="right" if column in COST_COLUMNS else "left")
    groups: Dict[tuple, List[Trace]] = defaultdict(list)
    for trace in report.traces:
        groups[(trace.definition, trace.solution)].append(trace)
    for (definition, solution), traces in sorted(groups.items()):
        passed = [t for t in traces if t.passed]
        failed = [t for t in traces if not t.passed]
        # The median passed trace by latency: a typical figure when a solution ran on several workloads.
        typical = sorted(passed, key=lambda t: t.evaluation.performance.latency_ms)[(len(passed) - 1) // 2] \
            if passed else None
        table.add_row(definition, solution, str(len(passed)), str(len(failed)), *cost_cells(typical),
                      _speedup(typical.evaluation.performance.speedup_factor) if typical else "-",
                      escape(_failures(failed)) or "-")
    return table


def _speedup(factor: float) -> str:
    return f"{factor:.2f}x" if factor >= 0.01 else f"{factor:.1e}x"  # the Triton interpreter on a CPU: tiny


def _failures(failed: List[Trace]) -> str:
    """``STATUS xN: reason`` per failing status (the reason of its first trace)."""
    by_status = Counter(t.evaluation.status.value for t in failed)
    first: Dict[str, Optional[Trace]] = {}
    for t in failed:
        first.setdefault(t.evaluation.status.value, t)
    return "; ".join(f"{status} x{count}: {one_line_reason(first[status].evaluation.log, 100)}"
                     for status, count in by_status.items())


__all__ = ["RunProgress", "skipped_line", "solution_table", "trace_line"]
