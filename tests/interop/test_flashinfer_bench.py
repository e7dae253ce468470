"""Datasets move both ways between kernelarena and the published flashinfer-bench package, field for field.

CI installs flashinfer-bench with --no-deps (it imports on a CPU-only machine), so these tests run there.
"""

import json
import math

import pytest

fib_data = pytest.importorskip("flashinfer_bench.data", reason="flashinfer-bench is not installed")

from kernelarena.schema import Trace  # noqa: E402
from kernelarena.store import TraceSet  # noqa: E402


def _same(ours, theirs, path="") -> None:
    """Every field FlashInfer-Bench has equals ours (ours may hold more: our extensions)."""
    if isinstance(theirs, dict):
        for key, value in theirs.items():
            if value is None and (not isinstance(ours, dict) or key not in ours):
                continue  # we leave None fields out
            assert isinstance(ours, dict) and key in ours, f"{path}.{key} missing in ours"
            _same(ours[key], value, f"{path}.{key}")
    elif (isinstance(theirs, float) and math.isnan(theirs)) or theirs == "NaN":
        assert ours == "NaN" or (isinstance(ours, float) and math.isnan(ours)), path
    else:
        assert ours == theirs, f"{path}: ours {ours!r} != theirs {theirs!r}"


def _evaluated(ds: TraceSet) -> Trace:
    workload = ds.workloads["rmsnorm_h4096"][0].workload
    return Trace.model_validate({
        "definition": "rmsnorm_h4096", "solution": "rmsnorm_h4096_pytorch", "workload": workload.to_json_dict(),
        "evaluation": {
            "status": "PASSED", "timestamp": "2026-11-24T12:00:00Z", "log": "",
            "environment": {"hardware": "NVIDIA H100 80GB HBM3", "libs": {"torch": "2.11.0"}},
            "correctness": {"max_relative_error": 1e-3, "max_absolute_error": 2e-3, "extra": {"rounds": 3}},
            "performance": {"latency_ms": 0.05, "reference_latency_ms": 0.2, "speedup_factor": 4.0,
                            "solution_timing": {"median_ms": 0.05, "mean_ms": 0.051, "min_ms": 0.049,
                                                "max_ms": 0.06, "p25_ms": 0.05, "p75_ms": 0.052, "count": 100,
                                                "mode": "cuda-events-cold-l2", "host_overhead_us": 12.0}}}})


def test_our_dataset_loads_in_flashinfer_bench(dataset_copy):
    ours = TraceSet.load(dataset_copy)
    ours.add_traces([_evaluated(ours)])
    theirs = fib_data.TraceSet.from_path(str(dataset_copy))
    assert set(theirs.definitions) == set(ours.definitions)
    for name, definition in theirs.definitions.items():
        _same(ours.definitions[name].to_json_dict(), definition.model_dump(mode="json"), name)
    their_solutions = {s.name: s for group in theirs.solutions.values() for s in group}
    assert set(their_solutions) == set(ours.solutions)
    for name, solution in their_solutions.items():
        _same(ours.solutions[name].to_json_dict(), solution.model_dump(mode="json"), name)
    for name, entries in theirs.workloads.items():
        assert [e.workload.uuid for e in entries] == [e.workload.uuid for e in ours.workloads[name]]
        for mine, entry in zip(ours.workloads[name], entries):
            _same(mine.to_json_dict(), entry.model_dump(mode="json"), entry.workload.uuid)
    (trace,) = theirs.traces["rmsnorm_h4096"]
    assert trace.evaluation.performance.speedup_factor == 4.0  # our timing statistics were ignored, not fatal
    _same(ours.traces["rmsnorm_h4096"][0].to_json_dict(), trace.model_dump(mode="json"), "trace")


