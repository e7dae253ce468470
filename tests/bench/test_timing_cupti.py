"""The CUPTI timer: device work attributed to the call that launched it, the harness's own work left out, a
fallback to CUDA events with its reason; the host-ahead sleep and the rep count for slow calls; clocks bound
before a solution can patch them."""

from __future__ import annotations

import time

import pytest
import torch

from kernelarena.bench import TimingConfig, quiet
from kernelarena.bench.device_activity import Activity, ActivityProfile, attribute, classify, union_ns
from kernelarena.bench.timing import (
    FEWEST_REPS,
    FEWEST_WARMUP,
    REST_MAX_S,
    SETTLE_ABOVE_S,
    SETTLE_S,
    TIMED_LOOP_S,
    bounded_reps,
    host_ahead_us,
    rest_seconds,
    settle_seconds,
    sleep_cycles_per_us,
    time_calls,
)

TOKEN = "t0"


def _window(name, start, end):
    return Activity(f"kernelarena::{name}", "annotation", start, end, 0, False)


def _launch(start, correlation):
    return Activity("cudaLaunchKernel", "launch", start, start + 5, correlation, False)


def _work(start, end, correlation, kind="kernel", name="k"):
    return Activity(name, kind, start, end, correlation, True)


def _two_calls():
    """Harness (flush) then call 0 (two kernels, serial), harness, call 1 (a copy overlapping a kernel)."""
    return [
        _window(f"harness::{TOKEN}::1", 0, 100), _launch(10, 1),
        _window(f"call::{TOKEN}::0", 200, 300), _launch(210, 2), _launch(250, 3),
        _window(f"harness::{TOKEN}::2", 400, 500), _launch(410, 4),
        _window(f"call::{TOKEN}::1", 600, 700), _launch(610, 5), _launch(620, 6),
        _work(1000, 1400, 1, name="fill_flush"),  # the flush: the harness's, left out
        _work(1400, 1410, 2), _work(1410, 1430, 3),
        _work(1500, 1900, 4, name="fill_flush"),
        _work(1900, 1940, 5), _work(1920, 1950, 6, kind="memcpy"),
        Activity(f"kernelarena::call::{TOKEN}::1", "annotation", 1900, 1950, 0, True),  # gpu_user_annotation
        Activity("Stream Sync", "other", 1950, 5000, 6, True),
    ]


def test_device_work_goes_to_the_call_that_launched_it():
    activity = attribute(_two_calls(), TOKEN, 2)
    assert activity.problem is None and activity.unattributed == 0
    assert activity.busy_us() == [0.03, 0.05]  # call 1's copy overlaps its kernel: the union, 50 ns
    assert activity.sum_us() == [0.03, 0.07]


def test_work_launched_outside_the_calls_makes_the_profile_unusable():
    events = _two_calls() + [_launch(800, 7), _work(2000, 2100, 7)]  # a thread launching after the call
    activity = attribute(events, TOKEN, 2)
    assert activity.unattributed == 1 and "launched outside the timed calls" in activity.problem


def test_a_call_without_device_work_makes_the_profile_unusable():
    events = [e for e in _two_calls() if e.correlation not in (5, 6)]
    assert "1 of 2 timed calls had no device activity" in attribute(events, TOKEN, 2).problem


def test_annotations_missing_or_repeated_make_the_profile_unusable():
    assert "1 of 3 calls' annotations missing" in attribute(_two_calls(), TOKEN, 3).problem
    forged = _two_calls() + [_window(f"call::{TOKEN}::0", 620, 630)]
    assert "recorded 2 times" in attribute(forged, TOKEN, 2).problem
    assert "missing" in attribute(_two_calls(), "another-token", 2).problem


def test_classify_reads_the_activity_type_or_else_the_name():
    assert classify("void gemm<...>", "kernel", True) == "kernel"
    assert classify("Memcpy DtoD (Device -> Device)", "gpu_memcpy", True) == "memcpy"
    assert classify("Memset (Device)", "gpu_memset", True) == "memset"
    assert classify("cudaLaunchKernel", "cuda_runtime", False) == "launch"
    assert classify("cuLaunchKernelEx", "cuda_driver", False) == "launch"
    assert classify("Context Sync", "cuda_sync", True) == "other"
    # torch without activity_type(): the name decides
    assert classify("void at::native::vectorized_elementwise_kernel<4>", None, True) == "kernel"
    assert classify("Memcpy HtoD (Pageable -> Device)", None, True) == "memcpy"
    assert classify("Memset (Device)", None, True) == "memset"
    assert classify("Stream Sync", None, True) == "other"
    assert classify("kernelarena::call::x::0", None, True) == "annotation"
    assert classify("cudaMemcpyAsync", None, False) == "launch"
    assert classify("aten::add", None, False) == "other"


