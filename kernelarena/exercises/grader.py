"""Grading: the learner's solutions and the reference answer through the evaluation engine, side by side.

The exercise's dataset is copied to a temporary folder, both sets of solutions are added to it as Solution
records (the learner's under their own names, the answer's with ``_reference_answer`` appended), and one
``kernelarena.bench.run`` evaluates them on the exercise's workloads in isolated workers. Each of the
learner's traces becomes a row: pass or fail with the reason, and the latency next to the answer's.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from pydantic import ValidationError

from ..bench import RunConfig, TimingConfig, run
from ..bench.runner import default_devices
from ..schema import Solution, Status, Trace
from ..store import TraceSet
from .config import REFERENCE_SUFFIX, Exercise, ExerciseSolution, load_exercise
from .routing import RoutingResult, check_routing

_HINTS = {
    Status.COMPILE_ERROR: "the build failed; the reason gives the file and line",
    Status.RUNTIME_ERROR: "your code raised; the reason is the last line of the traceback (--verbose: all of it)",
    Status.INCORRECT_NUMERICAL: "wrong values: compare with the definition's reference in the exercise's "
                                "dataset/definitions/; nan means an output element was never written",
    Status.INCORRECT_SHAPE: "an output has the wrong shape: follow the definition's outputs",
    Status.INCORRECT_DTYPE: "an output has the wrong dtype: follow the definition's outputs",
    Status.TIMEOUT: "the evaluation ran out of time: an endless loop, or far too much work per call",
}
_SKELETON_HINT = "NotImplementedError: the skeleton is not filled in yet; do the TODOs in {files}"


@dataclass(frozen=True)
class WorkloadResult:
    """One of the learner's solutions on one workload, with the reference answer's latency there."""

    solution: str
    workload: str
    """The workload's variable axes, e.g. ``batch_size=33``."""
    status: Status
    reason: str
    latency_ms: Optional[float]
    answer_latency_ms: Optional[float]
    log: str = ""

    @property
    def passed(self) -> bool:
        return self.status == Status.PASSED


