"""A worker that cannot start (a device this machine lacks) gives RUNTIME_ERROR traces; run() refuses such a
device before any work."""

import pytest

from kernelarena.bench import RunConfig, TimingConfig, run
from kernelarena.bench.worker import DeviceWorkers
from tests.bench.cheats import make_dataset


def test_a_worker_that_cannot_start_is_recorded_not_fatal(tmp_path):
    ds = make_dataset(tmp_path / "ds", rows=4)
    config = RunConfig(devices=("cuda:7",), timeout_s=60, timing=TimingConfig(warmup=0, reps=1))
    results = []
    worker = DeviceWorkers("cuda:7", config, ds.root)  # past run()'s device check, as a device lost mid-run would be
    try:
        worker.evaluate(ds.definitions["scale_add"], ds.solutions["honest"], ds.workloads_for("scale_add"),
                        results.append)
    finally:
        worker.stop()
    (result,) = results
    assert result.trace.evaluation.status.value == "RUNTIME_ERROR"
    assert "worker process" in result.trace.evaluation.log
    with pytest.raises(ValueError, match="device 'cuda:7'"):
        run(ds, config, solutions=["honest"], save=False)


def test_spare_workers_scale_with_the_cores_to_start_them(monkeypatch):
    import os

    from kernelarena.bench.config import RunConfig, default_spare_workers

    for cores, spares in ((2, 3), (8, 4), (16, 8), (128, 8)):
        monkeypatch.setattr(os, "cpu_count", lambda: cores)
        assert default_spare_workers() == spares and RunConfig().spares() == spares
    assert RunConfig(spare_workers=1).spares() == 1


def test_pool_workers_warm_the_harness_up_and_report_their_start(tmp_path):
    """Each solution worker runs a miniature evaluation before it is taken (its first-evaluation costs are paid
    in the pool) and reports its start-up steps; the run's summary shows them."""
    from kernelarena.bench.evaluate import warm_up
    from kernelarena.report.tables import run_caption

    warm_up("cpu", RunConfig())  # raises if the harness cannot evaluate its own definition
    ds = make_dataset(tmp_path / "ds", rows=4)
    report = run(ds, RunConfig(devices=("cpu",), timing=TimingConfig(warmup=0, reps=2)), solutions=["honest"],
                 save=False)
    assert [t.evaluation.status.value for t in report.traces] == ["PASSED"]
    (start,) = report.worker_starts
    assert {"imports", "warm_up", "sandbox", "total"} <= set(start)
    assert 0 < start["warm_up"] <= start["total"]
    assert "a solution worker starts in" in run_caption(report)


def test_the_reference_process_keeps_a_workloads_expected_outputs(tmp_path):
    """The checked timed calls' reference outputs are computed once per workload, not once per solution."""
    from kernelarena.bench.evaluate import timing_seed
    from kernelarena.bench.oracle import Oracle

    ds = make_dataset(tmp_path / "ds", rows=4)
    definition, (workload,) = ds.definitions["scale_add"], ds.workloads_for("scale_add")
    oracle = Oracle("cpu", RunConfig(time_reference=False), ds.root)
    oracle.prepare(definition, workload)
    seed = timing_seed(oracle.config, 1)
    first = oracle._expected_outputs(definition, workload, seed)
    assert oracle._expected_outputs(definition, workload, seed) is first
    other = workload.model_copy(update={"uuid": "w2"})  # not the prepared workload: computed, not kept
    assert oracle._expected_outputs(definition, other, seed) is not oracle._expected_outputs(definition, other, seed)


def test_the_reference_outputs_of_a_definitions_workloads_outlast_a_solutions_pass_over_them(tmp_path):
    """Each solution goes over all of a definition's workloads in turn, so the reference process sees w1..w5,
    w1..w5, ...; kept by count (lanes + 1) it computed every workload's reference again for every solution. Kept
    by bytes, each workload's reference outputs are computed once."""
    from kernelarena.bench.oracle import Oracle

    ds = make_dataset(tmp_path / "ds", rows=4)
    definition, (base,) = ds.definitions["scale_add"], ds.workloads_for("scale_add")
    workloads = [base.model_copy(update={"uuid": f"w{i}", "axes": {"n": 4 + i}}) for i in range(5)]
    oracle = Oracle("cpu", RunConfig(time_reference=False, lanes=1), ds.root)
    computed = []
    reference = oracle._reference
    oracle._reference = lambda d, w, seed, planned=False: computed.append(w.uuid) or reference(d, w, seed, planned)
    for _solution in range(3):
        for workload in workloads:
            oracle.prepare(definition, workload)
    assert sorted(computed) == sorted(w.uuid for w in workloads for _ in range(oracle.config.correctness_rounds))
    # A budget smaller than one workload's outputs still keeps the newest lanes + 1 workloads.
    small = Oracle("cpu", RunConfig(time_reference=False, lanes=1), ds.root, keep_bytes=1)
    for workload in workloads:
        small.prepare(definition, workload)
    assert list(small._expected) == [("scale_add", "w3"), ("scale_add", "w4")]


