"""The apply() check of an exercise: the learner's model function must route between their solutions.

For each graded workload, with apply enabled over a view of the graded dataset that holds only the
learner's solutions and their traces: the call must reach one of them (not the fallback) and give the
reference's result; then that solution is excluded and the same call must reach another one, again with
the reference's result. That is what interchangeable means: either implementation can serve the call.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Set, Tuple

import torch

from ..apply import ApplyConfig, enable_apply
from ..apply.runtime import ApplyRuntime
from ..bench.correctness import compare_outputs
from ..bench.inputs import as_tuple, materialize_inputs, reference_module, snapshot
from ..schema import Definition, Status, Workload
from ..store import TraceSet
from .config import Exercise

_GRADER_EXCLUSION = "is excluded by the grader, to check that another implementation takes the call"


@dataclass(frozen=True)
class RoutingResult:
    passed: bool
    lines: List[str] = field(default_factory=list)
    """Per workload: which solution served the call, and which took over after it was excluded."""
    reason: str = ""


def check_routing(exercise: Exercise, dataset_root: Path, learner: Set[str], workloads: Sequence[Workload],
                  device: str, files_dir: Path) -> RoutingResult:
    """Run the exercise's routing check (see the module docstring) on ``workloads``."""
    routing = exercise.routing
    module_file = files_dir / routing.module
    try:
        function = _load_function(module_file, routing.function)
    except Exception as e:  # the learner's module: any error it raises is theirs to see
        return RoutingResult(False, [], f"{module_file}: cannot load {routing.function}: {type(e).__name__}: {e}")
    site = getattr(function, "apply_site", None)
    if site is None:
        return RoutingResult(False, [], f"{module_file}: {routing.function} is not routed by apply(); decorate it "
                                        f"with @kernelarena.apply(\"{routing.definition}\")")
    if site.definition != routing.definition:
        return RoutingResult(False, [], f"{module_file}: {routing.function} routes definition {site.definition!r}; "
                                        f"this exercise's is {routing.definition!r}")
    view = _learner_view(dataset_root, learner)
    definition = view.definition(routing.definition)
    lines: List[str] = []
    with _apply_log() as messages:
        for workload in workloads:
            ok, line = _check_workload(function, view, definition, workload, device, learner)
            lines.append(line)
            if not ok:
                return RoutingResult(False, lines, "; ".join(messages) or line)
    return RoutingResult(True, lines)


def _check_workload(function: Callable, view: TraceSet, definition: Definition, workload: Workload, device: str,
                    learner: Set[str]) -> Tuple[bool, str]:
    label = " ".join(f"{k}={v}" for k, v in workload.axes.items())
    key = tuple(workload.axes[a] for a in definition.var_axes)
    inputs = materialize_inputs(definition, workload, device, seed=12345, root=view.root)
    with torch.no_grad():
        expected = as_tuple(reference_module(definition).run(*snapshot(inputs).values()))
    served: List[str] = []
    with enable_apply(view, ApplyConfig(device=device)) as runtime:
        for attempt in range(min(2, len(learner))):
            solution, problem = _routed_call(function, runtime, definition, inputs, expected, key)
            if problem:
                where = "first call" if attempt == 0 else f"after excluding {served[0]}"
                return False, f"{label}: {where}: {problem}"
            served.append(solution)
            runtime.exclude(solution, _GRADER_EXCLUSION)
    after = f", after excluding it: {served[1]}" if len(served) > 1 else ""
    return True, f"{label}: served by {served[0]}{after}; both results match the reference"


def _routed_call(function: Callable, runtime: ApplyRuntime, definition: Definition, inputs: dict,
                 expected: tuple, key: tuple) -> Tuple[Optional[str], str]:
    """(the solution that served the call, "") or (None, what went wrong)."""
    try:
        with torch.no_grad():
            got = as_tuple(function(*inputs.values()))
    except Exception as e:  # the fallback's own error reaches the caller, as apply documents
        return None, f"the call raised {type(e).__name__}: {e}"
    solution = runtime.routes(definition.name).get(key)
    if solution is None:
        return None, ("the call ran the fallback, not one of your solutions (both must pass at this key; "
                      "see kernelarena apply-table)")
    comparison = compare_outputs(definition, got, expected)
    if comparison.status != Status.PASSED:
        return None, f"{solution} gave a wrong result through apply(): {comparison.message}"
    return solution, ""


def _learner_view(root: Path, learner: Set[str]) -> TraceSet:
    """The graded dataset with only the learner's solutions and traces (the answer's would win routes)."""
    view = TraceSet.load(root)
    view.solutions = {name: s for name, s in view.solutions.items() if name in learner}
    for name, traces in view.traces.items():
        view.traces[name] = [t for t in traces if t.solution in learner]
    return view


def _load_function(file: Path, name: str) -> Callable:
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist")
    module_name = f"kernelarena_exercise_{file.parent.parent.name}_{file.stem}".replace("-", "_")
    spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    function = getattr(module, name, None)
    if not callable(function):
        raise AttributeError(f"no function {name}")
    return function


@contextlib.contextmanager
def _apply_log() -> Iterator[List[str]]:
    """Collect apply's log messages (a solution that failed, say) instead of printing them; the grader's own
    exclusions are left out."""
    logger = logging.getLogger("kernelarena.apply")
    messages: List[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if _GRADER_EXCLUSION not in text and record.levelno >= logging.WARNING:
                messages.append(text + (f" ({record.exc_info[1]!r})" if record.exc_info else ""))

    handler, propagate = Collect(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