@dataclass
class Grade:
    """The outcome of ``kernelarena exercise check``."""

    exercise: Exercise
    device: str
    graded: str
    """What was graded: "solution/" or "reference/"."""
    results: List[WorkloadResult] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    """Why grading could not start (a missing or empty file) or left a solution out (it cannot run on this
    device), one line each."""
    routing: Optional[RoutingResult] = None
    hints: List[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (not self.problems and bool(self.results) and all(r.passed for r in self.results)
                and (self.routing is None or self.routing.passed))


def check_exercise(path: Path, *, device: Optional[str] = None, reference_answer: bool = False,
                   timeout_s: float = 300.0) -> Grade:
    """Grade the exercise at ``path``: its solution/ folder (or, with ``reference_answer``, its reference/
    folder) on ``device`` (default: the first GPU, else the CPU). Raises DatasetError for a broken
    exercise.json or dataset; everything the learner got wrong is in the returned Grade."""
    exercise = load_exercise(path)
    device = device or default_devices()[0]
    grade = Grade(exercise, device, "reference/" if reference_answer else "solution/")
    learner = _records(exercise, reference_answer, "", grade.problems)
    answer = _records(exercise, True, REFERENCE_SUFFIX, [])
    if grade.problems:
        return grade
    with tempfile.TemporaryDirectory(prefix=f"kernelarena-exercise-{exercise.name}-") as tmp:
        dataset = _dataset_copy(exercise, Path(tmp))
        for record in (*learner, *answer):
            dataset.add_solution(record)
        smallest = exercise.cpu_smallest if device == "cpu" else None
        config = RunConfig(devices=(device,), correctness_rounds=2, timeout_s=timeout_s,
                           timing=TimingConfig(checked_calls=1 if device == "cpu" else 3))
        report = run(dataset, config, solutions=[r.name for r in (*learner, *answer)], save=True,
                     smallest=smallest)
        grade.results = _results(report.traces, exercise, {r.name for r in learner})
        grade.problems += [f"{s.solution} not graded on {device}: {s.reason} (grade it on a GPU: --device cuda:0)"
                           for s in report.skipped if s.solution in {r.name for r in learner}]
        if exercise.routing is not None:
            if all(r.passed for r in grade.results):
                grade.routing = check_routing(exercise, dataset.root, {r.name for r in learner},
                                              _graded_workloads(report.traces, learner), device,
                                              exercise.files_dir(reference_answer))
            else:
                grade.routing = RoutingResult(False, [], "not checked: every solution must pass first")
    grade.hints = _hints(grade, exercise, reference_answer)
    return grade


def _records(exercise: Exercise, reference_answer: bool, suffix: str, problems: List[str]) -> List[Solution]:
    """Solution records of the learner's (or the answer's) files; a missing or empty file is a problem."""
    folder = exercise.files_dir(reference_answer)
    records = []
    for spec in exercise.solutions:
        sources, ok = [], True
        for name in spec.files:
            file = folder / name
            if not file.is_file():
                problems.append(f"{file} is missing (restore it with: git checkout -- {file})")
                ok = False
            elif not file.read_text().strip():
                problems.append(f"{file} is empty")
                ok = False
            else:
                sources.append({"path": name, "content": file.read_text()})
        if not ok:
            continue
        try:
            records.append(_solution(spec, suffix, sources))
        except ValidationError as e:
            problems.append(f"{folder}: solution {spec.name} is not a valid Solution record: {e}")
    return records


def _solution(spec: ExerciseSolution, suffix: str, sources: List[dict]) -> Solution:
    return Solution.model_validate({
        "name": spec.name + suffix, "definition": spec.definition,
        "author": "reference answer" if suffix else "learner",
        "spec": {"language": spec.language, "target_hardware": list(spec.target_hardware),
                 "entry_point": spec.entry_point, "destination_passing_style": spec.destination_passing_style,
                 "binding": spec.binding},
        "sources": sources})


def _dataset_copy(exercise: Exercise, target: Path) -> TraceSet:
    """A writable copy of the exercise's dataset without traces (each grade starts clean)."""
    root = target / "dataset"
    shutil.copytree(exercise.dataset, root, ignore=shutil.ignore_patterns(".*.lock", "traces"))
    dataset = TraceSet.load(root)
    for spec in exercise.solutions:
        dataset.definition(spec.definition)  # KeyError naming the known definitions
    return dataset


def workload_label(trace: Trace) -> str:
    return " ".join(f"{k}={v}" for k, v in trace.workload.axes.items())


def _results(traces: List[Trace], exercise: Exercise, learner: set) -> List[WorkloadResult]:
    answer_ms: Dict[Tuple[str, str], float] = {}
    for t in traces:
        if t.solution not in learner and t.passed:
            answer_ms[(t.solution[:-len(REFERENCE_SUFFIX)], t.workload.uuid)] = t.evaluation.performance.latency_ms
    results = []
    order = {s.name: i for i, s in enumerate(exercise.solutions)}
    for t in sorted((t for t in traces if t.solution in learner),
                    key=lambda t: (order[t.solution], sum(v for v in t.workload.axes.values()))):
        perf = t.evaluation.performance
        results.append(WorkloadResult(
            solution=t.solution, workload=workload_label(t), status=t.evaluation.status,
            reason="" if t.passed else _reason(t), latency_ms=perf.latency_ms if perf else None,
            answer_latency_ms=answer_ms.get((t.solution, t.workload.uuid)), log=t.evaluation.log or ""))
    return results


def _graded_workloads(traces: List[Trace], learner: List[Solution]):
    """The workloads the run graded (each once), in the order they were evaluated."""
    seen, out = set(), []
    for t in traces:
        if t.solution == learner[0].name and t.workload.uuid not in seen:
            seen.add(t.workload.uuid)
            out.append(t.workload)
    return out


def _reason(trace: Trace) -> str:
    """One line saying why a trace failed: a build error's first line, else the log's last line (the
    exception of a traceback, or the comparison's message)."""
    lines = [line.strip() for line in (trace.evaluation.log or "").splitlines() if line.strip()]
    if not lines:
        return trace.evaluation.status.value
    line = lines[0] if trace.evaluation.status == Status.COMPILE_ERROR else lines[-1]
    return line if len(line) <= 300 else line[:297] + "..."


def _hints(grade: Grade, exercise: Exercise, reference_answer: bool) -> List[str]:
    hints = []
    names = [f for s in exercise.solutions for f in s.files]
    names += [exercise.routing.module] if exercise.routing is not None else []
    files = ", ".join(str(exercise.files_dir(reference_answer).relative_to(exercise.root) / f) for f in names)
    if any("NotImplementedError" in r.log for r in grade.results):
        hints.append(_SKELETON_HINT.format(files=files))
    for status in dict.fromkeys(r.status for r in grade.results if not r.passed):
        if status != Status.RUNTIME_ERROR or not hints:
            hints.append(_HINTS.get(status, status.value))
    return hints


def grade_report(grade: Grade, verbose: bool = False) -> list:
    """What ``kernelarena exercise check`` prints: rich renderables and strings, in order."""
    from rich.table import Table

    out: list = [f"[bold]exercise {grade.exercise.name}[/bold]: {grade.exercise.title}",
                 f"graded: {grade.exercise.root / grade.graded} on {grade.device}"]
    for problem in grade.problems:
        out.append(f"[red]cannot grade:[/red] {problem}")
    if grade.results:
        table = Table(title="your solutions on the exercise's workloads, next to the reference answer")
        for column in ("solution", "workload", "result", "yours (ms)", "reference answer (ms)", "speed vs answer"):
            table.add_column(column)
        for r in grade.results:
            result = "[green]PASSED[/green]" if r.passed else f"[red]{r.status.value}[/red]: {r.reason}"
            ratio = (f"{r.answer_latency_ms / r.latency_ms:.2f}x" if r.passed and r.latency_ms and r.answer_latency_ms
                     else "-")
            table.add_row(r.solution, r.workload, result, _ms(r.latency_ms if r.passed else None),
                          _ms(r.answer_latency_ms), ratio)
        out.append(table)
        if grade.device == "cpu":
            out.append("timings on the CPU (Triton interpreted) say nothing about GPU speed; grade on a GPU for that")
    if verbose:
        for r in grade.results:
            if not r.passed:
                out.append(f"--- log of {r.solution} on {r.workload} ---\n{r.log}")
    if grade.routing is not None:
        routing = grade.routing
        status = "[green]ok[/green]" if routing.passed else "[red]FAILED[/red]"
        out.append(f"apply() routing: {status}" + (f": {routing.reason}" if routing.reason else ""))
        out.extend(f"  {line}" for line in routing.lines)
    for hint in grade.hints:
        out.append(f"[yellow]hint:[/yellow] {hint}")
    if grade.passed:
        out.append("[bold green]PASS[/bold green]: every workload passed" +
                   (", and apply() routes between your implementations" if grade.routing else ""))
    else:
        failed = sum(not r.passed for r in grade.results)
        what = (f"{failed} of {len(grade.results)} evaluations failed" if failed else
                "grading could not start" if grade.problems else "the apply() routing check failed")
        out.append(f"[bold red]FAIL[/bold red]: {what}")
    return out


def _ms(value: Optional[float]) -> str:
    return f"{value:.4f}" if value is not None else "-"
