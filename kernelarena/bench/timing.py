"""Latency measurement. On a GPU, by default, the device time of each call read from CUPTI (the PyTorch
profiler's kernel, copy and set durations) with a cold L2 and rotated inputs; CUDA events where the profiler
gives nothing usable, or when asked ("events", "warm"); CUDA-graph replay ("graph"); wall clock on the CPU.
Random timed calls are verified afterwards, so a solution that does less when timed is caught."""

from __future__ import annotations

import contextlib
import dataclasses
import random
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ..schema import Definition, TimingStats
from . import quiet, spent
from .config import TimingConfig
from .device_activity import ActivityProfile
from .inputs import poison_value

# Bound at import. A worker imports this module (through bench/evaluate.py) before it imports any solution, so
# a solution that replaces time.perf_counter, torch.cuda.Event's methods, torch.cuda._sleep or Tensor.zero_ /
# fill_ / clone at import does not change what the timer reads or does. What stays open is in
# docs/evaluation.md ("What is not defended").
_perf_counter = time.perf_counter
_host_sleep = time.sleep
_TENSOR = torch._C.TensorBase
_zero, _fill, _clone_tensor = _TENSOR.zero_, _TENSOR.fill_, _TENSOR.clone
_Event = torch.cuda.Event
_EVENT_BASE = _Event.__mro__[1]  # torch._C._CudaEventBase on a CUDA build, a placeholder class otherwise
_elapsed_ms = getattr(_EVENT_BASE, "elapsed_time", None) or _Event.elapsed_time
_record_on = getattr(_EVENT_BASE, "record", None)
_current_stream = torch.cuda.current_stream
_sleep = getattr(torch._C, "_cuda_sleep", None) or torch.cuda._sleep
_synchronize = torch.cuda.synchronize
_manual_seed = torch.manual_seed
RANDOM_SEED = 1_000_033
"""Torch's generators are seeded with RANDOM_SEED + the input copy's index before each timed call: a kernel whose
time depends on its random draws (FlashInfer's rejection samplers) draws the same numbers for the same copy in
every run, so its latency repeats (on the H200 an unseeded top-k sampler differed by 20% between two runs)."""

Call = Callable[[int], Tuple]  # call(copy_index) -> outputs
_FLUSH: Dict[int, torch.Tensor] = {}
_CYCLES_PER_US: Dict[int, float] = {}
MODES = ("cold", "events", "warm", "graph")
"""cold: CUPTI device time (CUDA events when the profiler gives nothing usable), L2 flushed before each call;
events: CUDA events, L2 flushed; warm: CUDA events, no flush; graph: CUDA-graph replay timed by events."""

TIMED_LOOP_S = TimingConfig.loop_s
FEWEST_REPS = 20
"""The default rep count is lowered for slow calls so that the timed loop, its rests included, lasts about
TIMED_LOOP_S (TimingConfig.loop_s), never below FEWEST_REPS (see bounded_reps)."""


SETTLE_S = 0.2
SETTLE_ABOVE_S = 200e-6
"""Calls taking at least SETTLE_ABOVE_S (wall time of a warm-up call, device work included) are "long": their speed
follows the GPU's clocks, and those follow its recent power draw (a short call is over before the clocks move).
By default a long call rests after each timed call (TimingConfig.rest, rest_seconds); a configuration without
rest runs untimed rounds of the timed loop for SETTLE_S just before it instead (TimingConfig.settle_s)."""
WARMUP_S = 0.3
FEWEST_WARMUP = 3
"""A default warm-up (TimingConfig.warmup None) stops once its calls have taken WARMUP_S, after at least
FEWEST_WARMUP of them: the first call compiles and loads, the next ones show the call's own host and wall time,
and ten calls of a 50 ms PyTorch reference spent half a second of device time on nothing else."""
REST_MAX_S = 0.05
"""The longest rest after one timed call: a call of 50 ms or more is a host-bound loop or long enough to reach
its own clocks whatever came before, and a default loop of 0.5 s calls (20 of them) with its rests still fits the
device lock's wait (quiet.WAIT_S)."""


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
            _fill(t, poison_value(t.dtype))


def host_ahead_us(host_s: float) -> float:
    """Microseconds of the sleep before each timed GPU call: 1.5x the call's host time (at least 10 us), with no
    upper bound, so that the device never waits for the host inside the timed region; bounded_reps keeps the
    wall time of slow calls in check instead."""
    return max(1.5 * host_s * 1e6, 10.0)


