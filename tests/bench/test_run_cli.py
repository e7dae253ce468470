"""kernelarena run as a newcomer sees it: progress, skips and reasons, exit codes, Ctrl-C, a failed save."""

import os
import signal
import subprocess
import sys
import time

import pytest

from kernelarena.store import TraceSet
from tests.bench.cheats import make_dataset
from tests.bench.test_schedule import solution

pytestmark = pytest.mark.slow  # each test starts the CLI and a worker process (15-30 s each on 2 busy cores)

SLEEPS = "import time\ndef run(x, w, y):\n    time.sleep(120)\n"


def kernelarena_run(root, *args, tmp=None, **kwargs):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if tmp is not None:
        env["TMPDIR"] = str(tmp)  # worker logs go here: the test can see whether they are cleaned up
    return subprocess.run([sys.executable, "-m", "kernelarena.cli", "run", str(root), *args], capture_output=True,
                          text=True, timeout=300, env=env, **kwargs)


def test_run_shows_skips_progress_and_reasons_and_fails_on_error(tmp_path):
    root = tmp_path / "ds"
    ds = make_dataset(root, rows=4)
    ds.add_solution(solution("gpu_only", "cuda", ["cuda"]))
    (root / "solutions" / "elementwise" / "scale_add" / "broken.json").write_text("{not json")
    trace_file = root / "traces" / "elementwise" / "scale_add.jsonl"
    trace_file.parent.mkdir(parents=True)
    trace_file.write_text('{"definition": "scale_add", "workl')  # a writer that stopped mid-line
    logs = tmp_path / "tmp"
    logs.mkdir()
    result = kernelarena_run(root, "--solution", "honest", "--solution", "raises", "--solution", "gpu_only",
                             "--reps", "1", "--rounds", "1", "--fail-on-error", tmp=logs)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "1 invalid records skipped" in out and "broken.json" in out
    assert "skipped            gpu_only: target_hardware ['cuda'] does not include cpu (1 workloads)" in out
    assert "[1/2" in out and "[2/2" in out  # progress on each line when the output is not a terminal
    assert any("PASSED" in line and "honest" in line and " us " in line for line in out.splitlines())
    assert any("RUNTIME_ERROR" in line and "raises" in line and "kernel exploded" in line for line in out.splitlines())
    assert "RUNTIME_ERROR x1:" in out and "1 solutions skipped" in out
    assert "1 of 2 traces did not pass" in out
    saved = TraceSet.load(root, strict=False)
    assert sorted(t.solution for t in saved.traces_for("scale_add")) == ["honest", "raises"]  # not gpu_only
    assert not list(logs.glob("kernelarena-worker-*"))
    # The reasons stay readable after the run; --resume leaves out what was traced here with these settings.
    show = subprocess.run([sys.executable, "-m", "kernelarena.cli", "show", str(root), "raises"], capture_output=True,
                          text=True, timeout=120)
    assert "RuntimeError: kernel exploded" in show.stdout, show.stdout
    resumed = kernelarena_run(root, "--solution", "honest", "--solution", "raises", "--reps", "1", "--rounds", "1",
                              "--resume")
    assert resumed.returncode == 0 and "--resume: 2 evaluations already traced" in resumed.stdout, resumed.stdout
    assert "kernelarena run: 0 traces" in resumed.stdout
    # --strict refuses the same dataset before any work; without --fail-on-error failures exit 0.
    strict = kernelarena_run(root, "--strict", "--solution", "honest")
    assert strict.returncode == 2 and "broken.json" in strict.stdout


def test_a_failed_append_stops_the_run_with_an_error(tmp_path):
    root = tmp_path / "ds"
    make_dataset(root, rows=4)
    (root / "traces" / "elementwise" / "scale_add.jsonl").mkdir(parents=True)  # appending to it fails
    result = kernelarena_run(root, "--solution", "honest", "--solution", "raises", "--reps", "1", "--rounds", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "could not append the trace of" in result.stdout and "the run stopped (0 traces saved" in result.stdout
    assert "traces appended" not in result.stdout


def test_ctrl_c_stops_the_run_and_says_what_was_saved(tmp_path):
    root = tmp_path / "ds"
    ds = make_dataset(root, rows=4)
    ds.add_solution(solution("zz_sleeps", "python", ["cpu"], SLEEPS))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "kernelarena.cli", "run", str(root), "--solution", "honest",
                                "--solution", "zz_sleeps", "--reps", "1", "--rounds", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    deadline = time.monotonic() + 200
    for line in process.stdout:
        lines.append(line)
        if "PASSED" in line and "honest" in line:
            break
        assert time.monotonic() < deadline, "".join(lines)
    time.sleep(1)  # the sleeper has started
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    out = "".join(lines) + rest
    assert process.returncode == 130, out
    assert "interrupted: 1 traces finished; 1 appended under" in out
    assert [t.solution for t in TraceSet.load(root).traces_for("scale_add")] == ["honest"]


def test_a_dataset_named_relative_to_the_working_folder_finds_its_blobs():
    """The reference and solution processes run in scratch folders: a relative dataset path must still reach
    the workload's safetensors blobs (RoPE's positions are one)."""
    from tests.conftest import ROOT

    result = kernelarena_run("examples/dataset", "--definition", "rope_with_cos_sin_cache_neox_style_d128_rd128",
                             "--solution", "rope_with_cos_sin_cache_neox_style_d128_rd128_pytorch", "--smallest",
                             "1", "--rounds", "1", "--reps", "1", "--no-save", "--fail-on-error", cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "could not be made" not in output and "PASSED" in output
