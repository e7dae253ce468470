"""benchmarks/reproducibility.py: the pairing, spread rule, CUPTI accounting and report on synthetic traces, and a
tiny end-to-end run on the CPU (the GPU run is the script itself)."""

import re

import pytest

from benchmarks import reproducibility as repro
from kernelarena.schema import Trace


def _trace(solution: str, workload: str, latency_us: float, status: str = "PASSED", plan_us=None,
           alone=True) -> Trace:
    evaluation = {"status": status, "timestamp": "2026-12-02T07:00:00Z", "environment": {"hardware": "H200"}}
    if status == "PASSED":
        ms = latency_us / 1e3
        evaluation["correctness"] = {"max_absolute_error": 0.0}
        evaluation["performance"] = {"latency_ms": ms, "solution_timing": {
            "median_ms": ms, "mean_ms": ms, "min_ms": ms, "max_ms": ms, "p25_ms": ms, "p75_ms": ms, "count": 5,
            "mode": "cuda-events-cold-l2", "host_overhead_us": 6.0, "plan_host_us": plan_us,
            "device_alone": alone}}
    return Trace.model_validate({"definition": "d", "solution": solution, "evaluation": evaluation,
                                 "workload": {"uuid": workload, "axes": {"batch_size": 4}, "inputs": {}}})


def test_spread_is_relative_with_an_absolute_allowance_under_10_us():
    assert repro.pair_spread(100.0, 103.0) == pytest.approx(0.03)
    assert repro.pair_spread(103.0, 100.0) == pytest.approx(0.03)
    assert repro.pair_spread(4.0, 4.4) == 0.0  # under 10 us and within 0.5 us
    assert repro.pair_spread(4.0, 5.0) == pytest.approx(0.25)  # under 10 us but 1 us apart
    assert repro.pair_spread(20.0, 20.4) == pytest.approx(0.02)  # the allowance is for small pairs only
    assert repro.pair_spread(None, 3.0) is None


def test_runs_pair_by_solution_and_workload_and_failures_stay_out_of_the_maximum():
    first = [_trace("a", "w1", 100.0, plan_us=40.0), _trace("a", "w2", 200.0), _trace("b", "w1", 50.0),
             _trace("c", "w1", 10.0)]
    second = [_trace("a", "w2", 210.0), _trace("a", "w1", 101.0), _trace("b", "w1", 0, status="RUNTIME_ERROR")]
    pairs = repro.compare_runs(first, second)
    by_key = {(p.solution, p.workload): p for p in pairs}
    assert [(p.solution, p.workload) for p in pairs] == [("a", "w1"), ("a", "w2"), ("b", "w1"), ("c", "w1")]
    assert by_key["a", "w1"].plan_us == 40.0 and by_key["a", "w1"].host_us == 6.0
    assert by_key["b", "w1"].status == "PASSED/RUNTIME_ERROR" and by_key["b", "w1"].spread is None
    assert by_key["c", "w1"].status == "PASSED/missing"
    assert repro.max_spread(pairs) == pytest.approx(0.05)  # a/w2: 10 us over 200


def test_report_ends_with_the_max_spread_line_and_gives_cupti_ratios():
    pairs = repro.compare_runs([_trace("a", "w1", 100.0), _trace("a", "w2", 30.0)],
                               [_trace("a", "w1", 102.0), _trace("a", "w2", 30.0)])
    text = repro.format_report(pairs, {("d", "a", "w1"): 80.0}, ["# title"])
    assert text.splitlines()[-1] == "max spread 2.0%"
    assert "| 80.0 | 1.250 |" in text  # 100 us by events over 80 us of kernels
    assert "under 10 us counts as 0 when it differs by at most 0.5 us" in text
    assert "0 of 1 traces within 5%" in text


def test_report_names_the_pairs_timed_without_the_device_lock():
    pairs = repro.compare_runs([_trace("a", "w1", 100.0), _trace("b", "w1", 30.0, alone=False)],
                               [_trace("a", "w1", 100.0), _trace("b", "w1", 30.0)])
    assert [p.not_alone for p in pairs] == [0, 1]
    assert "Timed without the device lock (another process of the run may have used the GPU): 1 pairs; b at " \
        "batch_size=4." in repro.format_report(pairs, {}, ["# title"])


def test_machine_slug():
    assert repro.machine_slug("NVIDIA H200") == "nvidia_h200"
    assert repro.machine_slug("cpu") == "cpu"


