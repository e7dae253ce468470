"""The hostile suite through `kernelarena run`: every attack on the harness is caught, the honest controls
pass first and last, and nothing is lost or forged. Runs on the CPU in CI and on a GPU where one exists."""

from __future__ import annotations

import json
import os

import pytest

from kernelarena.bench import RunConfig, TimingConfig, run
from kernelarena.store import TraceSet
from tests.bench.hostile.attacks import ATTACKS, CONTROLS, SCALE_ADD, honest_dataset, make_hostile_dataset

DEVICES = ["cpu", pytest.param("cuda:0", marks=pytest.mark.gpu)]


def _file_bytes(root, folder):
    return {p: p.read_bytes() for p in sorted((root / folder).rglob("*")) if p.is_file() and not p.name.startswith(".")}


@pytest.fixture(scope="module", params=DEVICES)
def hostile_run(request, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"hostile-{request.param.replace(':', '')}")
    root, workdir, marker = base / "dataset", base / "workdir", base / "pickle-ran"
    workdir.mkdir()
    make_hostile_dataset(root, workdir, marker)
    definitions_before = _file_bytes(root, "definitions")
    solutions_before = _file_bytes(root, "solutions")
    # Two lanes: each hostile solution evaluated while another runs beside it on the same device, the reference
    # timed by a reference process of its own (both the GPU's defaults; on the CPU chosen here so that CI
    # attacks the concurrent path too).
    config = RunConfig(devices=(request.param,), timeout_s=60, timing=TimingConfig(warmup=1, reps=6), lanes=2,
                       reference_timer=True)
    started = []
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        report = run(TraceSet.load(root), config, on_start=lambda d, s, n: started.append(s.name))
    finally:
        os.chdir(cwd)
    return dict(root=root, workdir=workdir, marker=marker, report=report, definitions=definitions_before,
                config=config, started=started,
                solutions=solutions_before, status={t.solution: t.evaluation.status.value for t in report.traces},
                traces={t.solution: t for t in report.traces},
                protections=next(t for t in report.traces
                                 if t.solution == "aaa_honest_first").evaluation.environment.sandbox)


def test_controls_pass_first_and_last(hostile_run):
    status = hostile_run["status"]
    for name in CONTROLS:
        assert status[name] == "PASSED", (name, hostile_run["traces"][name].evaluation.log)
    order = [name for name in hostile_run["started"] if name in hostile_run["status"]
             and hostile_run["traces"][name].definition == "scale_add"]
    assert order[0] == "aaa_honest_first" and order[-1] == "zzz_honest_last"


def test_every_attack_is_caught(hostile_run):
    status, protections = hostile_run["status"], hostile_run["protections"]
    expected = {name: want for name, (_, _, want, _) in ATTACKS.items()}
    if not protections["seccomp"].startswith("active"):
        expected["opens_socket"] = "RUNTIME_ERROR"  # the network cannot be cut here: the solution says so
    wrong = {name: (status.get(name), want, hostile_run["traces"][name].evaluation.log[-600:]
                    if name in hostile_run["traces"] else "no trace")
             for name, want in expected.items() if status.get(name) != want}
    assert not wrong, wrong


def test_reference_timing_cannot_be_slowed(hostile_run):
    traces = hostile_run["traces"]
    slowed = traces["slows_reference"].evaluation.performance
    honest = traces["aaa_honest_first"].evaluation.performance
    # The patch adds 20 ms to every multiply in the solution's process; the reference runs elsewhere.
    assert slowed.reference_latency_ms < 10.0, slowed
    assert slowed.speedup_factor < 20 * max(honest.speedup_factor, 1.0)


def test_neighbours_do_not_leak(hostile_run):
    status = hostile_run["status"]
    assert status["reads_state"] == "PASSED"
    assert status["patches_silu"] == "INCORRECT_NUMERICAL"
    assert status["aaa_honest_silu_first"] == status["zzz_honest_silu_last"] == "PASSED"