def test_union_of_intervals():
    assert union_ns([]) == 0
    assert union_ns([(0, 10), (5, 20), (30, 40)]) == 30
    assert union_ns([(0, 100), (10, 20)]) == 100


def test_the_profiler_session_records_our_annotations_on_this_torch():
    # CPU activity only (no GPU here): the annotations come back, the calls have no device work.
    profile = ActivityProfile(2)
    profile.start(device_activity=False)
    for r in range(2):
        with profile.harness():
            pass
        with profile.call(r):
            sum(range(100))
    activity = profile.stop()
    assert activity.problem == "2 of 2 timed calls had no device activity in the profile", activity.problem


def test_the_profile_records_our_windows_and_not_each_pytorch_op():
    """A PyTorch solution's ops are not profiler events of their own: only our windows (and, on a GPU, CUPTI's
    launch and device records) are read back, so a call of many ops costs no more to profile than one."""
    profile = ActivityProfile(1)
    profile.start(device_activity=False)
    x = torch.ones(64)
    with profile.harness():
        x.zero_()
    with profile.call(0):
        for _ in range(50):
            x = x * 2 + 1
    activity = profile.stop()
    assert activity.events == 2, activity  # the harness window and the call window, none of the 150 ops


def test_a_users_running_profiler_is_left_alone():
    # Found on the H200: ours started inside a user's profile, and stopping ours stopped theirs.
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as theirs:
        with pytest.raises(RuntimeError, match="already running"):
            ActivityProfile(1).start(device_activity=False)
        sum(range(10))
    assert theirs.profiler is not None and theirs.events() is not None  # theirs stopped cleanly and kept its events


def test_host_ahead_has_no_cap_and_slow_calls_get_fewer_reps():
    assert host_ahead_us(63e-3) == pytest.approx(94_500.0)  # a per-request loop at batch 64: not capped
    assert host_ahead_us(1e-6) == 10.0
    assert bounded_reps(100, 50e-6) == 100  # fast calls keep the default
    assert bounded_reps(100, 0.04) == int(TIMED_LOOP_S / 0.04)
    assert bounded_reps(100, 10.0) == FEWEST_REPS
    assert bounded_reps(5, 10.0) == 5  # never above the count asked for
    assert bounded_reps(100, 0.01, loop_s=0.5) == 50  # a shorter budget asked for
    assert TimingConfig().loop_s == TIMED_LOOP_S
    with pytest.raises(ValueError, match="loop_s"):
        TimingConfig(loop_s=0)


def test_only_long_calls_settle_and_only_without_rest_unless_asked():
    assert settle_seconds(TimingConfig(), SETTLE_ABOVE_S) == 0.0  # resting by default: settling would heat the GPU
    assert settle_seconds(TimingConfig(rest=0), SETTLE_ABOVE_S) == SETTLE_S
    assert settle_seconds(TimingConfig(rest=0), SETTLE_ABOVE_S / 2) == 0.0  # over before the clocks move
    assert settle_seconds(TimingConfig(settle_s=0, rest=0), 1.0) == 0.0
    assert settle_seconds(TimingConfig(settle_s=0.05), 1.0) == 0.05
    with pytest.raises(ValueError, match="settle_s"):
        TimingConfig(settle_s=-1)


def test_a_timed_loop_waits_for_the_device_longer_than_any_default_loop_holds_it():
    # At 2 s, a lane behind the other lane's 2.5 s PyTorch prefill loop timed its own loop alongside it. Default
    # loops of calls up to 1 s a repetition (a 0.5 s call with its sleep ahead), settling or resting included, fit
    # the wait.
    for per_rep_s in (1e-4, 0.01, 0.05, 0.15, 0.5, 1.0):
        reps = bounded_reps(100, per_rep_s)
        assert reps * per_rep_s + max(SETTLE_S, reps * REST_MAX_S) < quiet.WAIT_S, per_rep_s


def test_a_clock_patched_after_import_does_not_change_cpu_timing(monkeypatch):
    # In a worker, solutions are imported after the timer: a patch there is the same as this one.
    real = time.perf_counter
    monkeypatch.setattr(time, "perf_counter", lambda: real() * 0.25)
    stats, _ = time_calls(lambda i: time.sleep(0.003), 1, "cpu", TimingConfig(warmup=0, reps=3), lambda i: (),
                          check=False)
    assert stats.median_ms >= 3.0, stats


# ------------------------------------------------------------------------------------------------ GPU
@pytest.fixture
def cuda():
    import torch

    return torch


def _tiny_call(torch):
    x = torch.ones(1024, device="cuda")
    y = torch.empty_like(x)
    return (lambda i: (torch.mul(x, 2.0, out=y),)), (lambda i: (y,)), y