def test_tiny_cpu_run_writes_the_report(tmp_path):
    path = repro.main(["--device", "cpu", "--definitions", "rmsnorm_h4096", "--solutions", "rmsnorm_h4096_pytorch",
                       "--smallest", "1", "--reps", "3", "--out", str(tmp_path)])
    assert path == tmp_path / "reproducibility_cpu.md"
    lines = path.read_text().splitlines()
    assert re.fullmatch(r"max spread \d+\.\d%", lines[-1])
    assert any("rmsnorm_h4096_pytorch" in line and "cpu-wall" in line for line in lines)
    assert (tmp_path / "reproducibility_cpu.json").exists()
    table = (tmp_path / "reproducibility.md").read_text()
    assert any(line.startswith("| cpu |") and "rmsnorm_h4096_pytorch" in line and "cpu-wall" in line
               for line in table.splitlines())


def test_split_runs_merge_into_one_report_with_one_max_spread_line(tmp_path):
    """A dataset too big for one GPU call is run in parts (--definitions, --tag); --merge makes the one file whose
    last line is the max spread over every part."""
    def write(name, machine, first, second, cupti):
        path = tmp_path / name
        repro.write_figures(path, machine, repro.compare_runs(first, second),
                            {("d", *key): us for key, us in cupti.items()})
        return path

    a = write("a.json", "NVIDIA H200", [_trace("a", "w1", 100.0)], [_trace("a", "w1", 101.0)], {("a", "w1"): 100.0})
    b = write("b.json", "NVIDIA H200", [_trace("b", "w1", 50.0), _trace("b", "w2", 80.0)],
              [_trace("b", "w1", 52.0), _trace("b", "w2", 80.0)], {("b", "w1"): 50.0, ("b", "w2"): 70.0})
    path = repro.main(["--merge", str(a), str(b), "--out", str(tmp_path / "out"), "--note", "Part a is older."])
    text = path.read_text()
    assert "(each file says how its runs were made). Part a is older." in text
    assert path.name == "reproducibility_nvidia_h200_merged.md"
    assert text.splitlines()[-1] == "max spread 4.0%"  # b/w1, from the second file
    assert "3 pairs passed in both runs, 0 did not." in text and "`a.json`, `b.json`" in text
    assert "2 of 3 traces within 5%" in text  # b/w2: 80 us over 70 us of kernels
    other = write("c.json", "NVIDIA H100", [_trace("c", "w1", 10.0)], [_trace("c", "w1", 10.0)], {})
    with pytest.raises(ValueError, match="c.json: measured on NVIDIA H100"):
        repro.merge([a, other], tmp_path)


def _one_pair_json(tmp_path):
    """A result JSON of one passed pair of the example dataset: rmsnorm_h4096_pytorch at its smallest workload."""
    from kernelarena.store import TraceSet

    dataset = TraceSet.load(repro.ROOT / "examples" / "dataset", strict=True)
    workload = min(dataset.workloads["rmsnorm_h4096"], key=lambda w: w.workload.axes["batch_size"]).workload
    trace = _trace("rmsnorm_h4096_pytorch", workload.uuid, 5.0).model_copy(update={"definition": "rmsnorm_h4096"})
    path = tmp_path / "part.json"
    repro.write_figures(path, "NVIDIA H200", repro.compare_runs([trace], [trace]), {})
    return path, workload


def test_recupti_needs_a_gpu(tmp_path, capsys):
    path, _ = _one_pair_json(tmp_path)
    with pytest.raises(SystemExit):
        repro.main(["--recupti", str(path), "--device", "cpu", "--out", str(tmp_path)])
    assert "--recupti needs a GPU (CUPTI)" in capsys.readouterr().err


@pytest.mark.gpu
def test_recupti_takes_the_cupti_figures_again(tmp_path):
    """The pair's figures stay, its CUPTI figure is taken (none before), in a report of its own."""
    path, workload = _one_pair_json(tmp_path)
    out = repro.main(["--recupti", str(path), "--device", "cuda:0", "--cupti-calls", "5", "--out",
                      str(tmp_path / "out"), "--tag", "_again"])
    assert out.name == "reproducibility_nvidia_h200_again.md"
    _, pairs, cupti = repro.load_pairs(out.with_suffix(".json"))
    assert [(p.solution, p.first_us) for p in pairs] == [("rmsnorm_h4096_pytorch", 5.0)]
    assert 0 < cupti[("rmsnorm_h4096", "rmsnorm_h4096_pytorch", workload.uuid)] < 1000
    assert "the sleep ahead before each call" in out.read_text()
