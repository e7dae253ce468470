"""The wall-time benchmark's run-to-run comparison: latencies read back from the traces a run appended."""

from benchmarks.isolation_walltime import read_latencies, spread_line
from kernelarena.schema import Correctness, Environment, Evaluation, Performance, Status, TimingStats, Trace, Workload


def trace(solution: str, uuid: str, latency_ms: float, reference_ms: float) -> Trace:
    timing = TimingStats(median_ms=latency_ms, mean_ms=latency_ms, min_ms=latency_ms, max_ms=latency_ms,
                         p25_ms=latency_ms, p75_ms=latency_ms, count=20, mode="cupti-cold-l2")
    return Trace(definition="d", workload=Workload(uuid=uuid, axes={}, inputs={}), solution=solution,
                 evaluation=Evaluation(status=Status.PASSED, environment=Environment(hardware="NVIDIA H200"),
                                       timestamp="2026-12-03T00:00:00+00:00", correctness=Correctness(),
                                       performance=Performance(
                                           latency_ms=latency_ms, reference_latency_ms=reference_ms,
                                           speedup_factor=reference_ms / latency_ms, solution_timing=timing)))


def failed(solution: str, uuid: str) -> Trace:
    return Trace(definition="d", workload=Workload(uuid=uuid, axes={}, inputs={}), solution=solution,
                 evaluation=Evaluation(status=Status.RUNTIME_ERROR, environment=Environment(hardware="NVIDIA H200"),
                                       timestamp="2026-12-03T00:00:00+00:00", log="boom"))


def write(folder, traces) -> None:
    (folder / "rmsnorm").mkdir(parents=True)
    (folder / "rmsnorm" / "d.jsonl").write_text("".join(t.model_dump_json() + "\n" for t in traces))


def test_latencies_of_passed_traces_and_their_spread(tmp_path):
    write(tmp_path / "a", [trace("fast", "w1", 0.100, 1.0), trace("slow", "w1", 50.0, 1.0),
                           trace("tiny", "w1", 0.0020, 1.0)])
    write(tmp_path / "b", [trace("fast", "w1", 0.103, 1.0), trace("slow", "w1", 60.0, 1.1),
                           trace("tiny", "w1", 0.0024, 1.0),
                           failed("broken", "w1")])
    a, b = read_latencies(tmp_path / "a"), read_latencies(tmp_path / "b")
    assert a == {"fast|w1": [0.1, 1.0], "slow|w1": [50.0, 1.0], "tiny|w1": [0.002, 1.0]}
    assert "broken|w1" not in b  # only PASSED traces are compared
    line = spread_line("isolated, --lanes=3", a, b)
    # fast 3.0%, slow 20.0%, tiny within 0.5 us of a 2 us call: 0; the reference moved 10% on one pair.
    assert "latency: median 3.0%, over 5% 1 of 3, worst 20.0% (slow)" in line, line
    assert "reference latency: median 0.0%, over 5% 1 of 3, worst 10.0% (slow)" in line, line
    assert "no PASSED pair" in spread_line("x", a, {})


def test_rounds_are_grouped_by_run_and_the_ratio_is_of_the_medians(capsys):
    import argparse

    from benchmarks.isolation_walltime import report

    def row(label, wall):
        return {"label": label, "wall_s": wall, "traces": 124, "summary": "", "spent": "", "latencies": {}}

    base, iso, lanes = "baseline: one worker per device", "isolated: reference process + fresh process per solution", \
        "isolated, --lanes=3"
    rows = [row(base, 60.0), row(iso, 72.0), row(lanes, 80.0),
            row(base, 50.0), row(iso, 65.0), row(lanes, 70.0),
            row(base, 70.0), row(iso, 75.0), row(lanes, 90.0)]
    args = argparse.Namespace(baseline="before", smallest=None, rounds=3, no_warm_up=True, out=None, definition=[])
    report(args, [], [], rows, [])
    out = capsys.readouterr().out
    # Medians: baseline 60, isolated 72, three lanes 80; one fast or slow baseline does not decide the ratio.
    assert "Isolated / baseline (medians of the rounds): **1.20x**" in out, out
    assert "Round by round: 1.20x, 1.30x, 1.07x." in out, out
    assert "isolated, --lanes=3 / baseline (medians of the rounds): 1.33x." in out, out
    assert out.count("isolated, --lanes=3 (round") == 3 and "isolated: reference process + fresh process per " \
        "solution (round 2) against the first isolated run" in out, out
    assert "Device lock" not in out  # no run sampled it
    rows[1]["lock"] = {"no lock file": 2.0, "free": 10.0, "shared": 25.0, "exclusive": 35.0}
    report(args, [], [], rows, [])
    assert "- isolated: reference process + fresh process per solution: device lock: exclusive 35.0 s, shared only " \
        "25.0 s, free 10.0 s, no lock file 2.0 s (of 72.0 s sampled)" in capsys.readouterr().out
