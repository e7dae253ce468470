"""The reference's side of an evaluation, in a process that never imports a solution: reference outputs and
timings, the comparison of the solution's outputs with them, the speed-of-light check, and the verdict.

Results from the solution's process arrive as bytes loaded by torch's weights-only unpickler, so a payload can
hold tensors and numbers but cannot run code here.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import traceback
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch

from .. import env
from ..schema import Correctness, Definition, Environment, Evaluation, Performance, Status, TimingStats, Trace, Workload
from . import quiet, spent
from .config import RunConfig
from .correctness import Comparison
from .environment import environment
from .evaluate import Case, failure_trace, now, round_seed, timed_input_sets, timing_seed
from .evaluators import compare_sampling, compare_with, resolve_evaluator
from .inputs import as_tuple, materialize_inputs, reference_module
from .plan import plan_case, refill_unplanned
from .roofline import device_ceilings, impossible_speed, measure_ceilings, save_ceilings, speed_of_light, work_of
from .timing import resolve_timing, time_calls


class DefinitionFailure(Exception):
    """The definition's side failed (its reference raised, inputs could not be made): no solution is at fault."""


class MalformedResult(Exception):
    """The solution's process sent results that do not have the expected structure."""


def unpack(path: str) -> Dict[str, Any]:
    """A payload from the solution's process (the parent's copy of its file, at ``path``: bench/worker.py), loaded
    without running code (weights-only unpickler). Its tensors are mapped, not read: the comparison's copy to the
    device reads them from the page cache once, where reading the file whole first took 10.8 s of an
    example-dataset run on the H200 (2026-12-03). The copy is the parent's, in a folder the sandbox keeps the
    solution's process from writing to."""
    try:
        with spent.timed("payload load"):
            payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        raise MalformedResult(f"results from the solution's process could not be read safely: {e}") from e
    if not isinstance(payload, dict):
        raise MalformedResult("results from the solution's process are not a dict")
    return payload


HOST_COMPARE_BYTES = 1 << 20
"""Reference outputs of at most this many bytes (default evaluator) are kept on the host and compared there,
without the device lock: a comparison on the device waits for the other lane's timed loop to end (9 s of the
reference process's time in an example-dataset run on the H200, 2026-12-03), and one on the host of a
megabyte takes a few milliseconds."""


def _on_host(kept: Tuple) -> bool:
    """Whether ``(inputs, outputs)`` as _reference returns them holds no tensor on a device."""
    inputs, outputs = kept
    return all(not isinstance(t, torch.Tensor) or t.device.type == "cpu"
               for t in (*inputs.values(), *outputs))


