"""The Ray engine on a local CPU cluster: the local engine's statuses, a killed evaluator's work retried,
every trace written once by the driver, solutions routed by their target_hardware. The one node offers two
CPU slots and a stand-in H100 (a GPU resource and Ray's model resource, with no GPU behind them)."""

import dataclasses
import os
import signal
import threading
import time
from collections import Counter

import pytest

from kernelarena.bench import RunConfig, TimingConfig, run
from kernelarena.bench.engines import make_engine
from kernelarena.schema import Definition, Solution, Trace, Workload
from kernelarena.store import TraceSet

ray = pytest.importorskip("ray")

CONFIG = RunConfig(devices=("cpu",), timeout_s=120, timing=TimingConfig(warmup=1, reps=3))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One node with two CPU slots and a stand-in H100; its build cache (inherited by every Ray worker) starts
    empty. Runs that must stay off the stand-in GPU say devices=("cpu",)."""
    before = os.environ.get("KERNELARENA_CACHE_DIR")
    os.environ["KERNELARENA_CACHE_DIR"] = str(tmp_path_factory.mktemp("build-cache"))
    ray.init(num_cpus=2, num_gpus=1, resources={"kernelarena_cpu": 2, "accelerator_type:H100": 1},
             include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if before is None:
        os.environ.pop("KERNELARENA_CACHE_DIR")
    else:
        os.environ["KERNELARENA_CACHE_DIR"] = before


def statuses(traces):
    return {(t.solution, t.workload.uuid): t.evaluation.status.value for t in traces}


def test_same_statuses_as_the_local_engine_every_trace_on_disk_and_resume(cluster, dataset_copy):
    chosen = dict(definitions=["rmsnorm_h4096", "fused_add_rmsnorm_h4096"], smallest=1,
                  solutions=["rmsnorm_h4096_pytorch", "rmsnorm_h4096_kernelarena_triton", "rmsnorm_h4096_flashinfer",
                             "fused_add_rmsnorm_h4096_pytorch", "fused_add_rmsnorm_h4096_flashinfer"])
    dataset = TraceSet.load(dataset_copy)
    on_ray = run(dataset, CONFIG, engine=make_engine("ray"), **chosen)
    local = run(TraceSet.load(dataset_copy), CONFIG, save=False, **chosen)
    assert statuses(on_ray.traces) == statuses(local.traces)
    assert Counter(statuses(on_ray.traces).values()) == {"PASSED": 3}
    assert on_ray.skipped == local.skipped and len(on_ray.skipped) == 2  # FlashInfer's: GPU only
    on_disk = [t for group in TraceSet.load(dataset_copy).traces.values() for t in group]
    assert sorted(map(Trace.to_json, on_disk)) == sorted(map(Trace.to_json, on_ray.traces))
    assert on_ray.retried == 0 and on_ray.worker_startup_s > 0
    assert on_ray.compiled_builds == 3  # the two PyTorch solutions and the Triton one, once each
    # Resumed through Ray: every pair is traced on the slots' hardware with these settings, nothing runs again.
    again = run(TraceSet.load(dataset_copy), CONFIG, engine=make_engine("ray"), resume=True, **chosen)
    assert again.resumed == 3 and again.traces == []
    assert len([t for group in TraceSet.load(dataset_copy).traces.values() for t in group]) == 3


REFERENCE = "def run(x, w):\n    return x * w + 1.0\n"
HONEST = "def run(x, w, y):\n    y.copy_(x * w + 1.0)\n"
# Once per worker process, tells the test which process evaluates it (the Ray actor started the template
# process that forked this worker: its grandparent) and waits until the test has killed that actor or let it go
# on (by removing the file). It writes outside its scratch folder, so its runs turn the sandbox off.
SLOW = """
import os, time
_announced = []
def _actor():
    with open("/proc/%d/stat" % os.getppid()) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])
