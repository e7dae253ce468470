"""Latency measurement: CUDA events with a cold or warm L2 and rotated inputs, CUDA-graph replay, or wall clock
on the CPU. Random timed calls are verified afterwards, so a solution that does less when timed is caught."""

from __future__ import annotations

import dataclasses
import random
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ..schema import Definition, TimingStats
from .config import TimingConfig
from .inputs import poison_value

Call = Callable[[int], Tuple]  # call(copy_index) -> outputs
_FLUSH: Dict[int, torch.Tensor] = {}
_CYCLES_PER_US: Dict[int, float] = {}
MODES = ("cold", "warm", "graph")


def resolve_timing(config: TimingConfig, definition: Definition) -> TimingConfig:
    """The timing configuration for one definition: the run's explicit mode, else the definition's declared
    ``timing``, else cold L2. ValueError names an unknown mode."""
    mode = config.mode or definition.timing or "cold"
    if mode not in MODES:
        raise ValueError(f"timing mode {mode!r} is not one of {', '.join(MODES)}")
    return config if mode == config.mode else dataclasses.replace(config, mode=mode)


def summarize(samples_ms: Sequence[float], mode: str, host_us: Optional[float] = None) -> TimingStats:
    """Median, mean, extremes and quartiles of a list of latencies."""
    s = sorted(samples_ms)
    q = statistics.quantiles(s, n=4, method="inclusive") if len(s) > 1 else [s[0]] * 3
    return TimingStats(median_ms=statistics.median(s), mean_ms=statistics.fmean(s), min_ms=s[0], max_ms=s[-1],
                       p25_ms=q[0], p75_ms=q[2], count=len(s), mode=mode, host_overhead_us=host_us)


def l2_flush_buffer(device: torch.device) -> torch.Tensor:
    """A buffer twice the device's L2 size; writing it evicts whatever the previous call left in L2."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _FLUSH:
        l2 = getattr(torch.cuda.get_device_properties(index), "L2_cache_size", 50 << 20) or (50 << 20)
        _FLUSH[index] = torch.empty(2 * l2, dtype=torch.uint8, device=device)
    return _FLUSH[index]


def poison_(outputs: Sequence[Any]) -> None:
    for t in outputs:
        if isinstance(t, torch.Tensor):
            t.fill_(poison_value(t.dtype))


def time_calls(call: Call, copies: int, device: str, config: TimingConfig, outputs_of: Callable[[int], Sequence],
               check: bool = True) -> Tuple[TimingStats, List[Tuple[int, Tuple]]]:
    """Time ``call`` and return its statistics with the outputs of a few randomly chosen timed calls.

    ``outputs_of(i)`` gives copy ``i``'s preallocated outputs (empty for value-returning calls); those are
    poisoned before a checked call so that only that call's own writes can make them right. The checked
    outputs are cloned on the timing stream right after the call, so work hidden on another stream or thread
    is seen unfinished.
    """
    warmup, reps = config.counts(device)
    chosen = set(random.sample(range(reps), min(config.checked_calls, reps))) if check else set()
    if device.startswith("cuda"):
        if config.mode == "graph":
            return _time_graph(call, copies, warmup, reps, outputs_of, check)
        return _time_events(call, copies, warmup, reps, config.mode != "warm", torch.device(device), outputs_of,
                            chosen, config.host_ahead)
    return _time_wall(call, copies, warmup, reps, outputs_of, chosen)


def _clone(outputs: Tuple) -> Tuple:
    return tuple(o.clone() if isinstance(o, torch.Tensor) else o for o in outputs)


def sleep_cycles_per_us(device: torch.device) -> float:
    """GPU clock cycles per microsecond, measured once per device by timing a sleep kernel."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _CYCLES_PER_US:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda._sleep(1_000_000)  # first launch loads the kernel
        start.record()
        torch.cuda._sleep(2_000_000)
        end.record()
        end.synchronize()
        _CYCLES_PER_US[index] = plausible_cycles_per_us(2_000_000 / max(start.elapsed_time(end) * 1e3, 1e-3))
    return _CYCLES_PER_US[index]


GPU_CLOCK_MHZ = (100.0, 3000.0)
"""Clock rates no GPU leaves (an H200 boosts to 1980 MHz): the sleep calibration is clamped into them."""


def plausible_cycles_per_us(measured: float) -> float:
    """``measured`` cycles per microsecond, clamped into GPU_CLOCK_MHZ. The calibration runs in the solution's
    process, where a solution can patch the event timer (elapsed_time returning 0 read as 2e9 cycles a
    microsecond, and the host-ahead sleep became seconds per call: the run timed out instead of failing the
    solution for its impossible latency, as it does on the CPU)."""
    low, high = GPU_CLOCK_MHZ
    return min(max(measured, low), high)


