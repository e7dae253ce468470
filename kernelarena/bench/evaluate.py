"""The solution's side of an evaluation: build, call on fresh inputs, time, and hand back copies of the outputs.

This runs in a worker process that no other solution has touched (bench/worker.py) and that never judges:
the outputs it copies and the timings it measures go to the reference process (bench/oracle.py), which
compares them with the reference and decides the status. Anything here may have been patched by the
solution, so nothing here is believed without a check elsewhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import statistics
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch

from .. import env
from ..errors import BuildError
from ..schema import Correctness, Definition, Environment, Evaluation, Solution, Status, Trace, Workload
from . import quiet, spent
from .config import RunConfig
from .correctness import Comparison, inputs_changed
from .environment import environment as environment_of
from .evaluators import default_draws, resolve_evaluator
from .inputs import allocate_outputs, as_tuple, input_bytes, materialize_inputs, snapshot
from .plan import plan_case, refill_unplanned
from .timing import poison_, resolve_timing, time_calls

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
                  environment: Union[Environment, str], comparison: Optional[Comparison] = None) -> Trace:
    """A trace for an evaluation that did not pass; ``environment`` may be given as the device it ran on."""
    if isinstance(environment, str):
        environment = environment_of(environment)
    correctness = None
    if status == Status.INCORRECT_NUMERICAL:
        comparison = comparison or Comparison(status)
        correctness = Correctness(max_absolute_error=comparison.max_absolute_error,
                                  max_relative_error=comparison.max_relative_error)
    evaluation = Evaluation(status=status, environment=environment, timestamp=now(), log=log[-20000:],
                            correctness=correctness)
    return Trace(definition=definition, workload=workload, solution=solution, evaluation=evaluation)


def runs_on(solution: Solution, device: str) -> bool:
    """Whether the solution's target_hardware admits this kind of device ("cpu" needs to be named)."""
    targets = {t.lower() for t in solution.spec.target_hardware}
    return "cpu" in targets if device == "cpu" else targets != {"cpu"}


def round_seed(config: RunConfig, round_index: int) -> int:
    """Seed of correctness round ``round_index``; the reference process draws the same inputs from it."""
    return config.seed * 1_000_003 + 7919 * round_index + 1


def timing_seed(config: RunConfig, copy_index: int) -> int:
    """Seed of the ``copy_index``-th rotated input set of the timing loop."""
    return config.seed * 1_000_003 + 104729 + copy_index