def bounded_reps(reps: int, per_rep_s: float, loop_s: float = TIMED_LOOP_S) -> int:
    """The default rep count for a call costing ``per_rep_s`` a repetition (the sleep ahead, one call with its
    device work, the rest after it): ``reps`` while the loop fits ``loop_s``, else as many as fit, never below
    FEWEST_REPS (nor above ``reps``). The estimate counts the sleep and the call's wall time one after the other,
    though the host launches during the sleep: it errs long. A 63 ms per-request loop (95 ms of sleep + 63 ms)
    gets 20. The rest counts: without it, a 50 ms PyTorch prefill reference resting 50 ms after each call held
    the device 5.4 s instead of 3 (48 reps on the H200, 2026-12-03)."""
    fitting = int(loop_s / max(per_rep_s, 1e-9))
    return max(min(reps, FEWEST_REPS), min(reps, fitting))


def time_calls(call: Call, copies: int, device: str, config: TimingConfig, outputs_of: Callable[[int], Sequence],
               check: bool = True) -> Tuple[TimingStats, List[Tuple[int, Tuple]]]:
    """Time ``call`` and return its statistics with the outputs of a few randomly chosen timed calls.

    ``outputs_of(i)`` gives copy ``i``'s preallocated outputs (empty for value-returning calls); those are
    poisoned before a checked call so that only that call's own writes can make them right. The checked
    outputs are cloned on the timing stream right after the call, so work hidden on another stream or thread
    is seen unfinished. An explicit ``config.reps`` is used as given; the default is lowered for slow GPU
    calls (bounded_reps).
    """
    warmup, reps = config.counts(device)
    if device.startswith("cuda") and config.mode == "graph":
        with quiet.held(exclusive=True) as waited, spent.timed("timed loop"):  # alone on the device
            stats, checked = _time_graph(call, copies, warmup, reps, outputs_of, check)
        stats = stats.model_copy(update={"device_alone": quiet.alone(waited)})
    elif device.startswith("cuda"):
        stats, checked = _time_device(call, copies, warmup, reps, config, torch.device(device), outputs_of, check)
    else:
        chosen = set(random.sample(range(reps), min(config.checked_calls, reps))) if check else set()
        with spent.timed("timed loop"):
            stats, checked = _time_wall(call, copies, warmup, reps, outputs_of, chosen)
    return stats.model_copy(update={"input_sets": copies}), checked


def _clone(outputs: Tuple) -> Tuple:
    return tuple(_clone_tensor(o) if isinstance(o, torch.Tensor) else o for o in outputs)


def _new_event():
    return _Event(enable_timing=True)


def _record(event) -> None:
    if _record_on is not None:
        _record_on(event, _current_stream())
    else:
        event.record()