def test_records_flashinfer_bench_writes_load_in_ours(tmp_path, example_dataset):
    import shutil

    source = TraceSet.load(example_dataset)
    root = tmp_path / "fib"
    shutil.copytree(example_dataset / "blob", root / "blob")  # the workloads' page tables
    theirs = fib_data.TraceSet(root=root)
    for name in ("rmsnorm_h4096", "gqa_paged_decode_h32_kv8_d128_ps16"):
        definition = fib_data.Definition.model_validate_json(source.definitions[name].to_json())
        path = root / "definitions" / definition.op_type / f"{name}.json"
        fib_data.save_json_file(definition, path)
        theirs.definitions[name] = definition
        solution = fib_data.Solution.model_validate_json(source.solutions[f"{name}_pytorch"].to_json())
        fib_data.save_json_file(solution, root / "solutions" / definition.op_type / name / f"{solution.name}.json")
        workloads = [fib_data.Trace(definition=name, workload=fib_data.Workload.model_validate_json(w.to_json()))
                     for w in source.workloads_for(name)]
        theirs.add_workload_traces(workloads)
    evaluation = fib_data.Evaluation(
        status=fib_data.EvaluationStatus.INCORRECT_NUMERICAL, timestamp="2026-11-24T12:00:00",
        environment=fib_data.Environment(hardware="NVIDIA_H100", libs={"flashinfer": "0.7.2"}),
        correctness=fib_data.Correctness(max_relative_error=float("nan"), max_absolute_error=3.5), log="boom")
    theirs.add_traces([fib_data.Trace(definition="rmsnorm_h4096", solution="rmsnorm_h4096_pytorch",
                                      workload=workloads and theirs.workloads["rmsnorm_h4096"][0].workload,
                                      evaluation=evaluation)])

    ours = TraceSet.load(root)
    assert not ours.problems and not ours.warnings
    for name, definition in theirs.definitions.items():
        _same(ours.definitions[name].to_json_dict(), definition.model_dump(mode="json"), name)
    for group in theirs.solutions.values():
        for solution in group:
            _same(ours.solutions[solution.name].to_json_dict(), solution.model_dump(mode="json"), solution.name)
    for name, entries in theirs.workloads.items():
        for mine, entry in zip(ours.workloads[name], entries, strict=True):
            _same(mine.to_json_dict(), entry.model_dump(mode="json"), name)
    (mine,) = ours.traces["rmsnorm_h4096"]
    assert math.isnan(mine.evaluation.correctness.max_relative_error)
    assert mine.evaluation.status.value == "INCORRECT_NUMERICAL" and mine.evaluation.log == "boom"
    raw = json.loads((root / "traces" / "rmsnorm" / "rmsnorm_h4096.jsonl").read_text())
    _same(mine.to_json_dict(), raw, "trace")


def test_traces_from_our_h100_run_load_in_flashinfer_bench():
    """The traces committed from the GPU run (benchmarks/results) validate as FlashInfer-Bench traces."""
    from tests.conftest import ROOT

    lines = (ROOT / "benchmarks" / "results" / "run_example_h100_traces.jsonl").read_text().splitlines()
    assert len(lines) == 124
    for line in lines:
        theirs = fib_data.Trace.model_validate_json(line)
        ours = Trace.model_validate_json(line)
        assert theirs.evaluation.status.value == ours.evaluation.status.value == "PASSED"
        assert theirs.evaluation.performance.latency_ms == ours.evaluation.performance.latency_ms


_ATTENTION = ("gqa_paged_decode_h32_kv8_d128_ps16", "gqa_paged_prefill_causal_h32_kv8_d128_ps16")


def test_flashinfer_bench_makes_valid_inputs_for_our_attention_workloads(example_dataset):
    """FlashInfer-Bench's own input generation reads our page tables from the blobs (it would otherwise draw
    random page indices), and the reference runs on them; on the CPU, as far as FlashInfer-Bench goes there."""
    import torch
    from flashinfer_bench.bench.utils import gen_inputs, load_safetensors

    theirs = fib_data.TraceSet.from_path(str(example_dataset))
    for name in _ATTENTION:
        definition = theirs.definitions[name]
        smallest = min(theirs.workloads[name], key=lambda t: t.workload.axes["num_kv_indices"]).workload
        inputs = dict(zip(definition.inputs, gen_inputs(definition, smallest, "cpu",
                                                        load_safetensors(definition, smallest, example_dataset))))
        indices = inputs["kv_indices"]
        assert int(indices.min()) >= 0 and int(indices.max()) < smallest.axes["num_pages"]
        assert int(inputs["kv_indptr"][-1]) == smallest.axes["num_kv_indices"]
        namespace = {}
        exec(compile(definition.reference, name, "exec"), namespace)
        output, lse = namespace["run"](*inputs.values())
        assert torch.isfinite(output.float()).all() and torch.isfinite(lse).all()


@pytest.mark.gpu
def test_flashinfer_bench_runs_our_attention_definitions(dataset_copy, tmp_path):
    """FlashInfer-Bench 0.1.2's own benchmark over our attention definitions: every trace PASSED."""
    from flashinfer_bench.bench import Benchmark, BenchmarkConfig

    theirs = fib_data.TraceSet.from_path(str(dataset_copy))
    solutions = [f"{name}_pytorch" for name in _ATTENTION] + [f"flashinfer_wrapper_{name}" for name in _ATTENTION]
    config = BenchmarkConfig(warmup_runs=2, iterations=5, num_trials=2, definitions=list(_ATTENTION),
                             solutions=solutions, log_dir=str(tmp_path / "logs"))
    result = Benchmark(theirs, config).run_all(dump_traces=False)
    traces = [t for name in _ATTENTION for t in result.traces.get(name, [])]
    assert traces, "FlashInfer-Bench produced no traces"
    status = {(t.solution, t.workload.uuid): t.evaluation.status.value for t in traces}
    assert all(s == "PASSED" for s in status.values()), status
    assert {t.solution for t in traces} >= {f"{name}_pytorch" for name in _ATTENTION}