def test_the_pool_starts_each_worker_with_what_its_solution_imports():
    """Spares are started for the next tasks, each importing what its own solution needs (a worker for a
    Python solution does not import triton), and a solution gets the spare started for it."""
    from kernelarena.bench.worker import WorkerPool

    queue = [("triton",), (), ("triton",), ()]
    pool = WorkerPool("cpu", RunConfig(spare_workers=2), None, upcoming=lambda n: queue[:n])
    try:
        pool._fill()
        assert sorted(warm for warm, _ in pool.spares) == [(), ("triton",)]
        taken = []
        while queue:
            warm = queue.pop(0)
            child = pool.take(warm)
            taken.append(child.ready["warmed"])
            child.stop(graceful=False)
        assert taken == [["triton"], [], ["triton"], []] and pool.fits == [True] * 4
        assert not pool.spares  # nothing started past the last task
    finally:
        pool.close()


# Each waits (up to 20 s, once) in its first call for the other to have started: with two lanes they meet, and
# each leaves a "met" file. They write outside their scratch folders, so the run turns the sandbox off.
MEETS = """
import os, time
_waited = []
def run(x, w, y):
    if not _waited:
        _waited.append(True)
        open({me!r}, "a").close()
        deadline = time.time() + 20
        while not os.path.exists({other!r}) and time.time() < deadline:
            time.sleep(0.01)
        if os.path.exists({other!r}):
            open({me!r} + ".met", "a").close()
    y.copy_(x * w + 1.0)
"""


def test_two_lanes_evaluate_two_solutions_at_once_each_in_its_own_process(tmp_path):
    from kernelarena.schema import Solution

    ds = make_dataset(tmp_path / "ds", rows=4)
    marks = {name: str(tmp_path / name) for name in ("left", "right")}
    for name, other in (("left", "right"), ("right", "left")):
        ds.add_solution(Solution.model_validate({
            "name": name, "definition": "scale_add", "author": "tests",
            "spec": {"language": "python", "target_hardware": ["cpu"], "entry_point": "main.py::run",
                     "destination_passing_style": True},
            "sources": [{"path": "main.py", "content": MEETS.format(me=marks[name], other=marks[other])}]}))
    config = RunConfig(devices=("cpu",), timeout_s=60, timing=TimingConfig(warmup=1, reps=3), sandbox=False,
                       lanes=2)
    report = run(ds, config, solutions=["honest", "left", "right"], save=False)
    assert {t.solution: t.evaluation.status.value for t in report.traces} == \
        {"honest": "PASSED", "left": "PASSED", "right": "PASSED"}
    assert (tmp_path / "left.met").exists() and (tmp_path / "right.met").exists()  # they ran at the same time
    assert len(report.worker_starts) == 3  # a fresh process per solution
    # With one lane, "left" would wait its 20 s alone and never meet "right": no left.met.


