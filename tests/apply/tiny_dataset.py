"""A tiny dataset for apply and tracing tests: one definition, python solutions that mark their outputs,
and hand-written traces (so a test decides which solution wins where)."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path
from typing import Optional

import torch

import kernelarena
from kernelarena.bench.environment import local_hardware
from kernelarena.schema import (
    Correctness,
    Definition,
    Environment,
    Evaluation,
    Performance,
    Solution,
    Status,
    Trace,
    Workload,
)
from kernelarena.store import TraceSet

DEFINITION = "scale_rows_h8"
HIDDEN = 8


@kernelarena.apply(DEFINITION)
def scale_rows(x, w):
    """The value-returning call site the tests route (its body is the fallback)."""
    return x * w


@kernelarena.apply(DEFINITION)
def scale_rows_into(x, w, y):
    """The destination-passing call site the tests route (its body is the fallback)."""
    torch.mul(x, w, out=y)


def definition(name: str = DEFINITION) -> Definition:
    """y = x * w over rows of 8 float32 values; ``rows`` varies."""
    return Definition.model_validate({
        "name": name, "op_type": "scale",
        "axes": {"rows": {"type": "var"}, "hidden": {"type": "const", "value": HIDDEN}},
        "inputs": {"x": {"shape": ["rows", "hidden"], "dtype": "float32"},
                   "w": {"shape": ["hidden"], "dtype": "float32"}},
        "outputs": {"y": {"shape": ["rows", "hidden"], "dtype": "float32"}},
        "reference": "def run(x, w):\n    return x * w\n",
    })


def solution(name: str, body: str, dps: bool = False, definition_name: str = DEFINITION) -> Solution:
    """A python solution whose ``run`` has ``body`` (value-returning: ``run(x, w)``; DPS: ``run(x, w, y)``)."""
    params = "x, w, y" if dps else "x, w"
    return Solution.model_validate({
        "name": name, "definition": definition_name, "author": "tests",
        "spec": {"language": "python", "target_hardware": ["cpu", "cuda"], "entry_point": "main.py::run",
                 "destination_passing_style": dps},
        "sources": [{"path": "main.py", "content": f"import torch\n\n\ndef run({params}):\n    {body}\n"}],
    })


def marking(name: str, mark: float, dps: bool = False) -> Solution:
    """A solution computing x * w + ``mark``, so outputs tell which one ran."""
    if dps:
        return solution(name, f"torch.add(x * w, {mark}, out=y)", dps=True)
    return solution(name, f"return x * w + {mark}")


def workload(rows: int, uid: Optional[str] = None) -> Workload:
    return Workload(uuid=uid or str(uuidlib.uuid4()), axes={"rows": rows},
                    inputs={"x": {"type": "random"}, "w": {"type": "random"}})


def trace(solution_name: str, rows: int, latency_ms: float, *, status: Status = Status.PASSED,
          abs_error: float = 0.0, uid: Optional[str] = None, timestamp: str = "2026-11-24T00:00:00Z",
          definition_name: str = DEFINITION, hardware: Optional[str] = None) -> Trace:
    """A trace made on ``hardware`` (default: this machine's, whose traces apply() ranks)."""
    passed = status == Status.PASSED
    return Trace(
        definition=definition_name, workload=workload(rows, uid or f"w{rows}"), solution=solution_name,
        evaluation=Evaluation(
            status=status, environment=Environment(hardware=hardware or local_hardware()), timestamp=timestamp,
            correctness=Correctness(max_absolute_error=abs_error) if passed or
            status == Status.INCORRECT_NUMERICAL else None,
            performance=Performance(latency_ms=latency_ms, reference_latency_ms=1.0,
                                    speedup_factor=1.0 / latency_ms) if passed else None))


def make_dataset(root: Path, solutions=(), traces=(), workloads=()) -> TraceSet:
    """Write a dataset at ``root`` with the tiny definition, ``solutions``, ``traces`` and workload entries."""
    root.mkdir(parents=True, exist_ok=True)
    dataset = TraceSet(root)
    dataset.add_definition(definition())
    for s in solutions:
        dataset.add_solution(s)
    if workloads:
        dataset.add_workloads(Trace(definition=DEFINITION, workload=workload(r)) for r in workloads)
    if traces:
        dataset.add_traces(traces)
    return TraceSet.load(root)
