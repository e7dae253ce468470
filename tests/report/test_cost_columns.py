"""The report tables show the host cost per call and the plan step's host time beside the device latency."""

from rich.console import Console

from kernelarena.bench.runner import RunReport
from kernelarena.report.tables import cost_cells, run_table, summary_table, traces_table
from kernelarena.schema import SpeedOfLight, Trace
from tests.bench.cheats import make_dataset


def _trace(solution: str, latency_ms: float, speedup: float, host_us, plan_us, status: str = "PASSED") -> Trace:
    evaluation = {"status": status, "timestamp": "2026-12-02T07:00:00Z",
                  "environment": {"hardware": "NVIDIA H200"}}
    if status == "PASSED":
        evaluation["correctness"] = {"max_absolute_error": 0.0}
        timing = {"median_ms": latency_ms, "mean_ms": latency_ms, "min_ms": latency_ms, "max_ms": latency_ms,
                  "p25_ms": latency_ms, "p75_ms": latency_ms, "count": 10, "mode": "cuda-events-cold-l2",
                  "host_overhead_us": host_us, "plan_host_us": plan_us}
        evaluation["performance"] = {"latency_ms": latency_ms, "reference_latency_ms": latency_ms * speedup,
                                     "speedup_factor": speedup, "solution_timing": timing}
    return Trace.model_validate({"definition": "scale_add", "solution": solution, "evaluation": evaluation,
                                 "workload": {"uuid": "w1", "axes": {"n": 33},
                                              "inputs": {"x": {"type": "random"}, "w": {"type": "random"}}}})


def _text(table) -> str:
    console = Console(width=400, record=True)
    console.print(table)
    return console.export_text()


def test_cost_cells_show_dashes_for_missing_figures():
    assert cost_cells(_trace("honest", 0.0125, 2.0, 7.25, 41.0)) == ("12.5", "7.2", "41.0", "-")
    assert cost_cells(_trace("honest", 0.0125, 2.0, 7.25, None)) == ("12.5", "7.2", "-", "-")
    assert cost_cells(_trace("raises", 0, 0, None, None, status="RUNTIME_ERROR")) == ("-", "-", "-", "-")


def test_summary_show_and_run_tables_carry_host_and_plan_columns(tmp_path):
    dataset = make_dataset(tmp_path)
    traces = [_trace("honest", 0.0125, 2.0, 7.25, 41.0), _trace("cached_output", 0.05, 0.5, 3.0, None)]
    dataset.add_traces(traces)
    summary = _text(summary_table(dataset))
    assert "host us" in summary and "plan us" in summary
    assert "12.5" in summary and "41.0" in summary  # the best trace's figures
    shown = _text(traces_table(dataset, "scale_add"))
    assert "7.2" in shown and "3.0" in shown and "cuda-events-cold-l2" in shown
    report = RunReport(traces=traces, wall_s=1.0)
    ran = _text(run_table(report))
    assert "host us" in ran and "12.5" in ran and "7.2" in ran


def test_summary_and_show_carry_the_share_of_the_speed_of_light(tmp_path):
    dataset = make_dataset(tmp_path)
    trace = _trace("honest", 0.0125, 2.0, 7.25, None)
    trace.evaluation.performance.speed_of_light = SpeedOfLight(bytes=4e6, ceiling_ms=0.001, fraction=0.08)
    assert cost_cells(trace)[3] == "8.0"
    dataset.add_traces([trace])
    for table in (summary_table(dataset), traces_table(dataset, "scale_add")):
        text = _text(table)
        assert "% SOL" in text and "8.0" in text