def timed_input_sets(config: RunConfig, make: Callable[[int], Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The input sets a timed loop rotates, ``make(seed)`` each from its timing seed: as many as
    TimingConfig.copies_for allows for the first one's size. The solution's loop, the reference's and the
    benchmarks' (benchmarks/common.timed_cases) all take them from here, so they time the same inputs."""
    first = make(timing_seed(config, 0))
    copies = config.timing.copies_for(input_bytes(first))
    return [first] + [make(timing_seed(config, i)) for i in range(1, copies)]


@contextlib.contextmanager
def _no_checksums():
    """torch.save without a CRC-32 of each record (torch 2.6 and later): the checksum took two thirds of the time
    of saving a 200 MB payload here (584 ms against 202 ms), and guards against nothing on a file that goes from
    a solution's process to the parent's copy. Loading does not need it."""
    try:
        from torch.utils.serialization import config
    except ImportError:  # an older torch: it always checksums
        yield
        return
    before, config.save.compute_crc32 = config.save.compute_crc32, False
    try:
        yield
    finally:
        config.save.compute_crc32 = before


def save_payload(payload: Dict[str, Any], path: Union[str, Path]) -> str:
    """Write outputs and figures to ``path`` as the reference process loads them (bench/oracle.unpack: torch's
    weights-only unpickler, so tensors, numbers, strings, lists and dicts only: a payload cannot run code where
    it is loaded), without per-record checksums. Returns the path."""
    with _no_checksums():
        torch.save(payload, path)
    return str(path)


_PAGE = 4096


def _host_pages(outputs) -> List[Any]:
    """For each device tensor of ``outputs``, an empty host tensor of its shape and dtype with every page touched
    (None for the rest): the copies' page faults (on the H200's host, fresh pageable memory took most of a
    copy's time), taken before the device lock and not under it, where they keep another lane's timed loop
    waiting while the device idles."""
    buffers: List[Any] = []
    for o in outputs:
        if not isinstance(o, torch.Tensor) or o.device.type == "cpu" or not env.host_pages_first():
            buffers.append(None)
            continue
        host = torch.empty(o.shape, dtype=o.dtype)
        if host.numel():
            host.view(-1).view(torch.uint8)[::_PAGE].zero_()  # one write a page faults it in
        buffers.append(host)
    return buffers


def _host_copies(outputs, buffers: Optional[List[Any]] = None) -> List[Any]:
    """Host copies of ``outputs``' tensors (the rest as they are), into ``buffers`` (_host_pages) where given."""
    copies = []
    for i, o in enumerate(outputs):
        if not isinstance(o, torch.Tensor):
            copies.append(o)
            continue
        host = buffers[i] if buffers is not None else None
        copies.append(host.copy_(o.detach()) if host is not None else o.detach().to("cpu", copy=True))
    return copies


def _to_host(outputs_list: List, step: Optional[str] = None) -> List[List[Any]]:
    """Host copies of each item of ``outputs_list``: their pages touched first, without the device lock, then the
    copies under it, held shared (timed as ``step`` when given)."""
    pages = [_host_pages(outputs) for outputs in outputs_list]
    with quiet.held(exclusive=False), (spent.timed(step) if step else contextlib.nullcontext()):
        return [_host_copies(outputs, buffers) for outputs, buffers in zip(outputs_list, pages)]


class SolutionEvaluator:
    """Runs one solution on workloads in this (solution-only) process."""

    def __init__(self, device: str, config: RunConfig, root: Optional[Path]):
        self.device, self.config, self.root = device, config, root

    def build(self, solution: Solution):
        """The runnable, or SolutionFailure (COMPILE_ERROR, or RUNTIME_ERROR for a device it cannot use)."""
        from ..build import build_solution

        try:
            runnable = build_solution(solution, device=self.device)
        except BuildError as e:
            raise SolutionFailure(Status.COMPILE_ERROR, f"{e}\n{e.log}") from e
        if not runs_on(solution, self.device) or not runnable.can_run_on(self.device):
            raise SolutionFailure(Status.RUNTIME_ERROR, f"solution {solution.name} cannot run on device {self.device} "
                                  f"(target_hardware {solution.spec.target_hardware}, language "
                                  f"{solution.spec.language.value})")
        return runnable

    def correctness_rounds(self, definition, workload, runnable) -> Dict[str, Any]:
        """Outputs of ``correctness_rounds`` calls on fresh inputs. Round 2 refills round 1's tensors in place,
        so caching by pointer is caught too."""
        dps = runnable.destination_passing_style
        spec = resolve_evaluator(definition, self.config.evaluator)
        rounds, previous = [], None
        for round_index in range(self.config.correctness_rounds):
            with quiet.held(exclusive=False):  # on a GPU, not inside another lane's timed loop; else a no-op
                entry = self._round(definition, workload, runnable, dps, spec, round_index, previous)
            entry["outputs"] = _to_host([entry["outputs"]])[0]
            previous = entry.pop("inputs")
            rounds.append(entry)
        return {"rounds": rounds}

    def _round(self, definition, workload, runnable, dps, spec, round_index: int, previous) -> Dict[str, Any]:
        """One correctness round: the entry sent to the reference process, with its "inputs" for the next round."""
        seed = round_seed(self.config, round_index)
        inputs = self._inputs(definition, workload, seed)
        if round_index == 1 and previous is not None:
            inputs = _refill(previous, inputs)
        case = Case(inputs, allocate_outputs(definition, workload, self.device) if dps else {})
        call, plan_us = self._plan(runnable, case)
        if plan_us is not None:  # run() must read what the plan may not: give it fresh values
            refill_unplanned(definition, inputs, self._inputs(definition, workload, seed + 1))
        before = snapshot(inputs)
        outputs = self._guarded_call(case, call, dps)
        # "planned" tells the reference process to refill the same inputs the same way.
        entry = {"seed": seed, "planned": plan_us is not None, "outputs": outputs,
                 "changed": inputs_changed(before, case.inputs) or ""}
        if spec.kind == "sampling" and round_index == 0:  # the distribution, judged by the reference process
            entry["samples"] = self._draw_samples(definition, workload, runnable, dps, inputs,
                                                  default_draws(spec, self.device))
        return {**entry, "inputs": inputs}

    def _draw_samples(self, definition, workload, runnable, dps, inputs, draws: int) -> torch.Tensor:
        """``draws`` samples [draws, rows] of the solution on ``inputs``: the batch rows are repeated so that
        one call draws many times (rows are independent), in calls of bounded input size."""
        axis = next(iter(definition.outputs.values())).shape[0]
        rows = int(workload.axes.get(axis, definition.const_axes.get(axis, 1)))
        batched = {n for n, spec in definition.inputs.items() if spec.shape and spec.shape[0] == axis}
        # A copy is the whole batch: its bytes, not one row's, divide the budget (a batch that alone is over it
        # is drawn once per call).
        batch_bytes = sum(inputs[n].numel() * inputs[n].element_size() for n in batched)
        per_call = max(1, min(draws, _DRAW_BATCH_BYTES["cpu" if self.device == "cpu" else "cuda"]
                              // max(batch_bytes, 1)))
        drawn: List[torch.Tensor] = []
        while sum(len(d) for d in drawn) < draws:
            copies = min(per_call, draws - sum(len(d) for d in drawn))
            repeated = {n: (v.repeat(copies, *[1] * (v.dim() - 1)) if n in batched else v) for n, v in inputs.items()}
            grown = workload.model_copy(update={"axes": {**workload.axes, axis: rows * copies}})
            case = Case(repeated, allocate_outputs(definition, grown, self.device) if dps else {})
            call, _ = self._plan(runnable, case)
            got = _host_copies(self._guarded_call(case, call, dps))[0]
            drawn.append(torch.as_tensor(got).reshape(copies, rows).cpu())
        return torch.cat(drawn)

    def timing(self, definition, workload, runnable) -> Dict[str, Any]:
        """Timing statistics (as JSON) and host copies of a few timed calls' outputs with their input seeds."""
        dps = runnable.destination_passing_style
        # Making the inputs (gigabytes of K/V for a large decode) and planning use the device: not inside another
        # lane's timed loop.
        with quiet.held(exclusive=False), spent.timed("inputs and plan"):
            inputs = timed_input_sets(self.config, lambda seed: self._inputs(definition, workload, seed))
            cases = [Case(i, allocate_outputs(definition, workload, self.device) if dps else {}) for i in inputs]
            planned = [self._plan(runnable, case) for case in cases]  # outside the timed region
        calls = [call for call, _ in planned]
        try:
            stats, checked = time_calls(lambda i: cases[i].call(calls[i], dps), len(cases), self.device,
                                        resolve_timing(self.config.timing, definition),
                                        lambda i: tuple(cases[i].outputs.values()), True)
        except Exception as e:
            raise SolutionFailure(Status.RUNTIME_ERROR, "while timing:\n" + traceback.format_exc(),
                                  fatal=_is_cuda_error(e)) from e
        plan_us = [us for _, us in planned if us is not None]
        if plan_us:
            stats = stats.model_copy(update={"plan_host_us": statistics.median(plan_us)})
        copies = _to_host([out for _, out in checked], "checked copies")
        checked = [{"seed": timing_seed(self.config, i), "outputs": host} for (i, _), host in zip(checked, copies)]
        return {"timing": stats.model_dump_json(), "checked": checked}

    def _inputs(self, definition, workload, seed: int) -> Dict[str, Any]:
        try:
            return materialize_inputs(definition, workload, self.device, seed, self.root)
        except Exception as e:
            # The reference process made these inputs before the solution ran, so here the solution is at fault.
            raise SolutionFailure(Status.RUNTIME_ERROR, "inputs could not be made in the solution's process:\n"
                                  + traceback.format_exc(), fatal=_is_cuda_error(e)) from e

    def _plan(self, fn, case: Case):
        """(callable to time on ``case``, host microseconds of its plan step or None); a failing plan step is
        the solution's runtime error."""
        try:
            return plan_case(fn, case)
        except Exception as e:
            raise SolutionFailure(Status.RUNTIME_ERROR, "in the plan step:\n" + traceback.format_exc(),
                                  fatal=_is_cuda_error(e)) from e

    def _guarded_call(self, case: Case, runnable, dps: bool) -> List[Any]:
        """Call the solution once and return copies of its outputs taken right after the call, on its device (the
        caller copies them to the host).

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
        return list(copied)


_WARM_UP_DEFINITION = {
    "name": "kernelarena_warm_up", "op_type": "elementwise",
    "axes": {"n": {"type": "var"}, "d": {"type": "const", "value": 256}},
    "inputs": {"x": {"shape": ["n", "d"], "dtype": "bfloat16"}, "w": {"shape": ["d"], "dtype": "float32"}},
    "outputs": {"y": {"shape": ["n", "d"], "dtype": "bfloat16"}},
    "reference": "import torch\n\ndef run(x, w):\n    return (x.float() * w).to(x.dtype)\n"}


class _WarmUpCall:
    """The harness's own stand-in for a solution (never a user's code): what the warm-up evaluates."""

    destination_passing_style = True

    def __call__(self, x, w, y):
        torch.mul(x.float(), w, out=y)


def warm_up(device: str, config: RunConfig) -> None:
    """One miniature evaluation (correctness rounds, a short timed loop, packing) on a built-in definition,
    so that what a process pays once, on its first evaluation, is paid while it waits in the pool: on a GPU,
    loading the harness's kernels (input generation, poisoning, copies), the sleep kernel's calibration, the
    profiler's start and the L2 flush buffer. Raises what the harness raises."""
    definition = Definition.model_validate(_WARM_UP_DEFINITION)
    workload = Workload(uuid="warm-up", axes={"n": 8}, inputs={"x": {"type": "random"}, "w": {"type": "random"}})
    short = dataclasses.replace(config, correctness_rounds=2, timing=dataclasses.replace(
        config.timing, warmup=2, reps=5, checked_calls=1))
    evaluator = SolutionEvaluator(device, short, None)
    call = _WarmUpCall()
    with tempfile.TemporaryDirectory() as folder:  # in a worker, inside its scratch folder (TMPDIR)
        save_payload(evaluator.correctness_rounds(definition, workload, call), os.path.join(folder, "rounds.pt"))
        save_payload(evaluator.timing(definition, workload, call), os.path.join(folder, "timing.pt"))


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