def test_dataset_files_are_read_only_to_solutions(hostile_run):
    if not hostile_run["protections"]["landlock"].startswith("active"):
        pytest.skip(f"Landlock not active here: {hostile_run['protections']['landlock']}")
    root = hostile_run["root"]
    assert _file_bytes(root, "definitions") == hostile_run["definitions"]
    assert _file_bytes(root, "solutions") == hostile_run["solutions"]
    on_disk = [json.loads(line) for f in (root / "traces").rglob("*.jsonl") for line in f.read_text().splitlines()]
    assert len(on_disk) == len(hostile_run["report"].traces)  # nothing lost, nothing forged
    assert not [t for t in on_disk if (t["evaluation"].get("performance") or {}).get("speedup_factor") == 1000.0]
    assert not list(hostile_run["workdir"].iterdir())  # no torch.py / numpy.py planted where the run started


def test_every_trace_is_on_disk_and_records_its_protections(hostile_run):
    report = hostile_run["report"]
    assert len(report.traces) == len(ATTACKS) + len(CONTROLS)
    loaded = TraceSet.load(hostile_run["root"])
    assert sum(len(loaded.traces_for(d)) for d in ("scale_add", "silu_mul")) == len(report.traces)
    for trace in report.traces:
        protections = trace.evaluation.environment.sandbox
        assert protections and {"landlock", "seccomp", "process"} <= set(protections), trace.solution
        assert protections["process"] == "fresh"


def test_parent_never_unpickles_solution_messages(hostile_run):
    assert not hostile_run["marker"].exists()
    assert "protocol" in hostile_run["traces"]["pickles_to_parent"].evaluation.log


def test_a_payload_file_is_read_only_where_the_solution_may_write_it(hostile_run):
    log = hostile_run["traces"]["payload_is_a_link"].evaluation.log
    assert "payload file payload-rounds.pt of the solution process could not be opened" in log, log


def test_impossible_speed_fails_with_a_clear_log(hostile_run):
    log = hostile_run["traces"]["impossibly_fast"].evaluation.log
    assert "speed of light" in log, log
    honest = hostile_run["traces"]["aaa_honest_first"].evaluation.performance.speed_of_light
    assert honest is not None and honest.bytes == 33 * 64 * 4 * 2 + 64 * 4 and 0 < honest.fraction < 1.0


def test_a_clock_stopped_at_import_does_not_stop_the_timer(hostile_run):
    # tests/bench/hostile/test_timer_hardening.py compares a subtler patch (a slow clock) with an honest twin.
    stopped = hostile_run["traces"]["patches_clock"].evaluation.performance.solution_timing
    honest = hostile_run["traces"]["aaa_honest_first"].evaluation.performance.solution_timing
    assert stopped.median_ms > 0 and stopped.mode == honest.mode, (stopped, honest)


def test_summary_clock_is_the_parents(hostile_run):
    report = hostile_run["report"]
    assert report.wall_s > 0
    assert all(seconds >= 0 for seconds in report.phases.values()), report.phases
    lanes = hostile_run["config"].lanes
    # The lanes' phases are lane time; the reference timer's own is one process's beside them.
    timer = report.phases.get("reference timing", 0.0)
    assert lanes == 2 and sum(report.phases.values()) - timer <= report.wall_s * lanes * 1.05, \
        (report.phases, report.wall_s)
    assert 0 < timer <= report.wall_s * 1.05, (report.phases, report.wall_s)


@pytest.mark.parametrize("device", DEVICES)
def test_definition_side_failures_are_reported_against_the_definition(tmp_path, device):
    broken = "import torch\ndef run(x, w):\n    raise ValueError('reference is broken')\n"
    # too_big: 4 PiB of x, no device can allocate it
    ds = honest_dataset(tmp_path / "ds", {"scale_add": (SCALE_ADD, [8]), "reference_raises": (broken, [8]),
                                          "too_big": (SCALE_ADD, [1 << 44])})
    config = RunConfig(devices=(device,), timeout_s=60, timing=TimingConfig(warmup=1, reps=3))
    report = run(ds, config)
    assert [(t.solution, t.evaluation.status.value) for t in report.traces] == [("scale_add_honest", "PASSED")]
    errors = {e.definition: e for e in report.definition_errors}
    assert set(errors) == {"reference_raises", "too_big"}
    assert "reference is broken" in errors["reference_raises"].message
    assert errors["reference_raises"].workload == "reference_raises_w8"
    assert "memory" in errors["too_big"].message.lower() or "alloc" in errors["too_big"].message.lower()
    assert report.worker_restarts == 0
    assert not TraceSet.load(tmp_path / "ds").traces_for("reference_raises")
