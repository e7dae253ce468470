import subprocess
import sys

import pytest

from tests.store.test_traceset import plant_errors


def kernelarena(*args):
    return subprocess.run([sys.executable, "-m", "kernelarena.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_validate_and_summary_on_the_example_dataset(example_dataset):
    result = kernelarena("validate", example_dataset)
    assert result.returncode == 0, result.stdout + result.stderr
    files = len(list((example_dataset / "definitions").rglob("*.json")))
    assert f"ok: {files} definitions" in result.stdout
    result = kernelarena("summary", example_dataset)
    assert result.returncode == 0 and "gqa_paged_decode_h32_kv8_d128_ps16" in result.stdout


def test_validate_lists_every_planted_error(dataset_copy):
    expected = plant_errors(dataset_copy)
    result = kernelarena("validate", dataset_copy)
    assert result.returncode == 1
    for where, what in expected.items():
        assert any(where in line and what in line for line in result.stdout.splitlines()), (where, what, result.stdout)
    assert f"{len(expected)} problems" in result.stdout


def test_show_prints_a_record_or_says_it_is_missing(example_dataset):
    result = kernelarena("show", "rmsnorm_h4096", "--dataset", example_dataset)
    assert result.returncode == 0 and '"op_type": "rmsnorm"' in result.stdout
    result = kernelarena("show", "nothing_like_it", "--dataset", example_dataset)
    assert result.returncode == 1 and "no definition, solution or workload called 'nothing_like_it'" in result.stdout


def test_missing_dataset_is_a_clear_error(tmp_path):
    result = kernelarena("validate", tmp_path / "absent")
    assert result.returncode == 2 and "dataset folder does not exist" in result.stdout


def test_show_lists_the_traces_of_a_record(dataset_copy):
    from kernelarena.store import TraceSet
    from tests.store.test_traceset import trace

    ds = TraceSet.load(dataset_copy)
    w = ds.workloads_for("rmsnorm_h4096")[0]
    ds.add_traces([trace("rmsnorm_h4096", w, "rmsnorm_h4096_pytorch", 0.25)])
    result = kernelarena("show", "rmsnorm_h4096_pytorch", "--dataset", dataset_copy)
    assert result.returncode == 0 and "1 traces mention rmsnorm_h4096_pytorch" in result.stdout
    assert "250.0" in result.stdout and "PASSED" in result.stdout


def invoke(*args):
    """The CLI in this process (option checks and small commands; no worker is started)."""
    from typer.testing import CliRunner

    from kernelarena.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("options, message", [
    (["--devices", "cuda:0"], "no CUDA GPU is visible"), (["--devices", "tpu"], "expected cpu, cuda or cuda:N"),
    (["--reps", "0"], "--reps"), (["--timeout", "-5"], "--timeout -5.0: must be more than 0"),
    (["--atol", "-1", "--rtol", "-1"], "--atol"), (["--smallest", "-1"], "--smallest"),
    (["--rounds", "0"], "--rounds"), (["--atol", "1"], "give --atol and --rtol together"),
    (["--timing", "hot"], "--timing is cold, events, warm or graph")])
def test_run_options_are_checked_before_any_work(example_dataset, options, message):
    import torch

    if "cuda:0" in options and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = invoke("run", example_dataset, "--no-save", *options)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.replace("│", " ").split()), result.output


def test_version_comes_from_the_package_metadata():
    from importlib.metadata import version

    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"kernelarena {version('kernelarena')}"


def test_show_takes_the_dataset_as_a_path_or_with_d(example_dataset):
    positional = invoke("show", example_dataset, "rmsnorm_h4096")
    assert positional.exit_code == 0 and '"op_type": "rmsnorm"' in positional.output
    assert invoke("show", "rmsnorm_h4096", "-d", example_dataset).output == positional.output
    missing = invoke("show", "rmsnorm_h4096")
    assert missing.exit_code == 2 and "give the dataset folder" in missing.output


def test_summary_and_apply_table_count_this_machines_traces_unless_told(dataset_copy):
    from kernelarena.bench.environment import local_hardware
    from kernelarena.store import TraceSet
    from tests.store.test_traceset import trace

    ds = TraceSet.load(dataset_copy)
    w = ds.workloads_for("rmsnorm_h4096")[0]
    gpu = trace("rmsnorm_h4096", w, "rmsnorm_h4096_pytorch", 0.25)
    gpu.evaluation.environment.hardware = "NVIDIA H100 80GB HBM3"
    ds.add_traces([gpu])
    here = invoke("summary", dataset_copy)
    assert here.exit_code == 0 and f"traces of {local_hardware()}" in here.output and "4.00x" not in here.output
    there = invoke("summary", dataset_copy, "--hardware", "NVIDIA H100 80GB HBM3")
    assert "4.00x" in there.output and "rmsnorm_h4096_pytorch" in there.output
    assert "4.00x" in invoke("summary", dataset_copy, "--hardware", "any").output
    table = invoke("apply-table", dataset_copy, "--definition", "rmsnorm_h4096")
    assert "rmsnorm_h4096_pytorch" not in table.output
    table = invoke("apply-table", dataset_copy, "--definition", "rmsnorm_h4096", "--hardware", "NVIDIA H100 80GB HBM3")
    assert "rmsnorm_h4096_pytorch" in table.output, table.output
