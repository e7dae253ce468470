"""The timer binds its clocks before a solution is imported: a solution that patches them at import (a clock
running at a quarter of real speed) is timed like its honest twin, through `kernelarena run`."""

from __future__ import annotations

import pytest

from kernelarena.bench import RunConfig, TimingConfig, run
from kernelarena.schema import Definition, Solution, Trace, Workload
from kernelarena.store import TraceSet
from tests.bench.hostile.attacks import SCALE_ADD_DEFINITION

# Each call waits at least SLEEP_S on the host (CPU) or the device (GPU), so its latency has a known floor.
SLEEP_S = 0.004
HONEST_CPU = f"""
import time, torch
def run(x, w, y):
    time.sleep({SLEEP_S})
    torch.addcmul(torch.ones_like(x), x, w.expand_as(x), out=y)
"""
# A clock at a quarter of real speed: every interval it brackets reads 4x shorter; the zero clock of
# attacks.patches_clock is caught by the speed-of-light check, this one would not be.
SLOW_CLOCK = """
_real = time.perf_counter
_origin = _real()
time.perf_counter = lambda: _origin + (_real() - _origin) * 0.25
time.perf_counter_ns = lambda: int((_origin + (_real() - _origin) * 0.25) * 1e9)
time.monotonic = time.perf_counter
"""
PATCHES_CPU_CLOCK = HONEST_CPU.replace("import time, torch\n", "import time, torch\n" + SLOW_CLOCK)
HONEST_GPU = f"""
import torch
_cycles = int({SLEEP_S} * 1e6 * 1000)  # at least SLEEP_S of device time at up to 1000 cycles per us
def run(x, w, y):
    torch.cuda._sleep(_cycles)
    torch.addcmul(torch.ones_like(x), x, w.expand_as(x), out=y)
"""
# The GPU clocks a solution can reach from Python: CUDA events' elapsed_time (the events timer) and the
# profiler's reading of its events (the CUPTI timer); both read 4x shorter.
PATCHES_GPU_CLOCK = HONEST_GPU.replace("import torch\n", """import time, torch
_elapsed = torch.cuda.Event.elapsed_time
torch.cuda.Event.elapsed_time = lambda self, end: _elapsed(self, end) * 0.25
try:
    import torch.autograd
    _kinds = [torch._C._autograd._KinetoEvent]
    for _kind in _kinds:
        _duration, _end = _kind.duration_ns, _kind.end_ns
        _kind.duration_ns = lambda self: _duration(self) // 4
        _kind.end_ns = lambda self: self.start_ns() + _duration(self) // 4
except (AttributeError, TypeError):  # a class that refuses new attributes is not patched
    pass
""" + SLOW_CLOCK)


def _dataset(root, honest: str, hostile: str, device: str) -> TraceSet:
    ds = TraceSet(root)
    ds.add_definition(Definition.model_validate(SCALE_ADD_DEFINITION))
    for name, source in (("honest_twin", honest), ("patches_clock_at_import", hostile)):
        ds.add_solution(Solution.model_validate({
            "name": name, "definition": "scale_add", "author": "tests",
            "spec": {"language": "python", "target_hardware": [device.split(":")[0]], "entry_point": "main.py::run",
                     "destination_passing_style": True},
            "sources": [{"path": "main.py", "content": source}]}))
    ds.add_workloads([Trace(definition="scale_add", workload=Workload(uuid="w", axes={"n": 33}, inputs={}))])
    return ds


def _latencies(tmp_path, honest: str, hostile: str, device: str, mode=None):
    ds = _dataset(tmp_path / "ds", honest, hostile, device)
    config = RunConfig(devices=(device,), timeout_s=120, time_reference=False,
                       timing=TimingConfig(warmup=2, reps=8, mode=mode))
    traces = {t.solution: t for t in run(ds, config, save=False).traces}
    for trace in traces.values():
        assert trace.evaluation.status.value == "PASSED", (trace.solution, trace.evaluation.log[-2000:])
    return {name: t.evaluation.performance.solution_timing for name, t in traces.items()}


def test_a_clock_patched_at_import_does_not_change_cpu_latency(tmp_path):
    timing = _latencies(tmp_path, HONEST_CPU, PATCHES_CPU_CLOCK, "cpu")
    hostile, honest = timing["patches_clock_at_import"], timing["honest_twin"]
    assert hostile.median_ms >= SLEEP_S * 1e3, hostile  # each call sleeps that long: a real clock sees it
    assert hostile.median_ms == pytest.approx(honest.median_ms, rel=0.5), (hostile, honest)


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["cold", "events"])
def test_gpu_clocks_patched_at_import_do_not_change_latency(tmp_path, mode):
    timing = _latencies(tmp_path, HONEST_GPU, PATCHES_GPU_CLOCK, "cuda:0", mode)
    hostile, honest = timing["patches_clock_at_import"], timing["honest_twin"]
    assert hostile.mode == honest.mode, (hostile, honest)
    # Same device work, same timer: within 20% (a 4x shorter reading is what the patch aims for).
    assert hostile.median_ms == pytest.approx(honest.median_ms, rel=0.2), (hostile, honest)
