"""kernelarena run end to end on the CPU: every misbehaviour gets its status while the run completes."""

import subprocess
import sys

import pytest

from kernelarena.bench import RunConfig, TimingConfig, run
from kernelarena.store import TraceSet
from tests.bench.cheats import MISBEHAVIOURS, make_dataset


@pytest.fixture(scope="module")
def cheat_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cheats")
    ds = make_dataset(root)
    config = RunConfig(devices=("cpu",), timeout_s=20, timing=TimingConfig(warmup=1, reps=6))
    report = run(ds, config)
    return root, report


def test_every_misbehaviour_gets_its_status(cheat_run):
    root, report = cheat_run
    status = {t.solution: t.evaluation.status.value for t in report.traces}
    assert status["honest"] == "PASSED"
    wrong = {name: (status.get(name), expected) for name, (_, _, expected) in MISBEHAVIOURS.items()
             if status.get(name) != expected}
    assert not wrong, wrong


def test_failures_carry_useful_logs(cheat_run):
    _, report = cheat_run
    log = {t.solution: t.evaluation.log for t in report.traces}
    assert "kernel exploded" in log["raises"]
    assert "worker process died" in log["segfaults"]
    assert "timed out after 20 s" in log["hangs"]
    assert "wrote into its input 'x'" in log["overwrites_input"]
    assert "correct when checked, wrong when timed" in log["counts_calls"]
    assert "SyntaxError" in log["syntax_error"] or "invalid syntax" in log["syntax_error"]
    assert "shape (33, 3), expected (33, 64)" in log["wrong_shape"]


def test_passed_trace_has_figures_and_is_on_disk(cheat_run):
    root, report = cheat_run
    (honest,) = [t for t in report.traces if t.solution == "honest"]
    perf = honest.evaluation.performance
    assert perf.latency_ms > 0 and perf.reference_latency_ms > 0
    assert perf.speedup_factor == pytest.approx(perf.reference_latency_ms / perf.latency_ms)
    assert perf.solution_timing.count == 6 and perf.solution_timing.mode == "cpu-wall"
    assert honest.evaluation.correctness.extra["rounds"] == 3
    assert honest.evaluation.correctness.max_absolute_error < 1e-5
    on_disk = TraceSet.load(root)
    assert len(on_disk.traces_for("scale_add")) == len(MISBEHAVIOURS) + 1
    assert report.worker_restarts >= 2  # the segfault and the hang each cost a worker


def test_cli_run_prints_the_closing_table(tmp_path):
    make_dataset(tmp_path / "ds", rows=4)
    result = subprocess.run([sys.executable, "-m", "kernelarena.cli", "run", str(tmp_path / "ds"), "--solution",
                             "honest", "--solution", "raises", "--reps", "3", "--no-save"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kernelarena run: 2 traces" in result.stdout and "PASSED 1" in result.stdout
    assert "RUNTIME_ERROR 1" in result.stdout
    assert not (tmp_path / "ds" / "traces").exists()
