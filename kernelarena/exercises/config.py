"""An exercise folder and its grader configuration (exercise.json), read into frozen objects.

    exercises/NN_name/
      exercise.json   title, the dataset folder, the solutions to grade, optionally an apply() routing check
      dataset/        the exercise's own small FlashInfer-Trace dataset: definitions and workloads
      solution/       the learner's files (a skeleton until the learner fills it in)
      reference/      the reference answer: the same files, done
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from ..errors import DatasetError

EXERCISE_FILE = "exercise.json"
SOLUTION_DIR = "solution"
REFERENCE_DIR = "reference"
REFERENCE_SUFFIX = "_reference_answer"
LANGUAGES = ("python", "triton", "cuda", "cpp", "tilelang")


@dataclass(frozen=True)
class ExerciseSolution:
    """One solution the learner writes: the Solution record's spec, and the files (in solution/) it embeds."""

    name: str
    definition: str
    language: str
    entry_point: str
    destination_passing_style: bool
    target_hardware: Tuple[str, ...]
    files: Tuple[str, ...]
    binding: Optional[str] = None

    @property
    def entry_file(self) -> str:
        return self.entry_point.split("::")[0]


@dataclass(frozen=True)
class Routing:
    """The apply() check: ``function`` in ``module`` (a file of solution/) must route ``definition``."""

    definition: str
    module: str
    function: str


@dataclass(frozen=True)
class Exercise:
    root: Path
    title: str
    dataset: Path
    solutions: Tuple[ExerciseSolution, ...]
    routing: Optional[Routing] = None
    cpu_smallest: Optional[int] = None
    """On a CPU, grade only this many of each definition's smallest workloads (Triton is interpreted there)."""

    @property
    def name(self) -> str:
        return self.root.name

    def files_dir(self, reference_answer: bool) -> Path:
        """solution/ (the learner's), or reference/ (the answer)."""
        return self.root / (REFERENCE_DIR if reference_answer else SOLUTION_DIR)


def load_exercise(path: Path) -> Exercise:
    """Read ``path``/exercise.json. Raises DatasetError naming the file and field at fault."""
    root = Path(path)
    file = root / EXERCISE_FILE
    if not file.is_file():
        raise DatasetError(f"not an exercise folder: no {EXERCISE_FILE} in {root}", file=root)
    try:
        raw = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"invalid JSON: {e.msg}", file=file, line=e.lineno) from e
    if not isinstance(raw, dict):
        raise DatasetError("expected a JSON object", file=file)
    dataset = root / _field(raw, "dataset", str, file)
    if not dataset.is_dir():
        raise DatasetError(f"dataset folder {dataset} does not exist", file=file, field="dataset")
    entries = _field(raw, "solutions", list, file)
    if not entries:
        raise DatasetError("lists no solution to grade", file=file, field="solutions")
    solutions = tuple(_solution(entry, file, f"solutions[{i}]") for i, entry in enumerate(entries))
    names = [s.name for s in solutions]
    if len(set(names)) != len(names):
        raise DatasetError(f"duplicate solution names {names}", file=file, field="solutions")
    routing = None
    if raw.get("routing") is not None:
        r = _field(raw, "routing", dict, file)
        routing = Routing(*(_field(r, key, str, file, "routing.") for key in ("definition", "module", "function")))
    smallest = raw.get("cpu_smallest")
    if smallest is not None and (not isinstance(smallest, int) or smallest < 1):
        raise DatasetError(f"expected a positive integer, got {smallest!r}", file=file, field="cpu_smallest")
    return Exercise(root=root, title=_field(raw, "title", str, file), dataset=dataset, solutions=solutions,
                    routing=routing, cpu_smallest=smallest)


def _solution(entry: Any, file: Path, where: str) -> ExerciseSolution:
    if not isinstance(entry, dict):
        raise DatasetError("expected an object", file=file, field=where)
    prefix = where + "."
    language = _field(entry, "language", str, file, prefix)
    if language not in LANGUAGES:
        raise DatasetError(f"unknown language {language!r}; one of {LANGUAGES}", file=file, field=prefix + "language")
    entry_point = _field(entry, "entry_point", str, file, prefix)
    if "::" not in entry_point:
        raise DatasetError(f"{entry_point!r} must look like 'file.py::function'", file=file,
                           field=prefix + "entry_point")
    files = entry.get("files", [entry_point.split("::")[0]])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise DatasetError("expected a list of file names", file=file, field=prefix + "files")
    hardware = entry.get("target_hardware", ["cpu", "cuda"])
    return ExerciseSolution(
        name=_field(entry, "name", str, file, prefix), definition=_field(entry, "definition", str, file, prefix),
        language=language, entry_point=entry_point,
        destination_passing_style=bool(entry.get("destination_passing_style", True)),
        target_hardware=tuple(hardware), files=tuple(files), binding=entry.get("binding"))


def _field(raw: Dict[str, Any], key: str, kind: type, file: Path, prefix: str = "") -> Any:
    if key not in raw:
        raise DatasetError("missing", file=file, field=prefix + key)
    value = raw[key]
    if not isinstance(value, kind):
        raise DatasetError(f"expected {kind.__name__}, got {type(value).__name__}", file=file, field=prefix + key)
    return value
