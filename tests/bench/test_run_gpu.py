"""GPU-only defenses: work hidden on another CUDA stream or a host thread is caught; graph timing works."""

import pytest

from kernelarena.bench import RunConfig, TimingConfig, run
from kernelarena.schema import Solution
from tests.bench.cheats import make_dataset

pytestmark = pytest.mark.gpu

SIDE_STREAM = """
import torch
_side = {}
def run(x, w, y):
    s = _side.setdefault("s", torch.cuda.Stream())
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(20):
            y.copy_(x * w + 1.0)
"""

SIDE_STREAM_WHEN_TIMED = """
import torch
_calls = [0]
_side = {}
def run(x, w, y):
    _calls[0] += 1
    if _calls[0] <= 3:
        y.copy_(x * w + 1.0)
        return
    s = _side.setdefault("s", torch.cuda.Stream())
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(20):
            y.copy_(x * w + 1.0)
"""


def _add(ds, name, source):
    ds.add_solution(Solution.model_validate({
        "name": name, "definition": "scale_add", "author": "tests",
        "spec": {"language": "python", "target_hardware": ["cuda"], "entry_point": "main.py::run"},
        "sources": [{"path": "main.py", "content": source}]}))


@pytest.mark.parametrize("mode", ["cold", "graph"])
def test_hidden_stream_work_is_caught_on_gpu(tmp_path, mode):
    ds = make_dataset(tmp_path, rows=1 << 16)
    _add(ds, "side_stream", SIDE_STREAM)
    _add(ds, "side_stream_when_timed", SIDE_STREAM_WHEN_TIMED)
    config = RunConfig(devices=("cuda:0",), timeout_s=120, timing=TimingConfig(warmup=3, reps=30, mode=mode))
    report = run(ds, config, solutions=["honest", "side_stream", "side_stream_when_timed", "counts_calls",
                                        "late_thread", "partial_write"])
    status = {t.solution: t.evaluation.status.value for t in report.traces}
    assert status["honest"] == "PASSED", report.traces
    for cheat in ("counts_calls", "late_thread", "partial_write"):
        assert status[cheat] == "INCORRECT_NUMERICAL", (cheat, status)
    # Unsynchronised side-stream writes race the correctness pass. Under events they are caught as wrong
    # output; in graph mode, when the pass happens to see the finished write, capturing the call fails instead
    # (the side stream forks the capture and never joins it), which fails the solution too.
    caught = {"INCORRECT_NUMERICAL"} if mode == "cold" else {"INCORRECT_NUMERICAL", "RUNTIME_ERROR"}
    assert status["side_stream"] in caught, status
    if mode == "cold":
        assert status["side_stream_when_timed"] == "INCORRECT_NUMERICAL", status
    honest = next(t for t in report.traces if t.solution == "honest")
    timing = honest.evaluation.performance.solution_timing
    assert timing.mode == ("cupti-cold-l2" if mode == "cold" else "cuda-graph"), timing
