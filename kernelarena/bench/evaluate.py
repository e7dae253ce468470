"""Evaluate one solution on one workload: build, check correctness on fresh inputs, time, and make a Trace.

This runs inside a worker process (bench/worker.py), so a crash or hang here takes down only the worker.
"""

from __future__ import annotations

import contextlib
import datetime
import statistics
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch

from ..errors import BuildError
from ..schema import Correctness, Definition, Evaluation, Performance, Solution, Status, Trace, Workload
from .config import RunConfig
from .correctness import Comparison, inputs_changed
from .environment import environment
from .evaluators import compare_sampling, compare_with, default_draws, resolve_evaluator
from .inputs import InvalidInputs, allocate_outputs, as_tuple, materialize_inputs, reference_module, snapshot
from .plan import plan_case, refill_unplanned
from .timing import poison_, resolve_timing, time_calls

_COPY_BUDGET_BYTES = 2 << 30  # rotated input copies stop at this much memory
_DRAW_BATCH_BYTES = {"cpu": 32 << 20, "cuda": 512 << 20}  # inputs of one replicated sampling call


class SolutionFailure(Exception):
    """Ends an evaluation early with a status and a log."""

    def __init__(self, status: Status, log: str, comparison: Optional[Comparison] = None, fatal: bool = False):
        super().__init__(log)
        self.status, self.log, self.comparison, self.fatal = status, log, comparison, fatal


@dataclass
class Case:
    """Inputs and (for destination-passing calls) preallocated outputs of one input set."""

    inputs: Dict[str, Any]
    outputs: Dict[str, torch.Tensor] = field(default_factory=dict)

    def call(self, fn, destination_passing: bool) -> Tuple:
        args = list(self.inputs.values())
        if destination_passing:
            fn(*args, *self.outputs.values())
            return tuple(self.outputs.values())
        return as_tuple(fn(*args))


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def failure_trace(definition: str, workload: Workload, solution: str, status: Status, log: str,
                  device: str, comparison: Optional[Comparison] = None) -> Trace:
    """A trace for an evaluation that did not pass."""
    correctness = None
    if status == Status.INCORRECT_NUMERICAL:
        comparison = comparison or Comparison(status)
        correctness = Correctness(max_absolute_error=comparison.max_absolute_error,
                                  max_relative_error=comparison.max_relative_error)
    evaluation = Evaluation(status=status, environment=environment(device), timestamp=now(), log=log[-20000:],
                            correctness=correctness)
    return Trace(definition=definition, workload=workload, solution=solution, evaluation=evaluation)


def runs_on(solution: Solution, device: str) -> bool:
    """Whether the solution's target_hardware admits this kind of device ("cpu" needs to be named)."""
    targets = {t.lower() for t in solution.spec.target_hardware}
    return "cpu" in targets if device == "cpu" else targets != {"cpu"}


