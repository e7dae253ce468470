"""A worker that cannot start (a device this machine lacks) gives RUNTIME_ERROR traces; run() refuses such a
device before any work."""

import pytest

from kernelarena.bench import RunConfig, TimingConfig, run
from kernelarena.bench.worker import DeviceWorkers
from tests.bench.cheats import make_dataset


def test_a_worker_that_cannot_start_is_recorded_not_fatal(tmp_path):
    ds = make_dataset(tmp_path / "ds", rows=4)
    config = RunConfig(devices=("cuda:7",), timeout_s=60, timing=TimingConfig(warmup=0, reps=1))
    results = []
    worker = DeviceWorkers("cuda:7", config, ds.root)  # past run()'s device check, as a device lost mid-run would be
    try:
        worker.evaluate(ds.definitions["scale_add"], ds.solutions["honest"], ds.workloads_for("scale_add"),
                        results.append)
    finally:
        worker.stop()
    (result,) = results
    assert result.trace.evaluation.status.value == "RUNTIME_ERROR"
    assert "worker process" in result.trace.evaluation.log
    with pytest.raises(ValueError, match="device 'cuda:7'"):
        run(ds, config, solutions=["honest"], save=False)


def test_spare_workers_scale_with_the_cores_to_start_them(monkeypatch):
    import os

    from kernelarena.bench.config import RunConfig, default_spare_workers

    for cores, spares in ((2, 3), (8, 4), (16, 8), (128, 8)):
        monkeypatch.setattr(os, "cpu_count", lambda: cores)
        assert default_spare_workers() == spares and RunConfig().spares() == spares
    assert RunConfig(spare_workers=1).spares() == 1
