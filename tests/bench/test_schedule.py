"""What a run decides before building anything: skipped solutions, resumed pairs, checked options."""

import pytest

from kernelarena.bench import RunConfig, TimingConfig
from kernelarena.bench.environment import local_hardware
from kernelarena.bench.runner import check_devices, run, schedule, unrunnable_reason
from kernelarena.schema import Correctness, Environment, Evaluation, Performance, Solution, Status, TimingStats, Trace
from tests.bench.cheats import make_dataset


def solution(name: str, language: str, targets, content: str = "x") -> Solution:
    source = {"path": "kernel.cu" if language == "cuda" else "main.py", "content": content}
    return Solution.model_validate({
        "name": name, "definition": "scale_add", "author": "tests",
        "spec": {"language": language, "target_hardware": targets, "binding": "torch" if language == "cuda" else None,
                 "entry_point": f"{source['path']}::run"},
        "sources": [source]})


def test_unrunnable_reason_reads_target_hardware_and_language():
    assert unrunnable_reason(solution("a", "python", ["cpu", "cuda"]), "cpu") is None
    assert unrunnable_reason(solution("a", "python", ["cpu", "cuda"]), "cuda:0") is None
    assert "does not include cpu" in unrunnable_reason(solution("a", "python", ["NVIDIA_H100"]), "cpu")
    assert "cuda solutions need a CUDA GPU" in unrunnable_reason(solution("a", "cuda", ["cpu", "cuda"]), "cpu")
    assert "cpu only" in unrunnable_reason(solution("a", "python", ["cpu"]), "cuda:0")


def test_solutions_that_cannot_run_here_are_skipped_before_building_and_not_written(tmp_path):
    ds = make_dataset(tmp_path)
    ds.add_solution(solution("gpu_only", "cuda", ["cuda"]))
    plan = schedule(ds, RunConfig(devices=("cpu",)), solutions=["gpu_only", "honest"])
    assert [(s.solution, s.workloads) for s in plan.skipped] == [("gpu_only", 1)]
    assert "target_hardware ['cuda'] does not include cpu" in plan.skipped[0].reason
    assert [s.name for _, s, _ in plan.tasks] == ["honest"] and plan.evaluations == 1
    # Only skipped solutions selected: the run starts no worker and writes nothing.
    report = run(ds, RunConfig(devices=("cpu",)), solutions=["gpu_only"])
    assert report.traces == [] and [s.solution for s in report.skipped] == ["gpu_only"]
    assert not (tmp_path / "traces").exists()


def passed_trace(ds, solution_name: str, rounds: int, reps: int, hardware: str) -> Trace:
    workload = ds.workloads_for("scale_add")[0]
    timing = TimingStats(median_ms=1, mean_ms=1, min_ms=1, max_ms=1, p25_ms=1, p75_ms=1, count=reps, mode="cpu-wall")
    return Trace(definition="scale_add", workload=workload, solution=solution_name, evaluation=Evaluation(
        status=Status.PASSED, environment=Environment(hardware=hardware), timestamp="2026-12-02T00:00:00+00:00",
        correctness=Correctness(extra={"rounds": rounds}),
        performance=Performance(latency_ms=1, reference_latency_ms=1, speedup_factor=1, solution_timing=timing)))


def test_resume_leaves_out_pairs_traced_here_with_the_same_settings(tmp_path):
    ds = make_dataset(tmp_path)
    here = local_hardware("cpu")
    ds.add_traces([passed_trace(ds, "honest", 3, 5, here), passed_trace(ds, "raises", 3, 5, "NVIDIA H100"),
                   passed_trace(ds, "segfaults", 2, 5, here), passed_trace(ds, "hangs", 3, 9, here)])
    config = RunConfig(devices=("cpu",), correctness_rounds=3, timing=TimingConfig(reps=5))
    names = ["honest", "raises", "segfaults", "hangs"]
    plan = schedule(ds, config, solutions=names, resume=True)
    assert plan.resumed == 1  # honest only: other hardware, other rounds, other timed calls run again
    assert sorted(s.name for _, s, _ in plan.tasks) == ["hangs", "raises", "segfaults"]
    assert schedule(ds, config, solutions=names).resumed == 0  # without --resume everything runs


def test_resume_on_a_gpu_takes_a_slow_calls_shorter_default_loop_as_the_same_setting(tmp_path):
    from kernelarena.bench.runner import same_settings

    ds = make_dataset(tmp_path)
    gpu = "NVIDIA H200"
    same = same_settings(RunConfig(correctness_rounds=3), "cuda:0", gpu)
    assert same(passed_trace(ds, "honest", 3, 100, gpu))
    assert same(passed_trace(ds, "honest", 3, 26, gpu))  # a 50 ms call's loop, fit to its budget
    assert not same(passed_trace(ds, "honest", 3, 5, gpu))  # below the fewest a default loop takes
    assert not same(passed_trace(ds, "honest", 3, 101, gpu))
    asked = same_settings(RunConfig(correctness_rounds=3, timing=TimingConfig(reps=50)), "cuda:0", gpu)
    assert asked(passed_trace(ds, "honest", 3, 50, gpu)) and not asked(passed_trace(ds, "honest", 3, 26, gpu))


@pytest.mark.parametrize("device, message", [
    ("tpu", "expected cpu, cuda or cuda:N"), ("cuda:x", "expected cpu, cuda or cuda:N"),
    ("cuda:0", "no CUDA GPU is visible"), ("cpu:1", "expected cpu, cuda or cuda:N")])
def test_bad_devices_are_refused_by_name(device, message):
    import torch

    if device == "cuda:0" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match=message) as caught:
        check_devices([device])
    assert repr(device) in str(caught.value)


@pytest.mark.parametrize("make, message", [
    (lambda: RunConfig(timeout_s=-5), "timeout_s=-5: must be more than 0"),
    (lambda: RunConfig(correctness_rounds=0), "correctness_rounds=0"),
    (lambda: TimingConfig(reps=0), "reps=0: must be at least 1"),
    (lambda: TimingConfig(warmup=-1), "warmup=-1")])
def test_run_config_refuses_impossible_values(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.gpu
def test_on_a_gpu_visible_devices_pass_the_check_and_cuda_solutions_are_scheduled(tmp_path):
    import torch

    count = torch.cuda.device_count()
    check_devices(["cuda", "cuda:0", f"cuda:{count - 1}"])
    with pytest.raises(ValueError, match=f"has {count} CUDA GPU"):
        check_devices([f"cuda:{count}"])
    ds = make_dataset(tmp_path)
    ds.add_solution(solution("gpu_only", "cuda", ["cuda"]))
    plan = schedule(ds, RunConfig(devices=("cuda:0",)), solutions=["gpu_only", "honest"])
    assert plan.skipped == [] and sorted(s.name for _, s, _ in plan.tasks) == ["gpu_only", "honest"]
    assert not local_hardware().startswith("CPU")
