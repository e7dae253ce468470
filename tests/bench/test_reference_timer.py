"""The reference timer: a second reference process times each workload's reference while the judging one goes on
comparing. Its timing reaches the traces, its time is shown in the run's phases, and a reference that fails only
when timed is the definition's error, as it is without the timer."""

from __future__ import annotations

import pytest

from kernelarena.bench import RunConfig, TimingConfig, run
from kernelarena.store import TraceSet
from tests.bench.hostile.attacks import SCALE_ADD, honest_dataset

DEVICES = ["cpu", pytest.param("cuda:0", marks=pytest.mark.gpu)]

# Raises on its 30th call in a process. The judging process calls a reference a few times per workload (three
# rounds, a checked timed call's input copy); timing it takes 1 + 40 calls (the config below): it fails only
# when timed, in whichever process times it.
TIRES = """
import torch
CALLS = [0]
def run(x, w):
    CALLS[0] += 1
    if CALLS[0] >= 30:
        raise RuntimeError('the reference gave out when timed')
    return x * w + 1.0
"""


def _dataset(root, references) -> TraceSet:
    return honest_dataset(root, {name: (reference, [8, 16]) for name, reference in references.items()})


@pytest.mark.parametrize("device", DEVICES)
def test_the_reference_timer_times_the_reference_apart(tmp_path, device):
    ds = _dataset(tmp_path / "ds", {"scale_add": SCALE_ADD})
    config = RunConfig(devices=(device,), timeout_s=60, timing=TimingConfig(warmup=1, reps=3), reference_timer=True)
    report = run(ds, config)
    assert [t.evaluation.status.value for t in report.traces] == ["PASSED", "PASSED"]
    for trace in report.traces:
        performance = trace.evaluation.performance
        assert performance.reference_timing is not None and performance.reference_latency_ms > 0, performance
        assert performance.speedup_factor > 0
    assert report.phases["reference timing"] > 0  # the timer's own time, once per workload
    assert "reference: timing wait" in report.steps  # what a lane waited for it
    assert report.worker_restarts == 0


@pytest.mark.parametrize("timer", [True, False])
def test_a_reference_that_fails_only_when_timed_is_the_definitions_error(tmp_path, timer):
    """With the timer or without it (the judging process then times the reference itself), the same outcome: no
    trace for the solution on that workload, an error naming the definition and the workload, the other
    definition passed, no worker restarted."""
    ds = _dataset(tmp_path / "ds", {"scale_add": SCALE_ADD, "tires": TIRES})
    config = RunConfig(devices=("cpu",), timeout_s=60, timing=TimingConfig(warmup=1, reps=40),
                       reference_timer=timer)
    report = run(ds, config)
    assert sorted((t.solution, t.evaluation.status.value) for t in report.traces) == \
        [("scale_add_honest", "PASSED")] * 2
    errors = sorted((e.definition, e.workload) for e in report.definition_errors)
    assert errors == [("tires", "tires_w16"), ("tires", "tires_w8")]
    assert all("the reference gave out when timed" in e.message for e in report.definition_errors)
    assert not TraceSet.load(tmp_path / "ds").traces_for("tires")
    assert report.worker_restarts == 0


def _recording_reference(log) -> str:
    """SCALE_ADD that appends the id of the process calling it and that process's torch CPU threads to ``log``:
    which reference processes ran it, with how many threads."""
    return f"""
import os
import torch

def run(x, w):
    with open({str(log)!r}, "a") as f:
        f.write(f"{{os.getpid()}} {{torch.get_num_threads()}}\\n")
    return x * w + 1.0
"""


def _recorded(log) -> dict:
    """pid -> torch CPU threads, from a ``_recording_reference`` log."""
    return dict(tuple(map(int, line.split())) for line in log.read_text().splitlines())


@pytest.mark.parametrize("timer", [True, False])
def test_each_lane_is_judged_by_a_reference_process_of_its_own(tmp_path, timer):
    """Two lanes and three solutions of one definition: with the reference timer, each lane's comparisons run in
    a judging process of its own (two judges and the timer called the reference: three processes), and every
    trace of a workload still has the same reference timing; without the timer the judging process times the
    reference, and one judging process serves both lanes (one process called it), so that the speedups of all
    traces are against one timing."""
    log = tmp_path / "reference_pids.txt"
    ds = _dataset(tmp_path / "ds", {"scale_add": _recording_reference(log)})
    honest = ds.solutions["scale_add_honest"]
    for copy in ("second", "third"):
        ds.add_solution(honest.model_copy(update={"name": f"scale_add_{copy}"}))
    config = RunConfig(devices=("cpu",), timeout_s=60, timing=TimingConfig(warmup=1, reps=3), lanes=2,
                       reference_timer=timer)
    assert config.judges_for("cpu") == (2 if timer else 1)
    report = run(ds, config)
    assert sorted(t.evaluation.status.value for t in report.traces) == ["PASSED"] * 6
    assert len(_recorded(log)) == (3 if timer else 1)
    for workload in ("scale_add_w8", "scale_add_w16"):
        latencies = {t.evaluation.performance.reference_latency_ms for t in report.traces
                     if t.workload.uuid == workload}
        assert len(latencies) == 1 and latencies.pop() > 0
    assert report.worker_restarts == 0


@pytest.mark.parametrize("device", DEVICES)
def test_reference_processes_on_a_gpu_use_one_cpu_thread(tmp_path, device):
    """On a GPU the reference processes' host work is small (comparisons of outputs up to HOST_COMPARE_BYTES,
    messages): with torch's default of one CPU thread per core in each of several judging processes, their
    thread pools crowded the CPU the lanes' launches and timed loops need. On the CPU the reference computes on
    the host and keeps torch's default."""
    import torch

    log = tmp_path / "reference_threads.txt"
    ds = _dataset(tmp_path / "ds", {"scale_add": _recording_reference(log)})
    config = RunConfig(devices=(device,), timeout_s=60, timing=TimingConfig(warmup=1, reps=3), reference_timer=True)
    assert [t.evaluation.status.value for t in run(ds, config).traces] == ["PASSED", "PASSED"]
    threads = set(_recorded(log).values())
    assert threads == ({1} if device.startswith("cuda") else {torch.get_num_threads()})


@pytest.mark.parametrize("timer", [True, False])
@pytest.mark.parametrize("budget, sets", [(2 << 30, 4), (1, 1)])
def test_the_reference_is_timed_on_the_solutions_input_sets(tmp_path, timer, budget, sets):
    """Where the input sets are too large to rotate four (TimingConfig.input_copy_bytes), the solution's loop and
    the reference's rotate the same fewer sets: a speedup compares the same inputs (a MoE's work follows its
    routing; the reference's loop once rotated four sets against the solution's one)."""
    ds = _dataset(tmp_path / "ds", {"scale_add": SCALE_ADD})
    config = RunConfig(devices=("cpu",), timeout_s=60, reference_timer=timer,
                       timing=TimingConfig(warmup=1, reps=3, input_copy_bytes=budget))
    report = run(ds, config)
    assert [t.evaluation.status.value for t in report.traces] == ["PASSED", "PASSED"]
    for trace in report.traces:
        performance = trace.evaluation.performance
        assert performance.solution_timing.input_sets == sets
        assert performance.reference_timing.input_sets == sets