def test_the_reference_process_keeps_each_solutions_rounds_apart(tmp_path):
    """Two lanes interleave their requests: each verdict uses its own solution's checked rounds."""
    from kernelarena.bench.evaluate import SolutionEvaluator, save_payload
    from kernelarena.bench.oracle import MalformedResult, Oracle
    from kernelarena.schema import Environment

    ds = make_dataset(tmp_path / "ds", rows=4)
    definition, (workload,) = ds.definitions["scale_add"], ds.workloads_for("scale_add")
    config = RunConfig(time_reference=False, timing=TimingConfig(warmup=1, reps=3))
    oracle = Oracle("cpu", config, ds.root)
    oracle.prepare(definition, workload)
    evaluator = SolutionEvaluator("cpu", config, ds.root)

    def honest(x, w, y):
        y.copy_(x * w + 1.0)

    honest.destination_passing_style = True
    rounds, timing = (save_payload(f(definition, workload, honest), tmp_path / f"{f.__name__}.pt")
                      for f in (evaluator.correctness_rounds, evaluator.timing))
    assert oracle.check_rounds(definition, workload, rounds, "a") is None
    assert oracle.check_rounds(definition, workload, rounds, "b") is None
    environment = Environment(hardware="cpu")
    for name in ("b", "a"):
        trace = oracle.verdict(definition, name, workload, timing, environment)
        assert trace.solution == name and trace.evaluation.status.value == "PASSED"
    with pytest.raises(MalformedResult, match="before the correctness rounds passed"):
        oracle.verdict(definition, "a", workload, timing, environment)  # a's rounds were used once


def test_a_broken_reference_is_reported_once_whichever_lane_finds_it(tmp_path):
    from kernelarena.schema import Definition, Solution, Trace, Workload
    from kernelarena.store import TraceSet

    ds = TraceSet(tmp_path / "ds")
    ds.add_definition(Definition.model_validate({
        "name": "broken", "op_type": "elementwise",
        "axes": {"n": {"type": "var"}, "d": {"type": "const", "value": 8}},
        "inputs": {"x": {"shape": ["n", "d"], "dtype": "float32"}},
        "outputs": {"y": {"shape": ["n", "d"], "dtype": "float32"}},
        "reference": "def run(x):\n    raise ValueError('the reference is broken')\n"}))
    for index in range(4):
        ds.add_solution(Solution.model_validate({
            "name": f"copy{index}", "definition": "broken", "author": "tests",
            "spec": {"language": "python", "target_hardware": ["cpu"], "entry_point": "main.py::run",
                     "destination_passing_style": False},
            "sources": [{"path": "main.py", "content": "def run(x):\n    return x.clone()\n"}]}))
    ds.add_workloads([Trace(definition="broken", workload=Workload(uuid=f"w{n}", axes={"n": n},
                                                                   inputs={"x": {"type": "random"}}))
                      for n in (2, 3)])
    report = run(ds, RunConfig(devices=("cpu",), timeout_s=60, lanes=2), save=False)
    assert report.traces == []
    assert sorted(e.workload for e in report.definition_errors) == ["w2", "w3"]
    assert all("the reference is broken" in e.message for e in report.definition_errors)


def test_a_handed_over_payload_loads_mapped_and_unchanged(tmp_path, monkeypatch):
    """A payload written by the solution's process (no checksums) reads back through the reference process's
    loader (mapped from the file) with the same tensors and values, and the serialization setting is restored."""
    import json
    import multiprocessing

    import torch

    from kernelarena.bench import child
    from kernelarena.bench.oracle import unpack

    monkeypatch.chdir(tmp_path)
    ours, theirs = multiprocessing.Pipe()
    payload = {"rounds": [{"seed": 3, "outputs": [torch.randn(64, 8).to(torch.bfloat16), 2.5]}], "timing": "{}"}
    child.hand_over(theirs, "rounds", payload)
    message = json.loads(ours.recv_bytes())
    assert message["file"] == "payload-rounds.pt" and message["payload"] == "rounds"
    loaded = unpack(str(tmp_path / message["file"]))
    assert torch.equal(loaded["rounds"][0]["outputs"][0], payload["rounds"][0]["outputs"][0])
    assert loaded["rounds"][0]["outputs"][1] == 2.5 and loaded["timing"] == "{}"
    from torch.utils.serialization import config

    assert config.save.compute_crc32 is True


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda:0", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("rows", [4, 8192])
def test_comparisons_of_small_outputs_do_not_wait_for_the_device(tmp_path, monkeypatch, device, rows):
    """Reference outputs of at most HOST_COMPARE_BYTES stay on the host and their comparisons take no device lock,
    so the reference process does not wait out the other lane's timed loop; larger ones on a GPU do (a real lock
    file, held exclusively here as a timed loop would)."""
    import fcntl
    import os

    from kernelarena.bench import quiet, spent
    from kernelarena.bench.evaluate import SolutionEvaluator, save_payload
    from kernelarena.bench.oracle import HOST_COMPARE_BYTES, Oracle

    ds = make_dataset(tmp_path / "ds", rows=rows)
    definition, (workload,) = ds.definitions["scale_add"], ds.workloads_for("scale_add")
    config = RunConfig(time_reference=False, timing=TimingConfig(warmup=1, reps=3))
    oracle = Oracle(device, config, ds.root)
    oracle.prepare(definition, workload)

    def honest(x, w, y):
        y.copy_(x * w + 1.0)

    honest.destination_passing_style = True
    rounds = save_payload(SolutionEvaluator(device, config, ds.root).correctness_rounds(definition, workload, honest),
                          tmp_path / "rounds.pt")
    path = quiet.make(str(tmp_path), device)
    monkeypatch.setattr(quiet, "START_WAIT_S", 0.3)
    quiet.use(path)
    holder = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)  # another lane's timed loop
        spent.take()
        assert oracle.check_rounds(definition, workload, rounds, "honest") is None
        waited = spent.take().get("device lock wait (shared)")  # the comparison's shared hold
    finally:
        os.close(holder)
        quiet.use(None)
    large = rows * 64 * 4 > HOST_COMPARE_BYTES
    if device.startswith("cuda") and large:
        assert waited is not None and waited >= 0.3  # went on without the lock after its wait
    else:
        assert waited is None