def _time_events(call, copies, warmup, reps, cold, device, outputs_of, chosen, host_ahead):
    warm_host = []
    for i in range(warmup):
        t0 = time.perf_counter()
        call(i % copies)
        warm_host.append(time.perf_counter() - t0)
    flush = l2_flush_buffer(device) if cold else None
    # A launch that costs more host time than the GPU spends on the L2 flush would leave the GPU idle inside
    # the timed region, and the latency would measure the host (Triton's Python launcher: ~50 us on the GPU
    # machine). A sleep kernel of 1.5x the call's host time lets the host get ahead, so events time the device
    # work alone; the host cost is recorded separately as host_overhead_us.
    ahead = 0
    if host_ahead and warm_host:
        # The cap bounds the wall time a slow launcher costs (reps x ahead); 10 ms covers a per-request PyTorch
        # loop over a batch of 64 (several hundred launches, a few ms of host time).
        ahead_us = min(max(1.5 * statistics.median(warm_host) * 1e6, 10.0), 10_000.0)
        ahead = int(ahead_us * sleep_cycles_per_us(device))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    host, checked = [], []
    torch.cuda.synchronize(device)
    for r in range(reps):
        i = r % copies
        if r in chosen:
            poison_(outputs_of(i))
        if flush is not None:
            flush.zero_()
        if ahead:
            torch.cuda._sleep(ahead)
        t0 = time.perf_counter()
        starts[r].record()
        out = call(i)
        ends[r].record()
        host.append(time.perf_counter() - t0)
        if r in chosen:
            checked.append((i, _clone(out)))
    torch.cuda.synchronize(device)
    samples = [s.elapsed_time(e) for s, e in zip(starts, ends)]
    mode = "cuda-events-cold-l2" if cold else "cuda-events-warm"
    return summarize(samples, mode, statistics.median(host) * 1e6), checked


def _time_graph(call, copies, warmup, reps, outputs_of, check):
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    host = []
    with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
        for i in range(max(warmup, 1)):
            t0 = time.perf_counter()
            call(i % copies)
            host.append(time.perf_counter() - t0)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = [call(i) for i in range(copies)]
    for i in range(copies):
        poison_(outputs_of(i))
    graph.replay()
    checked = [(i, _clone(captured[i])) for i in range(copies)] if check else []
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    replays = max(1, reps // copies)
    for _ in range(replays):
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / copies)
    # Host cost is that of an eager call (what a caller without graphs pays), measured during the warm-up.
    return summarize(samples, "cuda-graph", statistics.median(host) * 1e6), checked


def _time_wall(call, copies, warmup, reps, outputs_of, chosen):
    for i in range(warmup):
        call(i % copies)
    samples, checked = [], []
    for r in range(reps):
        i = r % copies
        if r in chosen:
            poison_(outputs_of(i))
        t0 = time.perf_counter()
        out = call(i)
        samples.append((time.perf_counter() - t0) * 1e3)
        if r in chosen:
            checked.append((i, _clone(out)))
    # On the CPU the whole call is host time.
    return summarize(samples, "cpu-wall", statistics.median(samples) * 1e3), checked


class ColdL2Timer:
    """Median CUDA-event time of ``fn(set)`` with the L2 flushed before each call and the input sets rotated,
    for benchmarks that compare several implementations of one shape.

    ``median_us_each`` times the functions in turn within each repetition (the first one rotating), so that a
    drift of the GPU's clocks or of the machine reaches all of them alike. Before each flush the GPU sleeps
    ``host_ahead_us``, so the host has queued the timed call by the time the flush ends, however slow the call
    is on the host (torch eager, torch.compile: a few hundred us): the events then time the GPU's work, not the
    host's. ``flush_l2`` runs before each timed call; by default it zeroes ``l2_flush_buffer`` (twice the L2).
    On the CPU it returns the mean wall time per call over the sets, one function after the other.
    """

    def __init__(self, device: str, budget_s: float = 0.25, flush_l2: Optional[Callable[[], Any]] = None,
                 host_ahead_us: float = 400.0):
        self.device = device
        self.budget_s = budget_s
        self.ahead_cycles = 0
        self.flush_l2 = flush_l2
        if device != "cpu":
            if flush_l2 is None:
                self.flush_l2 = l2_flush_buffer(torch.device(device)).zero_
            if host_ahead_us:
                self.ahead_cycles = int(host_ahead_us * sleep_cycles_per_us(torch.device(device)))

    def median_us(self, fn: Callable[[Any], Any], sets: Sequence[Any], min_reps: int = 20,
                  max_reps: int = 200) -> float:
        """Median us of ``fn(set)`` over repetitions, the L2 flushed before each."""
        return self.median_us_each({"fn": fn}, sets, min_reps, max_reps)["fn"]

    def median_us_each(self, fns: Dict[str, Callable[[Any], Any]], sets: Sequence[Any], min_reps: int = 20,
                       max_reps: int = 200) -> Dict[str, float]:
        """name -> median us of ``fns[name](set)``, the functions timed in turn within each repetition. The
        repetition count fits ``budget_s`` per function, within ``min_reps`` and ``max_reps``."""
        if not fns or not sets:
            raise ValueError("ColdL2Timer.median_us_each needs at least one function and one input set")
        if self.device == "cpu":
            result = {}
            for name, fn in fns.items():
                start = time.perf_counter()
                for s in sets:
                    fn(s)
                result[name] = (time.perf_counter() - start) / len(sets) * 1e6
            return result
        names = list(fns)
        once = 0.0
        for fn in fns.values():
            for s in sets:  # warm-up: compilation, module loads, allocator
                fn(s)
            torch.cuda.synchronize()
            start = time.perf_counter()
            fn(sets[0])
            torch.cuda.synchronize()
            once += time.perf_counter() - start
        reps = max(min_reps, min(max_reps, int(self.budget_s * len(names) / (once + 1e-4 * len(names)))))
        events = {n: [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                      for _ in range(reps)] for n in names}
        for i in range(reps):
            for n in names[i % len(names):] + names[:i % len(names)]:
                begin, end = events[n][i]
                if self.ahead_cycles:
                    torch.cuda._sleep(self.ahead_cycles)
                self.flush_l2()
                begin.record()
                fns[n](sets[i % len(sets)])
                end.record()
        torch.cuda.synchronize()
        return {n: statistics.median(b.elapsed_time(e) for b, e in events[n]) * 1e3 for n in names}
