"""A worker that cannot start (a device this machine lacks) gives RUNTIME_ERROR traces; the run completes."""

from kernelarena.bench import RunConfig, TimingConfig, run
from tests.bench.cheats import make_dataset


def test_a_worker_that_cannot_start_is_recorded_not_fatal(tmp_path):
    ds = make_dataset(tmp_path / "ds", rows=4)
    config = RunConfig(devices=("cuda:7",), timeout_s=60, timing=TimingConfig(warmup=0, reps=1))
    report = run(ds, config, solutions=["honest"], save=False)
    (trace,) = report.traces
    assert trace.evaluation.status.value == "RUNTIME_ERROR"
    assert "worker process" in trace.evaluation.log