def sleep_cycles_per_us(device: torch.device) -> float:
    """GPU clock cycles per microsecond, measured once per device by timing a sleep kernel."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _CYCLES_PER_US:
        start, end = _new_event(), _new_event()
        _sleep(1_000_000)  # first launch loads the kernel
        _record(start)
        _sleep(2_000_000)
        _record(end)
        _synchronize(device)
        _CYCLES_PER_US[index] = plausible_cycles_per_us(2_000_000 / max(_elapsed_ms(start, end) * 1e3, 1e-3))
    return _CYCLES_PER_US[index]


GPU_CLOCK_MHZ = (100.0, 3000.0)
"""Clock rates no GPU leaves (an H200 boosts to 1980 MHz): the sleep calibration is clamped into them."""


def plausible_cycles_per_us(measured: float) -> float:
    """``measured`` cycles per microsecond, clamped into GPU_CLOCK_MHZ. The calibration runs in the solution's
    process; the event timer it reads is bound at import, and the clamp stays for what binding cannot stop (a
    solution patching the timer inside torch's C++): a calibration read as 2e9 cycles a microsecond made the
    host-ahead sleep seconds per call, and the run timed out instead of failing the solution for its impossible
    latency."""
    low, high = GPU_CLOCK_MHZ
    return min(max(measured, low), high)


def _profiled_host_s(profile: ActivityProfile, call, copies, calls, device) -> float:
    """Median host seconds of ``calls`` calls made inside ``profile``'s harness windows (their device work is
    left out of the timed calls')."""
    spent = []
    for i in range(calls):
        with profile.harness():
            t0 = _perf_counter()
            call(i % copies)
            spent.append(_perf_counter() - t0)
    _synchronize(device)
    return statistics.median(spent) if spent else 0.0


def _time_device(call, copies, warmup, reps, config: TimingConfig, device, outputs_of, check):
    """Only the timed loop holds the device lock exclusively (bench/quiet.py); the warm-up calls and the
    profiler's start hold it shared, and reading the profile back (host work) holds nothing, so another lane's
    checks go on meanwhile."""
    with quiet.held(exclusive=False), spent.timed("warm-up"):
        prepared = _prepare_device_loop(call, copies, warmup, reps, config, device, check)
    profile, fallback, ahead, reps, chosen, warm_host, settle_s, rest_s = prepared
    starts = [_new_event() for _ in range(reps)]
    ends = [_new_event() for _ in range(reps)]
    host, checked = [], []
    harness = profile.harness if profile is not None else contextlib.nullcontext
    window = profile.call if profile is not None else (lambda r: contextlib.nullcontext())
    flush = l2_flush_buffer(device) if config.mode != "warm" else None
    activity = None
    try:
        with quiet.held(exclusive=True) as waited:  # alone on the device: no other process of this run works on it
            alone = quiet.alone(waited)
            _synchronize(device)
            if settle_s:
                with harness(), spent.timed("settling"):
                    _settle(call, copies, flush, ahead, settle_s, device)
            loop_started, rested_s = _perf_counter(), 0.0
            for r in range(reps):
                i = r % copies
                with harness():
                    _manual_seed(RANDOM_SEED + i)
                    if r in chosen:
                        poison_(outputs_of(i))
                    if flush is not None:
                        _zero(flush)
                    if ahead:
                        _sleep(ahead)
                t0 = _perf_counter()
                _record(starts[r])
                with window(r):
                    out = call(i)
                _record(ends[r])
                host.append(_perf_counter() - t0)
                if r in chosen:
                    with harness():
                        checked.append((i, _clone(out)))
                if rest_s:
                    _synchronize(device)
                    resting_from = _perf_counter()
                    _host_sleep(rest_s)
                    rested_s += _perf_counter() - resting_from
            _synchronize(device)
            spent.add("timed loop", _perf_counter() - loop_started - rested_s)
            if rested_s:
                spent.add("resting", rested_s)
    except BaseException:
        if profile is not None:
            profile.abandon()
        raise
    if profile is not None:
        with spent.timed("profile read"):
            activity = profile.stop()
    host_us = statistics.median(host) * 1e6
    rested = rest_s * 1e6 if rest_s else None
    if activity is not None and activity.problem is None:
        # Host time under the profiler includes its own callbacks: the warm-up's (after the first call, which
        # may compile) is the call's.
        unprofiled = warm_host[1:] if len(warm_host) > 2 else []
        stats = summarize([us / 1e3 for us in activity.busy_us()], "cupti-cold-l2",
                          statistics.median(unprofiled) * 1e6 if unprofiled else host_us)
        return stats.model_copy(update={"device_alone": alone, "rest_us": rested}), checked
    if activity is not None:
        fallback = f"CUPTI device activity not usable: {activity.problem}"
    samples = [_elapsed_ms(s, e) for s, e in zip(starts, ends)]
    stats = summarize(samples, "cuda-events-cold-l2" if flush is not None else "cuda-events-warm", host_us)
    stats = stats.model_copy(update={"device_alone": alone, "rest_us": rested,
                                     **({"fallback_reason": fallback} if fallback else {})})
    return stats, checked


def _settle(call, copies, flush, ahead, seconds, device) -> int:
    """Untimed rounds of the timed loop's own pattern (flush, sleep ahead, call), each waited for, until
    ``seconds`` have passed (at least one): the GPU's clocks settle to this call's load. How many were run."""
    deadline = _perf_counter() + seconds
    rounds = 0
    while True:
        if flush is not None:
            _zero(flush)
        if ahead:
            _sleep(ahead)
        call(rounds % copies)
        rounds += 1
        _synchronize(device)
        if _perf_counter() >= deadline:
            return rounds


def settle_seconds(config: TimingConfig, call_wall_s: float) -> float:
    """Seconds of settling rounds before the timed loop of a call whose warm-up calls took ``call_wall_s`` each:
    none by default when the loop rests (settling heats the GPU that resting keeps cool), else SETTLE_S."""
    seconds = (0.0 if config.rest else SETTLE_S) if config.settle_s is None else config.settle_s
    return seconds if call_wall_s >= SETTLE_ABOVE_S else 0.0


def rest_seconds(config: TimingConfig, call_wall_s: float, ahead_s: float = 0.0) -> float:
    """Seconds the device idles after each timed call of a call whose warm-up calls took ``call_wall_s`` each and
    that a sleep of ``ahead_s`` precedes: ``config.rest`` times the call for a long call, at most REST_MAX_S, less
    the sleep ahead, which idles the device as well (one thread spinning): a host-bound call (a per-request PyTorch
    loop, its sleep ahead 1.5x its host time, so longer than its device work) rests no more. The device then idles
    at least ``config.rest`` times its work per call, since the call's wall time bounds its device time. Resting
    keeps the GPU's average power under its limit, so its clocks stay at their peak whatever ran before: on the
    H200, FlashInfer's paged prefill at 16 x 512 queries (about 0.94 ms, tensor cores at their limit) read 936-942
    us resting, after an idle GPU and after 1.5 s of matmuls alike, where 0.2 s of settling rounds read 959-975 us
    and 1 s of them 985-1010 us (results/timing_stability_prefill_latest.md); in two runs of the example dataset it
    had read 981 and 1023 us settled, 935 and 935 us resting."""
    if call_wall_s < SETTLE_ABOVE_S:
        return 0.0
    return max(0.0, min(config.rest * call_wall_s, REST_MAX_S) - ahead_s)


def _prepare_device_loop(call, copies, warmup, reps, config: TimingConfig, device, check):
    """The warm-up calls, the host-ahead sleep's length, the rep count, the checked calls and, for CUPTI, the
    started profile: (profile or None, why not CUPTI or None, sleep cycles, reps, checked reps, warm-up host s,
    settling seconds, rest seconds after each call)."""
    cold = config.mode != "warm"
    cupti = config.mode == "cold"
    warm_host, warm_wall = [], []
    for i in range(warmup):
        t0 = _perf_counter()
        call(i % copies)
        t1 = _perf_counter()
        _synchronize(device)
        warm_host.append(t1 - t0)
        warm_wall.append(_perf_counter() - t0)
        if config.warmup is None and i + 1 >= FEWEST_WARMUP and sum(warm_wall) >= WARMUP_S:
            break
    if cold:
        l2_flush_buffer(device)  # allocated on first use: here, not inside the timed loop's exclusive hold
    # A launch that costs more host time than the GPU spends on the L2 flush would leave the GPU idle inside
    # the timed region, and the events would time the host (Triton's Python launcher: ~50 us on the GPU
    # machine; per-request PyTorch loops at batch 16-64 on the H200: 12-63 ms). A sleep kernel of 1.5x the
    # call's host time, uncapped, lets the host get ahead, so the device runs the call's work back to back as
    # it would behind a fast host; the host cost is recorded apart as host_overhead_us.
    sleeping = config.host_ahead and bool(warm_host)
    cycles_per_us = sleep_cycles_per_us(device) if sleeping else 0.0  # its calibration launches: before the profile
    profile, fallback = None, None
    if cupti:
        profile = ActivityProfile(0)  # its call count is set once the rep count is known, below
        try:
            profile.start()
        except Exception as e:  # no CUPTI, or a profile already running: the events below still time the calls
            profile, fallback = None, f"the profiler did not start: {type(e).__name__}: {e}"
    try:
        host_s = statistics.median(warm_host) if warm_host else 0.0
        if profile is not None and sleeping:
            # The profiler's own callbacks lengthen the host side of a call (tens of us per PyTorch op): a sleep
            # sized from unprofiled calls ends before the profiled call and the clone of its checked outputs are
            # enqueued, so work the call leaves running on a side stream finishes before the clone reads it, and
            # the race the checked calls exist to catch goes unseen (seen on the H200). Size it from profiled
            # calls too, made in the same profile as the timed loop.
            host_s = max(host_s, _profiled_host_s(profile, call, copies, min(3, warmup), device))
        ahead_us = host_ahead_us(host_s) if sleeping else 0.0
        ahead = int(ahead_us * cycles_per_us) if ahead_us else 0
        call_wall_s = statistics.median(warm_wall) if warm_wall else 0.0
        settle_s = settle_seconds(config, call_wall_s) if warm_wall else 0.0
        rest_s = rest_seconds(config, call_wall_s, ahead_us * 1e-6) if warm_wall else 0.0
        if config.reps is None and warm_wall:
            reps = bounded_reps(reps, ahead_us * 1e-6 + call_wall_s + rest_s, config.loop_s)
        if profile is not None:
            profile.calls = reps
        chosen = set(random.sample(range(reps), min(config.checked_calls, reps))) if check else set()
    except BaseException:
        if profile is not None:
            profile.abandon()
        raise
    return profile, fallback, ahead, reps, chosen, warm_host, settle_s, rest_s


def _time_graph(call, copies, warmup, reps, outputs_of, check):
    side = torch.cuda.Stream()
    side.wait_stream(_current_stream())
    host = []
    with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
        for i in range(max(warmup, 1)):
            t0 = _perf_counter()
            call(i % copies)
            host.append(_perf_counter() - t0)
    _current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = [call(i) for i in range(copies)]
    for i in range(copies):
        poison_(outputs_of(i))
    graph.replay()
    checked = [(i, _clone(captured[i])) for i in range(copies)] if check else []
    start, end = _new_event(), _new_event()
    samples = []
    replays = max(1, reps // copies)
    for _ in range(replays):
        _record(start)
        graph.replay()
        _record(end)
        _synchronize()
        samples.append(_elapsed_ms(start, end) / copies)
    # Host cost is that of an eager call (what a caller without graphs pays), measured during the warm-up.
    return summarize(samples, "cuda-graph", statistics.median(host) * 1e6), checked


def _time_wall(call, copies, warmup, reps, outputs_of, chosen):
    for i in range(warmup):
        call(i % copies)
    samples, checked = [], []
    for r in range(reps):
        i = r % copies
        _manual_seed(RANDOM_SEED + i)
        if r in chosen:
            poison_(outputs_of(i))
        t0 = _perf_counter()
        out = call(i)
        samples.append((_perf_counter() - t0) * 1e3)
        if r in chosen:
            checked.append((i, _clone(out)))
    # On the CPU the whole call is host time.
    return summarize(samples, "cpu-wall", statistics.median(samples) * 1e3), checked


def balanced_orders(n: int) -> List[List[int]]:
    """Orders of ``n`` implementations, one a repetition, in which each implementation runs right after each other
    one equally often (once over the n orders for even n, twice over 2n for odd n: a Williams design) and in each
    place equally often. Timed in turn, a kernel's time depends on the one before it: under the H200's power cap
    a kernel that follows a power-hungry one starts at a lower clock (results/diag_prefill_power_2026-12-04_h200.md).
    Rotating one order leaves every kernel the same predecessor."""
    first, low, high = [0], 1, n - 1
    while len(first) < n:
        first.append(low if len(first) % 2 else high)
        if len(first) % 2:
            high -= 1
        else:
            low += 1
    orders = [[(k + i) % n for k in first] for i in range(n)]
    return orders + [order[::-1] for order in orders] if n % 2 and n > 1 else orders


class ColdL2Timer:
    """Median CUDA-event time of ``fn(set)`` with the L2 flushed before each call and the input sets rotated,
    for benchmarks that compare several implementations of one shape.

    ``median_us_each`` times the functions in turn within each repetition, so that a drift of the GPU's clocks or
    of the machine reaches all of them alike, in orders where each follows each other one equally often
    (``balanced_orders``). Before each flush the GPU sleeps
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
        orders = balanced_orders(len(names))
        for i in range(reps):
            for n in (names[k] for k in orders[i % len(orders)]):
                begin, end = events[n][i]
                if self.ahead_cycles:
                    torch.cuda._sleep(self.ahead_cycles)
                self.flush_l2()
                begin.record()
                fns[n](sets[i % len(sets)])
                end.record()
        torch.cuda.synchronize()
        return {n: statistics.median(b.elapsed_time(e) for b, e in events[n]) * 1e3 for n in names}