class Evaluator:
    """Evaluates solutions of one device; caches reference timings per workload."""

    def __init__(self, device: str, config: RunConfig, root: Optional[Path]):
        self.device, self.config, self.root = device, config, root
        self._reference_timing: Dict[Tuple[str, str], Any] = {}
        self.phases: Dict[str, float] = {}
        """Seconds spent in each step of the last evaluation: build, correctness, timing, reference."""

    def evaluate(self, definition: Definition, solution: Solution, workload: Workload) -> Tuple[Trace, bool]:
        """The trace of ``solution`` on ``workload``, and whether the worker must restart (a CUDA error)."""
        from ..build import build_solution

        self.phases = {}
        try:
            with self._phase("build"):
                runnable = build_solution(solution, device=self.device)
            self.phases["compiled_builds"] = 0.0 if runnable.from_cache else 1.0
        except BuildError as e:
            return failure_trace(definition.name, workload, solution.name, Status.COMPILE_ERROR,
                                 f"{e}\n{e.log}", self.device), False
        if not runs_on(solution, self.device) or not runnable.can_run_on(self.device):
            log = (f"solution {solution.name} cannot run on device {self.device} "
                   f"(target_hardware {solution.spec.target_hardware}, language {solution.spec.language.value})")
            return failure_trace(definition.name, workload, solution.name, Status.RUNTIME_ERROR, log,
                                 self.device), False
        try:
            return self._evaluate_built(definition, solution, workload, runnable), False
        except InvalidInputs as e:  # the workload is at fault; recorded so that the run goes on
            return failure_trace(definition.name, workload, solution.name, Status.RUNTIME_ERROR, str(e),
                                 self.device), False
        except SolutionFailure as f:
            return failure_trace(definition.name, workload, solution.name, f.status, f.log, self.device,
                                 f.comparison), f.fatal

    @contextlib.contextmanager
    def _phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - start

    # ------------------------------------------------------------------ steps
    def _evaluate_built(self, definition, solution, workload, runnable) -> Trace:
        dps = runnable.destination_passing_style
        with self._phase("correctness"):
            comparison, seeds = self._check_correctness(definition, workload, runnable, dps)
        with self._phase("timing"):
            stats, timed = self._time(definition, workload, runnable, dps, check=True)
        with self._phase("reference"):
            reference = self._time_reference(definition, workload) if self.config.time_reference else None
        ref_ms = reference.median_ms if reference is not None else 0.0
        performance = Performance(latency_ms=stats.median_ms, reference_latency_ms=ref_ms,
                                  speedup_factor=ref_ms / stats.median_ms if stats.median_ms > 0 and ref_ms else 0.0,
                                  solution_timing=stats, reference_timing=reference)
        correctness = Correctness(max_absolute_error=comparison.max_absolute_error,
                                  max_relative_error=comparison.max_relative_error,
                                  extra={"rounds": len(seeds), "seeds": seeds, "timed_calls_checked": timed})
        evaluation = Evaluation(status=Status.PASSED, environment=environment(self.device), timestamp=now(),
                                correctness=correctness, performance=performance)
        return Trace(definition=definition.name, workload=workload, solution=solution.name, evaluation=evaluation)

    def _reference_outputs(self, definition: Definition, inputs: Dict[str, Any]) -> Tuple:
        run = reference_module(definition).run
        with torch.no_grad():
            return as_tuple(run(*snapshot(inputs).values()))

    def _check_correctness(self, definition, workload, runnable, dps) -> Tuple[Comparison, List[int]]:
        """Run the solution on ``correctness_rounds`` fresh input sets; raise SolutionFailure on the first
        failing round. Round 2 refills round 1's tensors in place, so caching by pointer is caught too."""
        total, seeds, previous = Comparison(Status.PASSED), [], None
        spec = resolve_evaluator(definition, self.config.evaluator)
        for round_index in range(self.config.correctness_rounds):
            seed = self.config.seed * 1_000_003 + 7919 * round_index + 1
            seeds.append(seed)
            inputs = materialize_inputs(definition, workload, self.device, seed, self.root)
            if round_index == 1 and previous is not None:
                inputs = _refill(previous, inputs)
            previous = inputs
            case = Case(inputs, allocate_outputs(definition, workload, self.device) if dps else {})
            call, plan_us = self._plan(runnable, case)
            if plan_us is not None:  # run() must read what the plan may not: give it fresh values
                refill_unplanned(definition, inputs, materialize_inputs(definition, workload, self.device,
                                                                        seed + 1, self.root))
            expected = self._reference_outputs(definition, inputs)
            before = snapshot(inputs)
            got = self._guarded_call(case, call, dps)
            comparison = compare_with(spec, definition, got, expected, inputs, self.config.tolerance,
                                      reference_module(definition))
            if comparison.status != Status.PASSED:
                raise SolutionFailure(comparison.status, f"round {round_index + 1} (seed {seed}): "
                                      f"{comparison.message}", comparison)
            changed = inputs_changed(before, case.inputs)
            if changed:
                raise SolutionFailure(Status.INCORRECT_NUMERICAL, f"round {round_index + 1}: the solution wrote into "
                                      f"its input {changed!r}; inputs must stay unchanged", comparison)
            total = total.merge(comparison)
            if spec.kind == "sampling" and round_index == 0:
                samples = self._draw_samples(definition, workload, runnable, dps, inputs,
                                             default_draws(spec, self.device))
                comparison = compare_sampling(definition, inputs, samples, spec, reference_module(definition))
                if comparison.status != Status.PASSED:
                    raise SolutionFailure(comparison.status, f"round 1 (seed {seed}): {comparison.message}",
                                          comparison)
                total = total.merge(comparison)
        return total, seeds

    def _draw_samples(self, definition, workload, runnable, dps, inputs, draws: int) -> torch.Tensor:
        """``draws`` samples [draws, rows] of the solution on ``inputs``: the batch rows are repeated so that
        one call draws many times (rows are independent), in calls of bounded input size."""
        axis = next(iter(definition.outputs.values())).shape[0]
        rows = int(workload.axes.get(axis, definition.const_axes.get(axis, 1)))
        batched = {n for n, spec in definition.inputs.items() if spec.shape and spec.shape[0] == axis}
        row_bytes = sum(inputs[n].numel() * inputs[n].element_size() for n in batched) // max(rows, 1)
        per_call = max(1, min(draws, _DRAW_BATCH_BYTES["cpu" if self.device == "cpu" else "cuda"]
                              // max(row_bytes, 1)))
        drawn: List[torch.Tensor] = []
        while sum(len(d) for d in drawn) < draws:
            copies = min(per_call, draws - sum(len(d) for d in drawn))
            repeated = {n: (v.repeat(copies, *[1] * (v.dim() - 1)) if n in batched else v) for n, v in inputs.items()}
            grown = workload.model_copy(update={"axes": {**workload.axes, axis: rows * copies}})
            case = Case(repeated, allocate_outputs(definition, grown, self.device) if dps else {})
            call, _ = self._plan(runnable, case)
            got = self._guarded_call(case, call, dps)[0]
            drawn.append(torch.as_tensor(got).reshape(copies, rows).cpu())
        return torch.cat(drawn)

    def _guarded_call(self, case: Case, runnable, dps: bool) -> Tuple:
        """Call the solution once and return a copy of its outputs taken right after the call.

        On a GPU, a sleep kernel first holds the stream, inputs are rewritten and outputs poisoned behind it,
        and the outputs are copied right behind the call: work the solution hides on another stream or thread
        either reads inputs before they are ready or has not written its outputs when they are copied.
        """
        gpu = self.device.startswith("cuda")
        if gpu:
            torch.cuda.synchronize(self.device)
            torch.cuda._sleep(2_000_000)  # ~1 ms at H100 clocks
            for value in case.inputs.values():
                if isinstance(value, torch.Tensor):
                    value.copy_(value.clone())
            poison_(case.outputs.values())
        try:
            out = case.call(runnable, dps)
            copied = tuple(o.clone() if isinstance(o, torch.Tensor) else o for o in out)
            if gpu:
                torch.cuda.current_stream().synchronize()
        except Exception as e:  # the solution's own error, recorded with its traceback
            raise SolutionFailure(Status.RUNTIME_ERROR, traceback.format_exc(), fatal=_is_cuda_error(e)) from e
        return copied

    def _plan(self, fn, case: Case):
        """(callable to time on ``case``, host microseconds of its plan step or None); a failing plan step is
        the solution's runtime error."""
        try:
            return plan_case(fn, case)
        except Exception as e:
            raise SolutionFailure(Status.RUNTIME_ERROR, "in the plan step:\n" + traceback.format_exc(),
                                  fatal=_is_cuda_error(e)) from e

    def _cases(self, definition, workload, dps, base_seed: int) -> List[Case]:
        first = materialize_inputs(definition, workload, self.device, base_seed, self.root)
        size = sum(v.numel() * v.element_size() for v in first.values() if isinstance(v, torch.Tensor))
        copies = max(1, min(self.config.timing.input_copies, _COPY_BUDGET_BYTES // max(size, 1)))
        inputs = [first] + [materialize_inputs(definition, workload, self.device, base_seed + i, self.root)
                            for i in range(1, copies)]
        return [Case(i, allocate_outputs(definition, workload, self.device) if dps else {}) for i in inputs]

    def _time(self, definition, workload, fn, dps, check: bool):
        cases = self._cases(definition, workload, dps, base_seed=self.config.seed * 1_000_003 + 104729)
        planned = [self._plan(fn, case) for case in cases]  # outside the timed region
        calls = [call for call, _ in planned]
        try:
            stats, checked = time_calls(lambda i: cases[i].call(calls[i], dps), len(cases), self.device,
                                        resolve_timing(self.config.timing, definition),
                                        lambda i: tuple(cases[i].outputs.values()), check)
        except Exception as e:
            raise SolutionFailure(Status.RUNTIME_ERROR, "while timing:\n" + traceback.format_exc(),
                                  fatal=_is_cuda_error(e)) from e
        spec = resolve_evaluator(definition, self.config.evaluator)
        plan_us = [us for _, us in planned if us is not None]
        if plan_us:
            stats = stats.model_copy(update={"plan_host_us": statistics.median(plan_us)})
        for index, outputs in checked:
            expected = self._reference_outputs(definition, cases[index].inputs)
            comparison = compare_with(spec, definition, outputs, expected, cases[index].inputs,
                                      self.config.tolerance, reference_module(definition))
            if comparison.status != Status.PASSED:
                raise SolutionFailure(comparison.status, "a timed call gave a wrong result (correct when checked, "
                                      f"wrong when timed): {comparison.message}", comparison)
        return stats, len(checked)

    def _time_reference(self, definition: Definition, workload: Workload):
        key = (definition.name, workload.uuid)
        if key not in self._reference_timing:
            run = reference_module(definition).run
            with torch.no_grad():
                self._reference_timing[key] = self._time(definition, workload, run, False, check=False)[0]
        return self._reference_timing[key]


def _refill(previous: Dict[str, Any], fresh: Dict[str, Any]) -> Dict[str, Any]:
    """Copy ``fresh`` values into ``previous``'s tensors (same storage, new contents)."""
    out = {}
    for name, value in fresh.items():
        old = previous.get(name)
        if isinstance(value, torch.Tensor) and isinstance(old, torch.Tensor) and old.shape == value.shape \
                and old.dtype == value.dtype:
            old.copy_(value)
            out[name] = old
        else:
            out[name] = value
    return out


def _is_cuda_error(error: BaseException) -> bool:
    text = f"{type(error).__name__}: {error}"
    return "CUDA error" in text or "AcceleratorError" in text or "illegal memory access" in text