@pytest.mark.gpu
def test_cold_timing_reads_cupti_and_checks_calls(cuda):
    call, outputs, _ = _tiny_call(cuda)
    cupti, checked = time_calls(call, 1, "cuda:0", TimingConfig(warmup=5, reps=50, mode="cold"), outputs)
    events, _ = time_calls(call, 1, "cuda:0", TimingConfig(warmup=5, reps=50, mode="events"), outputs)
    assert cupti.mode == "cupti-cold-l2" and cupti.fallback_reason is None, cupti
    assert events.mode == "cuda-events-cold-l2", events
    assert len(checked) == 3 and all(o[0].eq(2.0).all() for _, o in checked)
    # One tiny kernel: CUPTI reads its duration, the events add their own cost.
    assert 0 < cupti.median_ms < events.median_ms, (cupti, events)


@pytest.mark.gpu
def test_cold_timing_falls_back_to_events_with_its_reason(cuda):
    call, outputs, x = _tiny_call(cuda)
    from torch.profiler import ProfilerActivity, profile

    # A profile already running (a user profiling a run): ours stays out of it, the calls are timed by events,
    # and the user's profile ends cleanly.
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]):
        busy, _ = time_calls(call, 1, "cuda:0", TimingConfig(warmup=2, reps=10, mode="cold"), outputs)
    assert busy.mode == "cuda-events-cold-l2" and "already running" in busy.fallback_reason, busy
    view, _ = time_calls(lambda i: (x.view(-1),), 1, "cuda:0", TimingConfig(warmup=2, reps=10, mode="cold"),
                         lambda i: (), check=False)  # no device work at all: nothing for CUPTI to read
    assert view.mode == "cuda-events-cold-l2" and "no device activity" in view.fallback_reason, view


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["cold", "events"])
def test_a_host_bound_call_is_timed_by_its_device_work(cuda, mode):
    # 20 ms of host time per call, microseconds of device work: the uncapped sleep ahead keeps the device from
    # waiting for the host inside the timed region; the default rep count drops to fit TIMED_LOOP_S.
    x = cuda.ones(1024, device="cuda")

    def call(i):
        time.sleep(0.02)
        return (x.add_(0.0),)

    stats, _ = time_calls(call, 1, "cuda:0", TimingConfig(warmup=3, mode=mode), lambda i: (x,), check=False)
    assert stats.median_ms < 1.0, stats
    assert FEWEST_REPS <= stats.count < 100, stats
    assert stats.host_overhead_us >= 20_000, stats
    assert stats.rest_us is None, stats  # the 30 ms sleep ahead of each call leaves the device idle long enough


@pytest.mark.gpu
def test_a_slow_calls_loop_fits_its_budget_rests_included(cuda):
    x = cuda.ones(1024, device="cuda")
    cycles = int(5000 * sleep_cycles_per_us(cuda.device("cuda:0")))

    def call(i):  # 5 ms on the device, resting 5 ms after each timed call: about 10 ms a repetition
        cuda.cuda._sleep(cycles)
        return (x.add_(0.0),)

    started = time.perf_counter()
    stats, _ = time_calls(call, 1, "cuda:0", TimingConfig(warmup=2, mode="events", loop_s=0.5), lambda i: (x,),
                          check=False)
    took = time.perf_counter() - started
    assert stats.rest_us == pytest.approx(5000, rel=0.2), stats
    assert 35 <= stats.count <= 55, stats  # 100 if the rests were left out of the estimate
    assert took < 1.0, took


@pytest.mark.gpu
def test_a_slow_calls_default_warm_up_stops_after_its_budget(cuda):
    made = []
    x = cuda.ones(1024, device="cuda")
    cycles = int(150_000 * sleep_cycles_per_us(cuda.device("cuda:0")))

    def call(i):  # 150 ms on the device
        made.append(i)
        cuda.cuda._sleep(cycles)
        return (x.add_(0.0),)

    config = TimingConfig(mode="events", loop_s=0.5, rest=0, settle_s=0)  # default warm-up, the fewest timed calls
    stats, _ = time_calls(call, 1, "cuda:0", config, lambda i: (x,), check=False)
    assert stats.count == FEWEST_REPS
    assert len(made) == FEWEST_WARMUP + FEWEST_REPS, len(made)  # 10 warm-up calls without the budget
    made.clear()
    time_calls(call, 1, "cuda:0", TimingConfig(warmup=5, reps=2, mode="events", rest=0, settle_s=0),
               lambda i: (x,), check=False)
    assert len(made) == 5 + 2, len(made)  # a warm-up count asked for is kept


