import subprocess
import sys

from tests.store.test_traceset import plant_errors


def kernelarena(*args):
    return subprocess.run([sys.executable, "-m", "kernelarena.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_validate_and_summary_on_the_example_dataset(example_dataset):
    result = kernelarena("validate", example_dataset)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: 16 definitions" in result.stdout
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