def test_ctrl_c_while_a_lane_takes_a_worker_stops_that_worker_too(tmp_path):
    """Ctrl-C (DeviceWorkers.kill) can land while a lane has taken a worker from the pool and not yet made it its
    active one: that worker is stopped as well, and the lane evaluates nothing more (it once ran the solution, a
    two-minute sleeper here, after the run had stopped)."""
    import time

    from tests.bench.test_run_cli import SLEEPS
    from tests.bench.test_schedule import solution

    ds = make_dataset(tmp_path / "ds", rows=4)
    ds.add_solution(solution("zz_sleeps", "python", ["cpu"], SLEEPS))
    config = RunConfig(devices=("cpu",), timeout_s=30, spare_workers=1, timing=TimingConfig(warmup=0, reps=1))
    worker = DeviceWorkers("cpu", config, ds.root)
    taken, results = [], []
    take = worker.pool.take

    def take_then_interrupted(*args, **kwargs):
        child = take(*args, **kwargs)
        taken.append(child)
        worker.kill()  # the interrupt, between the pool's hand-over and the lane's record of its active worker
        return child

    worker.pool.take = take_then_interrupted
    try:
        started = time.perf_counter()
        worker.evaluate(ds.definitions["scale_add"], ds.solutions["zz_sleeps"], ds.workloads_for("scale_add"),
                        results.append)
        took = time.perf_counter() - started
    finally:
        worker.stop()
    assert results == [] and took < 20, (results, took)  # not the sleeper's TIMEOUT trace 30 s later
    (child,) = taken
    assert not child.alive()


def test_ctrl_c_while_the_pool_waits_for_a_worker_to_start_ends_the_evaluation(tmp_path):
    """Ctrl-C early in an evaluation (0.05 s in: the pool handing over a worker, or the worker started): the
    evaluation ends at once, every worker is killed, and no trace blames the solution for the stop."""
    import threading
    import time

    from tests.bench.test_run_cli import SLEEPS
    from tests.bench.test_schedule import solution

    ds = make_dataset(tmp_path / "ds", rows=4)
    ds.add_solution(solution("zz_sleeps", "python", ["cpu"], SLEEPS))
    config = RunConfig(devices=("cpu",), timeout_s=30, spare_workers=1, timing=TimingConfig(warmup=0, reps=1))
    worker = DeviceWorkers("cpu", config, ds.root)
    results = []
    interrupt = threading.Timer(0.05, worker.kill)
    try:
        started = time.perf_counter()
        interrupt.start()
        worker.evaluate(ds.definitions["scale_add"], ds.solutions["zz_sleeps"], ds.workloads_for("scale_add"),
                        results.append)
        took = time.perf_counter() - started
    finally:
        interrupt.cancel()
        worker.stop()
    # No trace: a worker killed by the stop did not fail ("worker process died (exit code -9)" once blamed it).
    assert results == [] and took < 20, ([(r.trace.evaluation.status, r.trace.evaluation.log[:200]) for r in results],
                                         took)
    assert worker.pool.taking is None and not worker.active