def run(x, w, y):
    if not _announced:
        _announced.append(True)
        with open({marker!r} + ".tmp", "w") as f:
            f.write(str(_actor()))
        os.rename({marker!r} + ".tmp", {marker!r})
        while os.path.exists({marker!r}):
            time.sleep(0.02)
    y.copy_(x * w + 1.0)
"""
KILLS = {"slow_once": 1, "slow_twice": 2}


def small_dataset(root, markers) -> TraceSet:
    dataset = TraceSet(root)
    dataset.add_definition(Definition.model_validate({
        "name": "scale_add", "op_type": "elementwise",
        "axes": {"n": {"type": "var"}, "d": {"type": "const", "value": 8}},
        "inputs": {"x": {"shape": ["n", "d"], "dtype": "float32"}, "w": {"shape": ["d"], "dtype": "float32"}},
        "outputs": {"y": {"shape": ["n", "d"], "dtype": "float32"}}, "reference": REFERENCE}))
    sources = {"honest": HONEST, **{name: SLOW.format(marker=str(marker)) for name, marker in markers.items()}}
    for name, source in sources.items():
        dataset.add_solution(Solution.model_validate({
            "name": name, "definition": "scale_add", "author": "tests",
            "spec": {"language": "python", "target_hardware": ["cpu"], "entry_point": "main.py::run",
                     "destination_passing_style": True},
            "sources": [{"path": "main.py", "content": source}]}))
    dataset.add_workloads([Trace(definition="scale_add", workload=Workload(
        uuid=f"w{n}", axes={"n": n}, inputs={"x": {"type": "random"}, "w": {"type": "random"}})) for n in (2, 3)])
    return dataset


def kill_evaluators(markers, killed, done):
    """For each slow solution, SIGKILL the Ray actor evaluating it the first KILLS[name] times it says who it
    is; after that, let it go on."""
    while not done.is_set():
        for name, marker in markers.items():
            if marker.exists():
                if len(killed[name]) < KILLS[name]:
                    pid = int(marker.read_text())
                    os.kill(pid, signal.SIGKILL)
                    killed[name].append(pid)
                marker.unlink()
        time.sleep(0.02)


def test_a_killed_evaluator_is_retried_or_recorded_with_the_reason(cluster, tmp_path):
    markers = {name: tmp_path / f"{name}.pid" for name in KILLS}
    dataset = small_dataset(tmp_path / "ds", markers)
    killed, done = {name: [] for name in KILLS}, threading.Event()
    killer = threading.Thread(target=kill_evaluators, args=(markers, killed, done), daemon=True)
    killer.start()
    try:
        report = run(dataset, dataclasses.replace(CONFIG, sandbox=False), engine=make_engine("ray", max_attempts=2))
    finally:
        done.set()
        killer.join(5)
    assert {name: len(pids) for name, pids in killed.items()} == KILLS
    assert report.retried == 2  # slow_once's first attempt and slow_twice's; its second is not retried
    got = statuses(report.traces)
    assert len(report.traces) == len(got) == 6
    on_disk = Counter((t.solution, t.workload.uuid) for group in TraceSet.load(tmp_path / "ds").traces.values()
                      for t in group)
    assert on_disk == Counter(got.keys())  # each pair written once
    # Killed once: retried on another evaluator, where it passes. Killed twice: the evaluation it was running
    # is recorded as lost with the reasons; the rest of its work went on elsewhere.
    (lost,) = [t for t in report.traces if t.evaluation.status.value != "PASSED"]
    assert lost.solution == "slow_twice" and lost.evaluation.status.value == "RUNTIME_ERROR"
    assert "the evaluation was lost 2 times, not retried further" in lost.evaluation.log
    assert lost.evaluation.log.count("Ray lost the evaluator on cpu") == 2
    # The slow solutions were compiled in the evaluations that were killed; every later evaluator of the node,
    # a fresh process each, took them from the node's disk cache: only the honest build is reported.
    assert report.compiled_builds == 1


def test_slot_hardware_names_the_hardware_as_traces_do(cluster):
    from kernelarena.bench.environment import environment

    assert make_engine("ray").slot_hardware(("cpu",)) == [("cpu", environment("cpu").hardware)]


def test_solutions_go_to_the_slots_their_target_hardware_names(cluster, tmp_path):
    dataset = small_dataset(tmp_path / "ds", {})  # an honest solution, and these:
    for name, targets in (("on_cpu", ["cpu"]), ("on_h100", ["H100"]), ("on_b200", ["B200"])):
        dataset.add_solution(Solution.model_validate({
            "name": name, "definition": "scale_add", "author": "tests",
            "spec": {"language": "python", "target_hardware": targets, "entry_point": "main.py::run",
                     "destination_passing_style": True},
            "sources": [{"path": "main.py", "content": HONEST}]}))
    report = run(TraceSet.load(tmp_path / "ds"), RunConfig(timeout_s=120, timing=TimingConfig(warmup=1, reps=3)),
                 solutions=["on_cpu", "on_h100", "on_b200"], workloads=["w2"], save=False,
                 engine=make_engine("ray"))
    log = {t.solution: (t.evaluation.status.value, t.evaluation.log or "") for t in report.traces}
    assert log["on_cpu"][0] == "PASSED"
    # Sent to the stand-in H100, whose worker finds no GPU: the evaluation ran there and failed there.
    assert log["on_h100"][0] == "RUNTIME_ERROR" and "worker process for cuda:0" in log["on_h100"][1]
    assert log["on_b200"][0] == "RUNTIME_ERROR"
    assert "matches none of the cluster's device slots (cpu, cuda:H100)" in log["on_b200"][1]


def test_one_worker_per_solution_across_its_workloads_and_definition_failures_reported(cluster, tmp_path):
    """The driver sends a solution's workloads one call each; the actor evaluates them all in the one worker
    process it took for that solution (a worker start per solution, not per workload). A workload whose
    reference raises is reported against the definition, not written as any solution's trace."""
    dataset = small_dataset(tmp_path / "ds", {})
    dataset.add_solution(Solution.model_validate({
        "name": "honest_too", "definition": "scale_add", "author": "tests",
        "spec": {"language": "python", "target_hardware": ["cpu"], "entry_point": "main.py::run",
                 "destination_passing_style": True},
        "sources": [{"path": "main.py", "content": HONEST}]}))
    report = run(TraceSet.load(tmp_path / "ds"), CONFIG, engine=make_engine("ray"), save=False)
    assert Counter(statuses(report.traces).values()) == {"PASSED": 4}
    assert len(report.worker_starts) == 2  # honest and honest_too, two workloads each

    broken = Definition.model_validate({
        "name": "raises", "op_type": "elementwise",
        "axes": {"n": {"type": "var"}, "d": {"type": "const", "value": 8}},
        "inputs": {"x": {"shape": ["n", "d"], "dtype": "float32"}},
        "outputs": {"y": {"shape": ["n", "d"], "dtype": "float32"}},
        "reference": "def run(x):\n    raise ValueError('the reference is broken')\n"})
    dataset.add_definition(broken)
    dataset.add_solution(Solution.model_validate({
        "name": "copies", "definition": "raises", "author": "tests",
        "spec": {"language": "python", "target_hardware": ["cpu"], "entry_point": "main.py::run",
                 "destination_passing_style": False},
        "sources": [{"path": "main.py", "content": "def run(x):\n    return x.clone()\n"}]}))
    dataset.add_workloads([Trace(definition="raises", workload=Workload(uuid="r1", axes={"n": 2},
                                                                        inputs={"x": {"type": "random"}}))])
    report = run(TraceSet.load(tmp_path / "ds"), CONFIG, engine=make_engine("ray"), definitions=["raises"],
                 save=False)
    assert report.traces == []
    (error,) = report.definition_errors
    assert (error.definition, error.workload) == ("raises", "r1") and "the reference is broken" in error.message
