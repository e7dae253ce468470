"""Where a run's time went, step by step: the reference process's steps and turn waits, and the steps a
solution's process reports, shown in the run's closing line and never trusted beyond that."""

import subprocess
import sys
import time

import pytest

from kernelarena.bench import RunConfig, TimingConfig, run, spent
from kernelarena.report.tables import run_caption
from tests.bench.cheats import make_dataset


def test_a_nested_step_is_its_own_and_not_its_enclosing_steps():
    spent.take()
    with spent.timed("outer"):
        time.sleep(0.05)
        with spent.timed("inner"):
            time.sleep(0.1)
            spent.add("added", 0.03)
    steps = spent.take()
    assert set(steps) == {"outer", "inner", "added"}
    assert 0.045 <= steps["outer"] < 0.09, steps  # its own 0.05 s, not the inner 0.1 s
    assert 0.065 <= steps["inner"] < 0.12, steps  # 0.1 s less the 0.03 s added inside it
    assert steps["added"] == 0.03 and spent.take() == {}


def test_steps_from_another_process_are_kept_only_where_they_read_as_steps():
    assert spent.reported({"timed loop": 1.0, "warm-up": 0.5}, limit=2.0) == {"timed loop": 1.0, "warm-up": 0.5}
    for hostile in ({"timed loop": 3.0}, {"a": 1.5, "b": 1.5}, {"a": float("nan")}, {"a": -1.0}, {"a": True},
                    {"x" * 41: 1.0}, {f"s{i}": 0.01 for i in range(17)}, ["timed loop", 1.0], None, {1: 0.5}):
        assert spent.reported(hostile, limit=2.0) == {}, hostile


def test_a_run_reports_where_each_phase_went(tmp_path):
    ds = make_dataset(tmp_path / "ds", rows=4)
    report = run(ds, RunConfig(devices=("cpu",), timing=TimingConfig(warmup=1, reps=3)), solutions=["honest"],
                 save=False)
    assert [t.evaluation.status.value for t in report.traces] == ["PASSED"]
    steps = report.steps
    # The reference process's own steps and the lane's wait for its turn, inside the reference phase.
    assert {"reference: turn wait", "reference: reference outputs", "reference: comparison",
            "reference: timed loop"} <= set(steps), steps
    # Within the phase, up to the reading of two processes' clocks (milliseconds a request on a busy CPU).
    assert sum(v for k, v in steps.items() if k.startswith("reference: ")) <= report.phases["reference"] * 1.05 + 0.02
    # The solution's process reported its timing steps; each within its phase.
    assert {"timing: timed loop", "timing: inputs and plan"} <= set(steps), steps
    assert sum(v for k, v in steps.items() if k.startswith("timing: ")) <= report.phases["timing"] * 1.01
    # Phases stay what they were: the steps are apart, not added to them again.
    assert not any(": " in name for name in report.phases)
    caption = run_caption(report)
    assert "reference " in caption and "timing " in caption and "(" in caption, caption


def test_reference_processes_profile_their_requests_where_asked(tmp_path, monkeypatch):
    """KERNELARENA_PROFILE_DIR: each reference process writes a cProfile of its requests there, which names the
    judge's steps (what benchmarks/isolation_walltime.py --profile sums); unset, nothing is written."""
    import pstats

    from benchmarks.isolation_walltime import profile_summary

    ds = make_dataset(tmp_path / "ds", rows=4)
    config = RunConfig(devices=("cpu",), timing=TimingConfig(warmup=1, reps=3))
    monkeypatch.setenv("KERNELARENA_PROFILE_DIR", str(tmp_path / "profiles"))
    assert [t.evaluation.status.value for t in run(ds, config, solutions=["honest"], save=False).traces] == \
        ["PASSED"]
    files = list((tmp_path / "profiles").glob("reference-*.prof"))
    assert files
    functions = {name for _, _, name in pstats.Stats(*map(str, files)).stats}
    assert {"check_rounds", "verdict", "_compare_one"} <= functions
    summary = profile_summary(tmp_path / "profiles", "test")
    assert "oracle.py" in summary and "check_rounds" in summary
    monkeypatch.delenv("KERNELARENA_PROFILE_DIR")
    run(ds, config, solutions=["honest"], save=False)
    assert set((tmp_path / "profiles").iterdir()) == set(files)


_RELEASE_CHECK = """
import torch
from kernelarena.bench.child import RELEASE_ABOVE_BYTES, release_cache

def unused():  # cached by this process and not in use
    return torch.cuda.memory_reserved() - torch.cuda.memory_allocated()

small = torch.empty(64 << 20, dtype=torch.uint8, device="cuda")
del small  # 64 MB cached unused: kept for the next request
assert not release_cache("cuda:0", failed=False) and unused() >= 64 << 20, unused()
assert release_cache("cuda:0", failed=True) and unused() < 64 << 20, unused()  # after a failure: given back
large = torch.empty(RELEASE_ABOVE_BYTES + (1 << 20), dtype=torch.uint8, device="cuda")
del large
assert release_cache("cuda:0", failed=False) and unused() < 64 << 20, unused()
assert not release_cache("cpu", failed=True)
print("ok")
"""


@pytest.mark.gpu
def test_the_reference_process_gives_back_memory_it_holds_unused_only_past_the_limit():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (run on the GPU machine)")
    # In a process of its own, as a reference process is: in the test process, the free part of a segment that
    # other tests' tensors keep (1 GB after the bench tests on the H200, 2026-12-03) is cached unused that
    # empty_cache cannot give back, and served the test's own allocations.
    done = subprocess.run([sys.executable, "-c", _RELEASE_CHECK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr
