"""A second run reuses the build cache: nothing is compiled again, in a new worker process."""

from kernelarena.bench import RunConfig, TimingConfig, run
from tests.bench.cheats import make_dataset


def test_second_run_compiles_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNELARENA_CACHE_DIR", str(tmp_path / "cache"))
    ds = make_dataset(tmp_path / "ds", rows=4)
    config = RunConfig(devices=("cpu",), timing=TimingConfig(warmup=0, reps=2), time_reference=False)
    first = run(ds, config, solutions=["honest"], save=False)
    second = run(ds, config, solutions=["honest"], save=False)
    assert [t.evaluation.status.value for t in first.traces + second.traces] == ["PASSED", "PASSED"]
    assert first.compiled_builds == 1
    assert second.compiled_builds == 0
    assert any((tmp_path / "cache").rglob("main.py"))
