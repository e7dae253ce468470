"""Engines: what runs the (definition, solution, workloads) tasks of a run and hands each result back.

The run loop (bench/runner.py) selects the tasks, writes every trace and keeps the report; an engine only
decides where each task is evaluated. ``None`` is the default: the runner's own isolated worker per local
device. Another engine is a class with ``execute`` (see ``Engine``), registered below by name; its module is
imported only when it is chosen, so the local default needs none of its dependencies.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Protocol, Sequence, Tuple

from ...schema import Definition, Solution, Workload
from ..config import RunConfig
from ..worker import DefinitionError, WorkerResult

Task = Tuple[Definition, Solution, List[Workload]]


@dataclass
class EngineStats:
    """What an engine reports beside the traces."""

    worker_startup_s: float = 0.0
    worker_restarts: int = 0
    retried: int = 0
    """Evaluations started again because the machine or process evaluating them was lost."""
    worker_starts: List[Dict[str, float]] = field(default_factory=list)
    """Each solution worker's start-up steps in seconds, as it reported them."""
    definition_errors: List[DefinitionError] = field(default_factory=list)
    """Workloads whose reference or inputs failed: reported against the definition, not as a trace."""


class Engine(Protocol):
    name: str

    def devices(self, requested: Sequence[str] = ()) -> Tuple[str, ...]:
        """One device per kind the engine evaluates on ("cpu", "cuda:0"), of the kinds ``requested`` names
        (empty: all): what the run judges a solution's target_hardware against before building."""

    def slot_hardware(self, requested: Sequence[str] = ()) -> List[Tuple[str, str]]:
        """(device, hardware) per kind, the hardware named as traces name it: what ``resume`` compares
        existing traces with."""

    def execute(self, tasks: Sequence[Task], config: RunConfig, root: Optional[Path],
                record: Callable[[WorkerResult], None],
                on_start: Optional[Callable[[Definition, Solution, int], None]] = None) -> EngineStats:
        """Evaluate every workload of every task, calling ``record`` (from the calling thread only) exactly
        once per (solution, workload), as each result arrives, and ``on_start`` as a task is handed out. An
        exception from ``record`` (or Ctrl-C) stops the engine's evaluators and propagates."""


# name -> "module:class"; "local" is the runner's own worker pool.
ENGINES: Dict[str, Optional[str]] = {
    "local": None,
    "ray": "kernelarena.bench.engines.ray_engine:RayEngine",
}


def make_engine(name: str, **options) -> Optional[Engine]:
    """The engine called ``name`` made with ``options`` (those given as None are left out; None for
    "local"). ValueError names an unknown engine or an option it does not take; an engine whose package is
    missing raises ImportError saying what to install."""
    options = {key: value for key, value in options.items() if value is not None}
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}: expected one of {', '.join(ENGINES)}")
    target = ENGINES[name]
    if target is None:
        if options:
            raise ValueError(f"the local engine takes no options (got --{', --'.join(sorted(options))})")
        return None
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)(**options)


__all__ = ["ENGINES", "Engine", "EngineStats", "Task", "make_engine"]
