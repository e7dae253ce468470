"""Speed of light: work per call from the definition, ceilings measured once and cached, and the verdict on a
latency no device can reach."""

import json
import time

import pytest

from kernelarena.bench.roofline import (
    IMPOSSIBLE_BELOW,
    RooflineError,
    device_ceilings,
    impossible_speed,
    measure_ceilings,
    speed_of_light,
    work_of,
)
from kernelarena.schema import Definition, Workload

CEILINGS = {"copy_bytes_per_s": 1e11, "cached_copy_bytes_per_s": 4e11, "bf16_flops_per_s": 1e14,
            "fp32_flops_per_s": 2e13}


def _gemm(roofline=None, dtype="bfloat16"):
    return Definition.model_validate({
        "name": "gemm", "op_type": "gemm",
        "axes": {"m": {"type": "var"}, "n": {"type": "const", "value": 64}, "k": {"type": "const", "value": 32}},
        "inputs": {"a": {"shape": ["m", "k"], "dtype": dtype}, "b": {"shape": ["k", "n"], "dtype": dtype}},
        "outputs": {"c": {"shape": ["m", "n"], "dtype": dtype}},
        "reference": "def run(a, b):\n    return a @ b\n", **({"roofline": roofline} if roofline else {})})


def test_bytes_default_to_inputs_plus_outputs_and_flops_to_zero():
    moved, flops = work_of(_gemm(), Workload(uuid="w", axes={"m": 16}))
    assert moved == (16 * 32 + 32 * 64 + 16 * 64) * 2 and flops == 0


def test_declared_expressions_are_evaluated_over_the_axes():
    definition = _gemm({"bytes": "2 * (m * k + k * n + m * n)", "flops": "2 * m * n * k"})
    assert work_of(definition, Workload(uuid="w", axes={"m": 16})) == ((16 * 32 + 32 * 64 + 16 * 64) * 2,
                                                                       2 * 16 * 64 * 32)


@pytest.mark.parametrize("expression", ["__import__('os').system('true')", "m.__class__", "open('x')", "-m"])
def test_unsafe_or_negative_expressions_are_refused_with_the_field(expression):
    with pytest.raises(RooflineError, match="roofline.flops"):
        work_of(_gemm({"flops": expression}), Workload(uuid="w", axes={"m": 16}))


def test_speed_of_light_picks_the_binding_ceiling():
    definition = _gemm({"bytes": "1e9", "flops": "2 * m * n * k"})
    sol = speed_of_light(definition, Workload(uuid="w", axes={"m": 16}), 20.0, CEILINGS)
    assert sol.bound == "memory" and sol.ceiling_ms == pytest.approx(10.0) and sol.fraction == pytest.approx(0.5)
    compute = _gemm({"bytes": "0", "flops": "1e12"}, dtype="float32")
    sol = speed_of_light(compute, Workload(uuid="w", axes={"m": 16}), 100.0, CEILINGS)
    assert sol.bound == "compute" and sol.ceiling_ms == pytest.approx(50.0)  # the fp32 rate for fp32 inputs


def test_impossible_speed_uses_the_fastest_ceilings_with_slack():
    definition = _gemm({"bytes": "4e9"})  # 10 ms at the fastest (cached) copy rate
    workload = Workload(uuid="w", axes={"m": 16})
    assert impossible_speed(definition, workload, 10.0 * IMPOSSIBLE_BELOW * 1.01, CEILINGS) is None
    message = impossible_speed(definition, workload, 10.0 * IMPOSSIBLE_BELOW * 0.99, CEILINGS)
    assert message and "below the speed of light" in message and "400.0 GB/s" in message


def test_ceilings_are_measured_once_and_cached(tmp_path):
    started = time.perf_counter()
    first = device_ceilings("cpu", "CPU test-model", tmp_path)
    measured_s = time.perf_counter() - started
    assert measured_s < 5.0  # a couple of seconds at most, even on a loaded machine
    (cached,) = (tmp_path / "ceilings").iterdir()
    assert json.loads(cached.read_text()) == first
    assert all(first[k] > 0 for k in ("copy_bytes_per_s", "cached_copy_bytes_per_s", "bf16_flops_per_s",
                                      "fp32_flops_per_s"))
    cached.write_text(json.dumps({**first, "copy_bytes_per_s": 123.0}))
    assert device_ceilings("cpu", "CPU test-model", tmp_path)["copy_bytes_per_s"] == 123.0  # read, not measured


@pytest.mark.gpu
def test_gpu_ceilings_are_plausible():
    ceilings = measure_ceilings("cuda:0")
    assert 1e11 < ceilings["copy_bytes_per_s"] < 2e13
    assert ceilings["bf16_flops_per_s"] > ceilings["fp32_flops_per_s"] > 1e12


def test_ceilings_measured_on_a_busy_machine_are_measured_again_before_a_solution_is_failed(tmp_path, monkeypatch):
    """Ceilings measured while the machine was busy (here: a copy rate of 6 GB/s and 1.7 GFLOP/s, measured on
    the CI machine while it compiled) are too low, and a correct solution then reads as faster than light. Before
    failing one, the reference process measures them again (once), keeps the higher, and caches them."""
    from kernelarena.bench import RunConfig
    from kernelarena.bench.evaluate import SolutionEvaluator, save_payload
    from kernelarena.bench.oracle import Oracle
    from kernelarena.build import build_solution
    from tests.bench.cheats import make_dataset

    monkeypatch.setenv("KERNELARENA_CACHE_DIR", str(tmp_path / "cache"))
    ds = make_dataset(tmp_path / "ds", rows=4096)
    definition, (workload,) = ds.definitions["scale_add"], ds.workloads_for("scale_add")
    judge = Oracle("cpu", RunConfig(), ds.root)
    (cached,) = (tmp_path / "cache" / "ceilings").iterdir()
    judge.ceilings = {key: 1e3 for key in judge.ceilings}  # as if measured on a machine busy with a compile
    cached.write_text(json.dumps(judge.ceilings))
    evaluator = SolutionEvaluator("cpu", judge.config, ds.root)
    runnable = build_solution(ds.solutions["honest"], device="cpu")
    judge.prepare(definition, workload)
    rounds = save_payload(evaluator.correctness_rounds(definition, workload, runnable), tmp_path / "rounds.pt")
    assert judge.check_rounds(definition, workload, rounds, "honest") is None
    timing = save_payload(evaluator.timing(definition, workload, runnable), tmp_path / "timing.pt")
    trace = judge.verdict(definition, "honest", workload, timing, judge.environment)
    assert trace.evaluation.status.value == "PASSED", trace.evaluation.log
    assert min(json.loads(cached.read_text()).values()) > 1e6  # the cache holds the new measurement
