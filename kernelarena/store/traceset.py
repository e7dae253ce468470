"""TraceSet: a FlashInfer-Trace dataset folder loaded into memory, with queries and crash-safe writes."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Union

from pydantic import ValidationError

from ..errors import DatasetError
from ..schema import Definition, Solution, Trace, Workload
from .checks import validation_errors, workload_problems
from .files import append_lines, atomic_write_text, ends_without_newline, iter_jsonl, read_json
from .layout import Layout


@dataclass(frozen=True)
class DefinitionSummary:
    definition: str
    op_type: str
    solutions: int
    workloads: int
    traces: int
    passed: int
    best_speedup: Optional[float]
    best_solution: Optional[str]

    @property
    def pass_rate(self) -> Optional[float]:
        return self.passed / self.traces if self.traces else None


class TraceSet:
    """Definitions, solutions, workloads and traces of one dataset.

    ``TraceSet.load(path)`` reads a folder; with ``strict=False`` it keeps every valid record and lists the
    rest in ``problems`` (each a DatasetError with file, line and field). Writes go straight to disk:
    JSON files atomically, JSONL appends under a file lock.
    """

    def __init__(self, root: Union[str, Path, None] = None):
        self.root = Path(root) if root is not None else None
        self.definitions: Dict[str, Definition] = {}
        self.solutions: Dict[str, Solution] = {}
        self.workloads: Dict[str, List[Trace]] = defaultdict(list)
        self.traces: Dict[str, List[Trace]] = defaultdict(list)
        self.problems: List[DatasetError] = []
        self.warnings: List[DatasetError] = []
        self._origin: Dict[str, Path] = {}  # record name -> file it was loaded from, to name both duplicates

    # ---------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: Union[str, Path], strict: bool = True) -> "TraceSet":
        """Read the dataset at ``path``.

        Raises DatasetError if the folder does not exist, and, when ``strict``, if any record is invalid
        (the message counts them and shows the first; ``kernelarena validate`` lists them all).
        """
        root = Path(path)
        if not root.is_dir():
            raise DatasetError("dataset folder does not exist", file=root)
        self = cls(root)
        layout = self.layout
        for file in sorted(layout.definitions.rglob("*.json")):
            self._load_record(file, Definition, self._accept_definition)
        for file in sorted(layout.solutions.rglob("*.json")):
            self._load_record(file, Solution, self._accept_solution)
        for file in sorted(layout.workloads.rglob("*.jsonl")):
            self._load_lines(file, self._accept_workload)
        for file in sorted(layout.traces.rglob("*.jsonl")):
            self._load_lines(file, self._accept_trace)
        if strict and self.problems:
            first = self.problems[0]
            more = f" (and {len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
            raise DatasetError(first.message + more, file=first.file, line=first.line, field=first.field)
        return self

    def read_trace_file(self, path: Union[str, Path]) -> int:
        """Read evaluated traces kept outside the dataset (a JSONL file of a run elsewhere) into memory, checked
        like traces/; invalid lines go to ``problems``. Returns how many traces were taken. DatasetError if the
        file does not exist."""
        file = Path(path)
        if not file.is_file():
            raise DatasetError("trace file does not exist", file=file)
        before = sum(map(len, self.traces.values()))
        self._load_lines(file, self._accept_trace)
        return sum(map(len, self.traces.values())) - before

    @property
    def layout(self) -> Layout:
        if self.root is None:
            raise DatasetError("this TraceSet has no folder on disk")
        return Layout(self.root)

    def _load_record(self, file: Path, model, accept) -> None:
        try:
            record = model.model_validate(read_json(file))
        except DatasetError as e:
            self.problems.append(e)
            return
        except ValidationError as e:
            self.problems += validation_errors(e, file)
            return
        self._warn_unknown(record, file, None)
        accept(record, file, None)

    def _load_lines(self, file: Path, accept) -> None:
        torn = ends_without_newline(file)
        for line, value in iter_jsonl(file):
            if isinstance(value, DatasetError):
                if torn and line == torn:
                    # A writer stopped mid-line; the next append starts a new line, so this is harmless.
                    self.warnings.append(DatasetError(f"torn last line, ignored (an interrupted write): "
                                                      f"{value.message}", file=file, line=line))
                    continue
                self.problems.append(value)
                continue
            try:
                record = Trace.model_validate(value)
            except ValidationError as e:
                self.problems += validation_errors(e, file, line)
                continue
            self._warn_unknown(record, file, line)
            accept(record, file, line)

    def _warn_unknown(self, record, file: Path, line: Optional[int]) -> None:
        for field in record.unknown_fields():
            self.warnings.append(DatasetError("unknown field (kept as it is)", file=file, line=line, field=field))

    def _accept_definition(self, definition: Definition, file: Path, line) -> None:
        if definition.name in self.definitions:
            self.problems.append(DatasetError(f"duplicate definition name {definition.name!r}, first in "
                                              f"{self._origin['definition:' + definition.name]}", file=file,
                                              field="name"))
            return
        self.definitions[definition.name] = definition
        self._origin["definition:" + definition.name] = file

    def _accept_solution(self, solution: Solution, file: Path, line) -> None:
        if solution.name in self.solutions:
            self.problems.append(DatasetError(f"duplicate solution name {solution.name!r}, first in "
                                              f"{self._origin['solution:' + solution.name]}", file=file,
                                              field="name"))
        elif solution.definition not in self.definitions:
            self.problems.append(DatasetError(f"solution for unknown definition {solution.definition!r}",
                                              file=file, field="definition"))
        else:
            self.solutions[solution.name] = solution
            self._origin["solution:" + solution.name] = file

    def _accept_workload(self, trace: Trace, file: Path, line: int) -> None:
        if not trace.is_workload:
            self.problems.append(DatasetError("a workload file holds an evaluated trace", file=file, line=line,
                                              field="solution"))
            return
        definition = self.definitions.get(trace.definition)
        if definition is None:
            self.problems.append(DatasetError(f"workload for unknown definition {trace.definition!r}", file=file,
                                              line=line, field="definition"))
            return
        problems = workload_problems(definition, trace.workload, self.root)
        if any(w.workload.uuid == trace.workload.uuid for w in self.workloads[trace.definition]):
            problems.append(f"uuid: duplicate workload uuid {trace.workload.uuid!r}")
        for problem in problems:
            field, _, message = problem.partition(": ")
            self.problems.append(DatasetError(message, file=file, line=line, field="workload." + field))
        if not problems:
            self.workloads[trace.definition].append(trace)

    def _accept_trace(self, trace: Trace, file: Path, line: int) -> None:
        if trace.is_workload:
            self.problems.append(DatasetError("a trace file holds a workload entry (no solution, no evaluation)",
                                              file=file, line=line, field="solution"))
            return
        if trace.definition not in self.definitions:
            self.problems.append(DatasetError(f"trace for unknown definition {trace.definition!r}", file=file,
                                              line=line, field="definition"))
            return
        if trace.solution not in self.solutions:
            self.warnings.append(DatasetError(f"trace of solution {trace.solution!r}, which the dataset lacks",
                                              file=file, line=line, field="solution"))
        self.traces[trace.definition].append(trace)

    # ---------------------------------------------------------------- queries
    def definition(self, name: str) -> Definition:
        """The definition called ``name``; KeyError listing the known names if there is none."""
        if name not in self.definitions:
            raise KeyError(f"no definition {name!r}; known: {sorted(self.definitions)}")
        return self.definitions[name]

    def solutions_for(self, definition: str) -> List[Solution]:
        return [s for s in self.solutions.values() if s.definition == definition]

    def workloads_for(self, definition: str) -> List[Workload]:
        return [t.workload for t in self.workloads.get(definition, [])]

    def traces_for(self, definition: str, solution: Optional[str] = None,
                   workload: Optional[str] = None) -> List[Trace]:
        return [t for t in self.traces.get(definition, [])
                if (solution is None or t.solution == solution)
                and (workload is None or t.workload.uuid == workload)]

    def best_traces(self, definition: str, max_abs_error: Optional[float] = None,
                    max_rel_error: Optional[float] = None) -> Dict[str, Trace]:
        """For each workload uuid, the PASSED trace with the lowest latency (the newest of equal ones),
        counting only traces within the given error limits."""
        best: Dict[str, Trace] = {}
        for trace in self.traces.get(definition, []):
            if not trace.passed or not _within(trace, max_abs_error, max_rel_error):
                continue
            uuid = trace.workload.uuid
            if uuid not in best or trace.evaluation.performance.latency_ms <= \
                    best[uuid].evaluation.performance.latency_ms:
                best[uuid] = trace
        return best

    def summary(self, hardware: Optional[str] = None) -> List[DefinitionSummary]:
        """One row per definition: counts, passed traces, and the best speedup with its solution; with
        ``hardware``, only the traces made on it (their ``environment.hardware``)."""
        rows = []
        for name, definition in sorted(self.definitions.items()):
            traces = [t for t in self.traces.get(name, []) if hardware is None
                      or t.evaluation.environment.hardware == hardware]
            passed = [t for t in traces if t.passed]
            top = max(passed, key=lambda t: t.evaluation.performance.speedup_factor, default=None)
            rows.append(DefinitionSummary(
                definition=name, op_type=definition.op_type, solutions=len(self.solutions_for(name)),
                workloads=len(self.workloads.get(name, [])), traces=len(traces), passed=len(passed),
                best_speedup=top.evaluation.performance.speedup_factor if top else None,
                best_solution=top.solution if top else None))
        return rows

    # ---------------------------------------------------------------- writing
    def add_definition(self, definition: Definition, overwrite: bool = False) -> Path:
        """Write ``definition`` (atomically). DatasetError if another one of that name exists, unless
        ``overwrite``."""
        old = self.definitions.get(definition.name)
        if old is not None and old != definition and not overwrite:
            raise DatasetError(f"definition {definition.name!r} exists with other content", field="name")
        path = self.layout.definition_file(definition.op_type, definition.name)
        atomic_write_text(path, definition.to_json(indent=2) + "\n")
        self.definitions[definition.name] = definition
        return path

    def add_solution(self, solution: Solution, overwrite: bool = False) -> Path:
        """Write ``solution`` (atomically); its definition must be in the dataset."""
        definition = self.definitions.get(solution.definition)
        if definition is None:
            raise DatasetError(f"solution {solution.name!r} is for unknown definition {solution.definition!r}",
                               field="definition")
        old = self.solutions.get(solution.name)
        if old is not None and old != solution and not overwrite:
            raise DatasetError(f"solution {solution.name!r} exists with other content", field="name")
        path = self.layout.solution_file(definition.op_type, definition.name, solution.name)
        atomic_write_text(path, solution.to_json(indent=2) + "\n")
        self.solutions[solution.name] = solution
        return path

    def add_workloads(self, entries: Iterable[Trace]) -> None:
        """Append workload entries (Traces without solution), checked against their definitions."""
        self._append(entries, workload=True)

    def add_traces(self, traces: Iterable[Trace]) -> None:
        """Append evaluated traces; each is on disk when this returns."""
        self._append(traces, workload=False)

    def _append(self, records: Iterable[Trace], workload: bool) -> None:
        by_file: Dict[Path, List[Trace]] = defaultdict(list)
        for record in records:
            definition = self.definitions.get(record.definition)
            if definition is None:
                raise DatasetError(f"unknown definition {record.definition!r}", field="definition")
            if record.is_workload != workload:
                raise DatasetError("expected a workload entry" if workload else "expected an evaluated trace")
            if workload:
                problems = workload_problems(definition, record.workload, self.root)
                if problems:
                    raise DatasetError("; ".join(problems), field="workload")
                file = self.layout.workload_file(definition.op_type, definition.name)
            else:
                file = self.layout.trace_file(definition.op_type, definition.name)
            by_file[file].append(record)
        for file, batch in by_file.items():
            append_lines(file, (r.to_json() for r in batch))
            target = self.workloads if workload else self.traces
            target[batch[0].definition].extend(batch)

    def save_blob(self, definition: str, tensors: Dict[str, "object"], uuid: Optional[str] = None) -> str:
        """Store ``tensors`` as one safetensors file under blob/ and return its path relative to the root.

        Without ``uuid`` the file is named by a hash of the contents, so storing equal tensors twice keeps
        one file (deduplication for tracing).
        """
        import safetensors.torch
        import torch

        cpu = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        if uuid is None:
            digest = hashlib.sha256()
            for key in sorted(cpu):
                digest.update(key.encode())
                digest.update(str(cpu[key].dtype).encode() + str(tuple(cpu[key].shape)).encode())
                digest.update(cpu[key].reshape(-1).view(torch.uint8).numpy().tobytes())
            uuid = digest.hexdigest()[:24]
        d = self.definition(definition)
        path = self.layout.blob_file(d.op_type, d.name, uuid)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            safetensors.torch.save_file(cpu, str(tmp))
            tmp.replace(path)
        return self.layout.relative(path)


def _within(trace: Trace, max_abs: Optional[float], max_rel: Optional[float]) -> bool:
    c = trace.evaluation.correctness
    if c is None:
        return max_abs is None and max_rel is None
    return (max_abs is None or c.max_absolute_error <= max_abs) and (max_rel is None or c.max_relative_error <= max_rel)