def default_keep_bytes(device: str) -> int:
    """What the reference process may keep of reference outputs: a sixteenth of the GPU's memory, at most 8 GiB
    (the solutions' processes need the rest); 2 GiB of host memory on the CPU."""
    if device.startswith("cuda"):
        return min(8 << 30, torch.cuda.get_device_properties(torch.device(device)).total_memory // 16)
    return 2 << 30


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return 0


class Oracle:
    """Judges solutions of one device. Keeps every workload's reference timing, and the reference outputs of the
    workloads seen last, up to ``keep_bytes`` (default_keep_bytes) and at least one more workload than the
    device's lanes: the tasks go solution by solution over a definition's workloads, so a budget that holds a
    definition's workloads computes each reference once for all its solutions, where keeping a fixed few computed
    them again for every solution."""

    def __init__(self, device: str, config: RunConfig, root: Optional[Path], keep_bytes: Optional[int] = None):
        self.device, self.config, self.root = device, config, root
        self.environment = environment(device)
        self.ceilings = device_ceilings(device, self.environment.hardware)
        self._ceilings_confirmed = False
        self._kept_workloads = config.lanes_for(device) + 1
        self._keep_bytes = default_keep_bytes(device) if keep_bytes is None else keep_bytes
        self._expected: "OrderedDict[Tuple[str, str], Dict[Tuple[int, bool], Tuple]]" = OrderedDict()
        self._expected_bytes: Dict[Tuple[str, str], int] = {}
        self._reference_timing: Dict[Tuple[str, str], TimingStats] = {}
        self._rounds: Dict[Tuple[str, str, str], Tuple[Comparison, List[int]]] = {}
        """(solution, definition, workload) -> its passed rounds, from check_rounds until its verdict."""

    # ------------------------------------------------------------------ reference
    def _reference(self, definition: Definition, workload: Workload, seed: int, planned: bool = False) -> Tuple:
        """(inputs the comparison needs, reference outputs) on the inputs of ``seed``; ``planned``: with the
        inputs a plan step may not read refilled from ``seed + 1``, as the solution's process did between its
        plan and run. On a GPU the device lock is held shared meanwhile: not inside another lane's timed loop."""
        with quiet.held(exclusive=False):  # a no-op without a lock (the CPU)
            return self._reference_outputs(definition, workload, seed, planned)

    def _reference_outputs(self, definition: Definition, workload: Workload, seed: int, planned: bool) -> Tuple:
        with spent.timed("reference outputs"):
            return self._compute_outputs(definition, workload, seed, planned)

    def _compute_outputs(self, definition: Definition, workload: Workload, seed: int, planned: bool) -> Tuple:
        try:
            inputs = materialize_inputs(definition, workload, self.device, seed, self.root)
            if planned:
                refill_unplanned(definition, inputs, materialize_inputs(definition, workload, self.device, seed + 1,
                                                                        self.root))
        except Exception as e:
            raise DefinitionFailure(f"inputs of workload {workload.uuid} of definition {definition.name} could not "
                                    f"be made (seed {seed}): {type(e).__name__}: {e}") from e
        kind = resolve_evaluator(definition, self.config.evaluator).kind
        try:
            with torch.no_grad():
                # The comparison reads the inputs only for sampling (which tokens are allowed): keep them then.
                keep = inputs if kind == "sampling" else {}
                outputs = as_tuple(reference_module(definition).run(*inputs.values()))
        except Exception as e:
            raise DefinitionFailure(f"the reference of definition {definition.name} raised on workload "
                                    f"{workload.uuid}:\n{traceback.format_exc()}") from e
        if kind == "default" and _nbytes(outputs) <= HOST_COMPARE_BYTES:
            outputs = tuple(o.cpu() if isinstance(o, torch.Tensor) else o for o in outputs)
        return keep, outputs

    def prepare(self, definition: Definition, workload: Workload, time_reference: bool = True) -> None:
        """Reference outputs of the correctness rounds and, with ``time_reference`` (and the run's
        ``time_reference``), the reference's timing, before any solution runs on this workload. Raises
        DefinitionFailure naming the definition and workload."""
        key = (definition.name, workload.uuid)
        self._check_work(definition, workload)
        if key in self._expected:
            self._expected.move_to_end(key)
        else:
            expected = {}
            for round_index in range(self.config.correctness_rounds):
                seed = round_seed(self.config, round_index)
                expected[(seed, False)] = self._reference(definition, workload, seed)
            self._expected[key] = expected
            self._expected_bytes[key] = _nbytes(list(expected.values()))
            self._evict()
        if time_reference and self.config.time_reference and key not in self._reference_timing:
            self._reference_timing[key] = self._time_reference(definition, workload)

    @staticmethod
    def _check_work(definition: Definition, workload: Workload) -> None:
        try:
            work_of(definition, workload)
        except ValueError as e:
            raise DefinitionFailure(str(e)) from e

    def reference_timing(self, definition: Definition, workload: Workload) -> TimingStats:
        """The reference's timing on ``workload``, timed once and kept: what a reference process that only times
        answers (bench/worker.py's reference timer), while the one that judges goes on comparing. Raises
        DefinitionFailure naming the definition and workload."""
        key = (definition.name, workload.uuid)
        if key not in self._reference_timing:
            self._check_work(definition, workload)
            self._reference_timing[key] = self._time_reference(definition, workload)
        return self._reference_timing[key]

    def _expected_outputs(self, definition: Definition, workload: Workload, seed: int, planned: bool = False) -> Tuple:
        """``_reference`` of the prepared workload, kept for the next solution on it: the rounds' seeds are the
        same for every solution, and so are the checked timed calls' (one of ``input_copies``)."""
        expected = self._expected.get((definition.name, workload.uuid))
        if expected is None:
            return self._reference(definition, workload, seed, planned)
        if (seed, planned) not in expected:
            expected[(seed, planned)] = self._reference(definition, workload, seed, planned)
            key = (definition.name, workload.uuid)
            self._expected_bytes[key] = self._expected_bytes.get(key, 0) + _nbytes(expected[(seed, planned)])
        return expected[(seed, planned)]

    def _evict(self) -> None:
        """Forget the oldest workloads' outputs while over the byte budget, keeping the newest lanes + 1."""
        while len(self._expected) > self._kept_workloads and sum(self._expected_bytes.values()) > self._keep_bytes:
            key, _ = self._expected.popitem(last=False)
            self._expected_bytes.pop(key, None)

    def _time_reference(self, definition: Definition, workload: Workload) -> TimingStats:
        run = reference_module(definition).run
        try:
            with quiet.held(exclusive=False), torch.no_grad():  # device work: not inside another lane's timed loop
                cases = [Case(inputs) for inputs in timed_input_sets(  # the solutions' input sets, no more
                    self.config, lambda seed: materialize_inputs(definition, workload, self.device, seed, self.root))]
                planned = [plan_case(run, case) for case in cases]  # a reference's plan step, outside the timing
            with torch.no_grad():
                stats, _ = time_calls(lambda i: cases[i].call(planned[i][0], False), len(cases), self.device,
                                      resolve_timing(self.config.timing, definition), lambda i: (), check=False)
            plan_us = [us for _, us in planned if us is not None]
            if plan_us:
                stats = stats.model_copy(update={"plan_host_us": statistics.median(plan_us)})
        except Exception as e:
            raise DefinitionFailure(f"timing the reference of definition {definition.name} on workload "
                                    f"{workload.uuid} failed:\n{traceback.format_exc()}") from e
        return stats

    def _confirm_ceilings(self) -> bool:
        """Measure the ceilings again, once per process, before a solution is failed as faster than light: a
        measurement taken while the machine was busy (a compile on the CPU) reads them too low. Keeps and caches
        the higher of each; whether any rose."""
        if self._ceilings_confirmed:
            return False
        self._ceilings_confirmed = True
        with quiet.held(exclusive=self.device.startswith("cuda")):  # timed, as at the first start
            fresh = measure_ceilings(self.device)
        merged = {key: max(self.ceilings.get(key, 0.0), value) for key, value in fresh.items()}
        raised = merged != self.ceilings
        self.ceilings = merged
        if raised:
            save_ceilings(self.device, self.environment.hardware, merged)
        return raised

    # ------------------------------------------------------------------ verdicts
    def check_rounds(self, definition: Definition, workload: Workload, data: str, solution: str = ""
                     ) -> Optional[Tuple[Status, str, Comparison]]:
        """Compare ``solution``'s correctness rounds' outputs with the reference's; the failure, or None. The
        comparisons hold the device lock shared unless the workload's reference outputs are kept on the host
        (``_comparing``); a workload no longer kept is prepared first, as its reference timing takes the lock
        exclusively."""
        if (definition.name, workload.uuid) not in self._expected:
            self.prepare(definition, workload)
        with self._comparing(definition, workload), spent.timed("comparison"):
            return self._check_rounds(definition, workload, data, solution)

    def _comparing(self, definition: Definition, workload: Workload):
        """The device lock held while comparing, shared (exclusively with KERNELARENA_EXCLUSIVE_COMPARISONS=1: a
        comparison's few dozen kernels then run alone, not in time slices beside the other lanes' processes),
        unless every reference output kept for the workload is on the host (HOST_COMPARE_BYTES): then nothing is
        held (one computed meanwhile takes the lock itself)."""
        kept = self._expected.get((definition.name, workload.uuid))
        if kept and all(_on_host(value) for value in kept.values()):
            return contextlib.nullcontext()
        return quiet.held(exclusive=env.exclusive_comparisons())

    def _check_rounds(self, definition: Definition, workload: Workload, data: str, solution: str
                      ) -> Optional[Tuple[Status, str, Comparison]]:
        ticket = (solution, definition.name, workload.uuid)
        self._rounds.pop(ticket, None)
        rounds = unpack(data).get("rounds")
        if not isinstance(rounds, list) or len(rounds) != self.config.correctness_rounds:
            raise MalformedResult("the solution's process sent the wrong number of correctness rounds")
        total, seeds = Comparison(Status.PASSED), []
        for round_index, entry in enumerate(rounds):
            seed = round_seed(self.config, round_index)
            if not isinstance(entry, dict) or entry.get("seed") != seed or not isinstance(entry.get("outputs"), list):
                raise MalformedResult(f"correctness round {round_index + 1} from the solution's process is malformed")
            inputs, expected = self._expected_outputs(definition, workload, seed, entry.get("planned") is True)
            spec = resolve_evaluator(definition, self.config.evaluator)
            comparison = compare_with(spec, definition, entry["outputs"], expected, inputs, self.config.tolerance,
                                      reference_module(definition))
            if comparison.status == Status.PASSED and spec.kind == "sampling" and "samples" in entry:
                samples = entry["samples"]
                if not isinstance(samples, torch.Tensor):
                    raise MalformedResult("the samples from the solution's process are not a tensor")
                comparison = comparison.merge(compare_sampling(definition, inputs, samples, spec,
                                                               reference_module(definition)))
            elif comparison.status == Status.PASSED and spec.kind == "sampling" and round_index == 0:
                raise MalformedResult("the solution's process sent no samples for the sampling evaluator")
            if comparison.status != Status.PASSED:
                return comparison.status, f"round {round_index + 1} (seed {seed}): {comparison.message}", comparison
            if entry.get("changed"):
                return (Status.INCORRECT_NUMERICAL, f"round {round_index + 1}: the solution wrote into its input "
                        f"{str(entry['changed'])!r}; inputs must stay unchanged", comparison)
            total = total.merge(comparison)
            seeds.append(seed)
        self._rounds[ticket] = (total, seeds)
        return None

    def verdict(self, definition: Definition, solution: str, workload: Workload, data: str,
                environment: Environment, reference_timing: Optional[TimingStats] = None) -> Trace:
        """The trace: timed calls checked against the reference, the latency checked against the speed of
        light, then PASSED with its figures. The comparisons hold the device lock as ``_comparing`` says. The
        reference's timing is ``reference_timing`` when given (another reference process timed it), else this
        process's own."""
        def failed(status: Status, log: str, comparison: Optional[Comparison] = None) -> Trace:
            return failure_trace(definition.name, workload, solution, status, log, environment, comparison)

        passed = self._rounds.pop((solution, definition.name, workload.uuid), None)
        if passed is None:
            raise MalformedResult("timing results arrived before the correctness rounds passed")
        total, seeds = passed
        payload = unpack(data)
        try:
            stats = TimingStats.model_validate_json(payload.get("timing", ""))
        except ValueError as e:
            raise MalformedResult(f"timing statistics from the solution's process are invalid: {e}") from e
        if not all(math.isfinite(v) and v >= 0 for v in (stats.median_ms, stats.mean_ms, stats.min_ms)):
            return failed(Status.RUNTIME_ERROR, f"the solution's process reported impossible timings: {stats}")
        checked = payload.get("checked")
        allowed = {timing_seed(self.config, i) for i in range(max(1, self.config.timing.input_copies))}
        if not isinstance(checked, list) or (self.config.timing.checked_calls > 0 and not checked):
            raise MalformedResult("the outputs of the checked timed calls are missing")
        with self._comparing(definition, workload), spent.timed("comparison"):
            for entry in checked:
                if not isinstance(entry, dict) or entry.get("seed") not in allowed or \
                        not isinstance(entry.get("outputs"), list):
                    raise MalformedResult("a checked timed call from the solution's process is malformed")
                inputs, expected = self._expected_outputs(definition, workload, entry["seed"])
                comparison = compare_with(resolve_evaluator(definition, self.config.evaluator), definition,
                                          entry["outputs"], expected, inputs, self.config.tolerance,
                                          reference_module(definition))
                if comparison.status != Status.PASSED:
                    return failed(comparison.status, "a timed call gave a wrong result (correct when checked, "
                                  f"wrong when timed): {comparison.message}", comparison)
        impossible = impossible_speed(definition, workload, stats.median_ms, self.ceilings)
        if impossible and self._confirm_ceilings():
            impossible = impossible_speed(definition, workload, stats.median_ms, self.ceilings)
        if impossible:
            return failed(Status.RUNTIME_ERROR, impossible)
        reference = reference_timing or self._reference_timing.get((definition.name, workload.uuid))
        ref_ms = reference.median_ms if reference is not None else 0.0
        performance = Performance(
            latency_ms=stats.median_ms, reference_latency_ms=ref_ms,
            speedup_factor=ref_ms / stats.median_ms if stats.median_ms > 0 and ref_ms else 0.0,
            solution_timing=stats, reference_timing=reference,
            speed_of_light=speed_of_light(definition, workload, stats.median_ms, self.ceilings))
        correctness = Correctness(max_absolute_error=total.max_absolute_error,
                                  max_relative_error=total.max_relative_error,
                                  extra={"rounds": len(seeds), "seeds": seeds, "timed_calls_checked": len(checked)})
        evaluation = Evaluation(status=Status.PASSED, environment=environment, timestamp=now(),
                                correctness=correctness, performance=performance)
        return Trace(definition=definition.name, workload=workload, solution=solution, evaluation=evaluation)
