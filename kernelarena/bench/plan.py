"""Plan apart from run: a solution's optional plan step, called once per input set outside the timed region.

Inputs that carry structure (page tables, index pointers) ask for host work before the kernels can launch: copy
the structure to the host, build a schedule, copy it back. Timed inside run(), that host work is most of the
latency and varies with the host. The convention, a module convention that FlashInfer-Bench ignores (it calls the
entry alone, which must keep working by itself):

- the module that defines the entry function ``run`` may define ``plan`` (for an entry ``run_decode``,
  ``plan_decode``), taking the definition's inputs in order (no outputs);
- ``plan`` returns a callable taking the same arguments as the entry (inputs, then outputs when destination
  passing) that does the device work of one call on that input set;
- the plan may read only the inputs the definition lists in ``plan_inputs``: the correctness check refills every
  other input with fresh values between plan and run, so a plan that computes the answer early is caught.

The same holds for a definition's reference (its ``run`` beside a ``plan``).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional, Tuple

import torch

from ..schema import Definition


class PlanError(Exception):
    """A plan step that did not return a callable."""


def plan_name(entry_name: str) -> Optional[str]:
    """The plan step's name for an entry name: ``run`` -> ``plan``, ``run_decode`` -> ``plan_decode``; None for
    entry names that do not start with ``run``."""
    if entry_name == "run":
        return "plan"
    if entry_name.startswith("run_"):
        return "plan_" + entry_name[4:]
    return None


def find_plan(entry: Callable[..., Any]) -> Optional[Callable[..., Any]]:
    """The plan step beside ``entry`` (a function, or a built Runnable whose ``entry`` is one), or None.

    The entry's module is found through the function's globals, so the entry may be bound under another name
    (``run = _run_impl``): every module-level name bound to it is tried. Compiled entries have no plan step.
    """
    fn = getattr(entry, "entry", entry)
    module_globals = getattr(fn, "__globals__", None)
    if not isinstance(module_globals, dict):
        return None
    names = [name for name, value in module_globals.items() if value is fn] or [getattr(fn, "__name__", "")]
    for name in names:
        plan = module_globals.get(plan_name(name) or "")
        if callable(plan):
            return plan
    return None


def plan_case(entry: Callable[..., Any], case: Any) -> Tuple[Callable[..., Any], Optional[float]]:
    """The callable to time on ``case`` (anything with an ``inputs`` dict) and the host microseconds its plan
    step took; ``(entry, None)`` when there is no plan step.

    Raises PlanError when the plan step returns something that cannot be called; the plan step's own exceptions
    propagate (the caller records them as the solution's runtime error).
    """
    plan = find_plan(entry)
    if plan is None:
        return entry, None
    started = time.perf_counter()
    planned = plan(*case.inputs.values())
    host_us = (time.perf_counter() - started) * 1e6
    if not callable(planned):
        raise PlanError(f"{getattr(plan, '__name__', 'plan')} returned {type(planned).__name__}, not a callable "
                        "taking the entry's arguments")
    return planned, host_us


def refill_unplanned(definition: Definition, inputs: Dict[str, Any], fresh: Dict[str, Any]) -> None:
    """Copy ``fresh`` values into every tensor of ``inputs`` that the plan may not read (not in the definition's
    ``plan_inputs``), in place, where shapes and dtypes match: run() must read them itself."""
    planned = set(definition.plan_inputs or ())
    for name, value in inputs.items():
        new = fresh.get(name)
        if name in planned or not isinstance(value, torch.Tensor) or not isinstance(new, torch.Tensor):
            continue
        if value.shape == new.shape and value.dtype == new.dtype:
            value.copy_(new)