@pytest.mark.gpu
def test_a_long_call_runs_settling_rounds_before_its_timed_loop(cuda):
    made = []
    x = cuda.ones(1024, device="cuda")

    def call(i):  # 1 ms on the device: long enough to settle
        made.append(i)
        cuda.cuda._sleep(int(1000 * sleep_cycles_per_us(cuda.device("cuda:0"))))
        return (x.add_(0.0),)

    config = TimingConfig(warmup=2, reps=10, mode="events", settle_s=0.05)
    stats, _ = time_calls(call, 1, "cuda:0", config, lambda i: (x,), check=False)
    assert stats.count == 10
    assert len(made) >= 2 + 10 + 20, len(made)  # about 50 ms of 1 ms rounds before the 10 timed calls
    made.clear()
    time_calls(call, 1, "cuda:0", TimingConfig(warmup=2, reps=10, mode="events", settle_s=0), lambda i: (x,),
               check=False)
    assert len(made) == 12, len(made)


def test_only_long_calls_rest_and_resting_is_a_multiple_of_the_call():
    assert rest_seconds(TimingConfig(), SETTLE_ABOVE_S) == SETTLE_ABOVE_S  # resting by default, as long as the call
    assert rest_seconds(TimingConfig(rest=0), 1e-3) == 0.0
    assert rest_seconds(TimingConfig(rest=2.0), 0.01) == pytest.approx(0.02)
    assert rest_seconds(TimingConfig(), 0.5) == REST_MAX_S
    assert rest_seconds(TimingConfig(), SETTLE_ABOVE_S / 2) == 0.0  # too short to heat the GPU
    # The sleep ahead of the call idles the device too: it counts toward the rest.
    assert rest_seconds(TimingConfig(), 0.05, ahead_s=0.012) == pytest.approx(0.038)
    assert rest_seconds(TimingConfig(), 0.03, ahead_s=0.042) == 0.0  # host-bound: the sleep ahead is rest enough
    assert rest_seconds(TimingConfig(), 0.5, ahead_s=0.01) == pytest.approx(REST_MAX_S - 0.01)
    with pytest.raises(ValueError, match="rest"):
        TimingConfig(rest=-0.5)


@pytest.mark.gpu
def test_a_resting_loop_leaves_the_device_idle_between_timed_calls(cuda):
    x = cuda.ones(1024, device="cuda")
    cycles = int(1000 * sleep_cycles_per_us(cuda.device("cuda:0")))

    def call(i):  # 1 ms on the device
        cuda.cuda._sleep(cycles)
        return (x.add_(0.0),)

    def loop_s(rest):
        config = TimingConfig(warmup=2, reps=20, mode="events", settle_s=0, rest=rest)
        started = time.perf_counter()
        stats, _ = time_calls(call, 1, "cuda:0", config, lambda i: (x,), check=False)
        return time.perf_counter() - started, stats

    from kernelarena.bench import spent

    plain_s, plain = loop_s(0.0)
    spent.take()
    rested_s, rested = loop_s(2.0)
    assert spent.take().get("resting", 0.0) == pytest.approx(20 * 2e-3, rel=0.5)  # reported apart from the loop
    assert rested_s - plain_s > 20 * 2 * 0.8e-3, (plain_s, rested_s)  # about 2 ms idle after each of 20 calls
    assert rested.median_ms == pytest.approx(plain.median_ms, rel=0.2), (plain, rested)  # the call, not the rest
    assert plain.rest_us is None and rested.rest_us == pytest.approx(2000, rel=0.5), (plain, rested)  # in the trace


@pytest.mark.gpu
def test_a_loop_timed_without_the_device_lock_says_so(cuda, tmp_path, monkeypatch):
    from tests.bench.test_quiet import _holder

    call, outputs, _ = _tiny_call(cuda)
    path = quiet.make(str(tmp_path), "cuda:0")
    quiet.use(path)
    try:
        alone, _ = time_calls(call, 1, "cuda:0", TimingConfig(warmup=2, reps=10, mode="events"), outputs)
        assert alone.device_alone is True, alone
        # Short waits, so the test does not sit out the real ones: the warm-up's shared hold (START_WAIT_S)
        # would otherwise wait out the holder, and the timed loop would then have the device to itself.
        monkeypatch.setattr(quiet, "WAIT_S", 0.2)
        monkeypatch.setattr(quiet, "START_WAIT_S", 0.2)
        holder = _holder(path, True, 5.0)  # another process's timed loop holds the device
        try:
            crowded, _ = time_calls(call, 1, "cuda:0", TimingConfig(warmup=2, reps=10, mode="events"), outputs)
        finally:
            holder.terminate()
            holder.join()
        assert crowded.device_alone is False, crowded
    finally:
        quiet.use(None)
    unlocked, _ = time_calls(call, 1, "cuda:0", TimingConfig(warmup=2, reps=10, mode="events"), outputs)
    assert unlocked.device_alone is None, unlocked
