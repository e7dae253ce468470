"""One frozen configuration object for a benchmark run, made at the edge (CLI or API) and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Tuple

from ..schema import EvaluatorSpec, Tolerance


@dataclass(frozen=True)
class TimingConfig:
    """How latency is measured. ``None`` counts pick a default for the device kind (GPU: 10 warm-up calls and
    100 timed, fewer timed for slow calls, see bench/timing.bounded_reps; CPU: 1 and 5, since CPU runs exist to
    exercise the pipeline, not to rank kernels)."""

    warmup: Optional[int] = None
    reps: Optional[int] = None
    mode: Optional[str] = None
    """"cold": L2 flushed before every timed call, device time from CUPTI (CUDA events where the profiler gives
    nothing usable); "events": the same, timed by CUDA events; "warm": no flush, CUDA events; "graph": calls
    captured in a CUDA graph and replayed (for very short kernels, removing launch gaps). None: each
    definition's own ``timing``, else cold. On the CPU every mode is wall clock."""
    input_copies: int = 4
    """Input sets rotated between calls, so a call does not find the previous call's data in cache."""
    input_copy_bytes: int = 2 << 30
    """Memory the rotated input sets may take together: fewer sets (at least one) where ``input_copies`` of
    them would take more (``copies_for``). The solution's timing and the reference's take the same count."""
    host_ahead: bool = True
    """Before each timed GPU call, a sleep kernel as long as 1.5x the call's host time (no upper bound), so that
    the device runs the call's work back to back and not at a slow launcher's pace (the host cost is recorded
    apart, as host_overhead_us)."""
    checked_calls: int = 3
    """Timed calls, chosen at random, whose outputs are verified (a solution cannot do less when timed)."""
    settle_s: Optional[float] = None
    """Seconds of untimed rounds of the timed loop (flush, sleep ahead, call) run just before it, inside its
    exclusive hold of the device, for calls of at least bench/timing.SETTLE_ABOVE_S on the GPU: the loop then
    starts at the clocks the call's own load settles to. None: none when ``rest`` is on (the default), else
    bench/timing.SETTLE_S; 0: none."""
    rest: float = 1.0
    """For calls of at least bench/timing.SETTLE_ABOVE_S on the GPU: after each timed call the device idles ``rest``
    times the call's wall time, at most bench/timing.REST_MAX_S, less the sleep ahead of the call, which idles it
    too (the loop waits for the call, then sleeps on the host), still inside the exclusive hold, so that the GPU's
    average power stays under its limit and its clocks at their peak whatever it did before
    (bench/timing.rest_seconds). 0: back to back."""

    loop_s: float = 1.5
    """Seconds a default timed loop of a slow call may last, its sleeps ahead and rests included: its rep count
    drops below ``reps`` to fit, never below bench/timing.FEWEST_REPS (bench/timing.bounded_reps). An explicit
    ``reps`` is used as given. 1.5 s and 3 s loops read the same latencies: over the example dataset's 124 RMSNorm
    and attention pairs on the H200 (2026-12-03), the median pair 0.1% apart, the worst 1.3%, references included;
    the run took 76 s instead of 87
    (benchmarks/results/history/isolation_walltime_2026-12-03_h200_session20_call1.md)."""

    def __post_init__(self) -> None:
        if not self.loop_s > 0:
            raise ValueError(f"loop_s={self.loop_s}: must be more than 0 seconds")
        if self.warmup is not None and self.warmup < 0:
            raise ValueError(f"warmup={self.warmup}: must be 0 or more")
        if self.reps is not None and self.reps < 1:
            raise ValueError(f"reps={self.reps}: must be at least 1")
        if self.settle_s is not None and not self.settle_s >= 0:
            raise ValueError(f"settle_s={self.settle_s}: must be 0 or more seconds")
        if self.input_copies < 1 or self.input_copy_bytes < 1:
            raise ValueError(f"input_copies={self.input_copies}, input_copy_bytes={self.input_copy_bytes}: each must "
                             "be at least 1")
        if not self.rest >= 0:
            raise ValueError(f"rest={self.rest}: must be 0 or more (idle time per unit of call time)")

    def copies_for(self, set_bytes: int) -> int:
        """How many input sets of ``set_bytes`` each a timed loop rotates: ``input_copies``, fewer (at least one)
        where they would take more than ``input_copy_bytes`` together. One rule for every timed loop, so a
        solution and the reference are timed on the same input sets (a MoE's routing, and so its work, follows
        its inputs)."""
        return max(1, min(self.input_copies, self.input_copy_bytes // max(set_bytes, 1)))

    def counts(self, device: str) -> Tuple[int, int]:
        gpu = device.startswith("cuda")
        return (self.warmup if self.warmup is not None else (10 if gpu else 1),
                self.reps if self.reps is not None else (100 if gpu else 5))


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides how solutions are evaluated."""

    devices: Tuple[str, ...] = ()
    """Devices to evaluate on, one worker each ("cuda:0", "cpu"); empty: every visible GPU, else the CPU."""
    correctness_rounds: int = 3
    """Fresh input sets each solution is checked on."""
    tolerance: Optional[Tolerance] = None
    """Overrides the definition's and the per-dtype default tolerance."""
    evaluator: Optional[EvaluatorSpec] = None
    """Overrides the definition's evaluator and the one its op_type picks (bench/evaluators.py)."""
    timeout_s: float = 300.0
    """Wall-clock limit for one evaluation (build included); past it the worker is killed: TIMEOUT."""
    seed: int = 0
    timing: TimingConfig = field(default_factory=TimingConfig)
    time_reference: bool = True
    """Also time the definition's reference on each workload (for speedup_factor)."""
    reference_timer: Optional[bool] = None
    """Time the reference in a second reference process of its own, beside the one that judges, so that the
    lanes' comparisons do not wait while a slow reference is timed (a PyTorch prefill loop runs seconds); None: on
    a GPU, not on the CPU (where a process more would slow the wall-clock timing of the others)."""
    sandbox: bool = True
    """Restrict each solution's process to writing beneath its scratch folder and the build caches (Landlock,
    where the kernel has it). The network cut and the fresh process per solution are always on."""
    spare_workers: Optional[int] = None
    """Solution processes started ahead per device, so that a new solution rarely waits for one to start; None:
    ``default_spare_workers()``."""

    lanes: Optional[int] = None
    """Evaluations at once per device, sharing its worker pool and reference timer, each lane with a judging
    reference process of its own where ``judges_for`` allows; None: 2 on a GPU, 1 on the CPU. On a GPU the
    device lock (bench/quiet.py) keeps timed loops alone on the device while the other lane checks or starts; on
    the CPU timing is wall clock, so more than one lane there is for tests, not numbers."""

    def lanes_for(self, device: str) -> int:
        """Evaluations at once on ``device``."""
        if self.lanes is not None:
            return self.lanes
        return 2 if device.startswith("cuda") else 1

    def judges_for(self, device: str) -> int:
        """Judging reference processes on ``device``: one per lane, so that a lane's comparisons never queue behind
        another lane's (in one judging process shared by two lanes on the H200, 2026-12-03, the lanes waited 19 s
        of a 115 s example-dataset run for each other's turns, its comparisons took 34 s), unless the judging
        process also times the reference (no reference timer): then one, so that every trace of a workload has
        its speedup against the same reference timing."""
        if self.time_reference and not self.reference_timer_for(device):
            return 1
        return self.lanes_for(device)

    def reference_timer_for(self, device: str) -> bool:
        """Whether ``device``'s references are timed by a reference process of their own (``reference_timer``)."""
        if not self.time_reference:
            return False
        return self.reference_timer if self.reference_timer is not None else device.startswith("cuda")

    def spares(self) -> int:
        """Solution processes to keep started ahead per device."""
        return self.spare_workers if self.spare_workers is not None else default_spare_workers()

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s={self.timeout_s}: must be more than 0 seconds")
        if self.correctness_rounds < 1:
            raise ValueError(f"correctness_rounds={self.correctness_rounds}: must be at least 1")
        if self.lanes is not None and self.lanes < 1:
            raise ValueError(f"lanes={self.lanes}: must be at least 1")


def default_spare_workers() -> int:
    """3 on a small machine, up to 8 with the cores to start them in parallel (half of them). On the H200 (16
    cores) with 3, a run of the six RMSNorm and attention definitions, one workload each, waited 22.7 s of its
    51.7 s for workers (2026-12-02, results/isolation_walltime_latest.md): a GPU worker's start (CUDA context,
    warm imports) takes longer than a one-workload evaluation, so the pool's start rate set the pace."""
    return max(3, min(8, (os.cpu_count() or 2) // 2))
