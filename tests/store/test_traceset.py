import json
import multiprocessing
from pathlib import Path

import pytest
import torch

from kernelarena.errors import DatasetError
from kernelarena.schema import Trace
from kernelarena.store import TraceSet


def trace(definition, workload, solution, latency, status="PASSED", abs_err=0.0):
    evaluation = {"status": status, "environment": {"hardware": "cpu"}, "timestamp": "2026-11-24T00:00:00Z"}
    if status in ("PASSED", "INCORRECT_NUMERICAL"):
        evaluation["correctness"] = {"max_absolute_error": abs_err, "max_relative_error": abs_err}
    if status == "PASSED":
        evaluation["performance"] = {"latency_ms": latency, "reference_latency_ms": 1.0,
                                     "speedup_factor": 1.0 / latency}
    return Trace.model_validate({"definition": definition, "workload": workload.model_dump(mode="json"),
                                 "solution": solution, "evaluation": evaluation})


def test_example_dataset_loads_with_its_records(example_dataset):
    ds = TraceSet.load(example_dataset)
    assert not ds.problems and not ds.warnings
    assert "rmsnorm_h4096" in ds.definitions and "gqa_paged_decode_h32_kv8_d128_ps16" in ds.definitions
    assert "rmsnorm_h4096_pytorch" in {s.name for s in ds.solutions_for("rmsnorm_h4096")}
    assert [w.axes["batch_size"] for w in ds.workloads_for("rmsnorm_h4096")] == [1, 32, 1024, 8192]


def test_best_trace_per_workload_respects_error_limits(dataset_copy):
    ds = TraceSet.load(dataset_copy)
    w1, w2 = ds.workloads_for("rmsnorm_h4096")[:2]
    ds.add_traces([trace("rmsnorm_h4096", w1, "rmsnorm_h4096_pytorch", 2.0),
                   trace("rmsnorm_h4096", w1, "fast_but_sloppy", 0.5, abs_err=0.5),
                   trace("rmsnorm_h4096", w1, "broken", 0.1, status="RUNTIME_ERROR"),
                   trace("rmsnorm_h4096", w2, "rmsnorm_h4096_pytorch", 3.0)])
    again = TraceSet.load(dataset_copy, strict=False)  # the unknown solutions only warn
    best = again.best_traces("rmsnorm_h4096")
    assert best[w1.uuid].solution == "fast_but_sloppy" and best[w2.uuid].solution == "rmsnorm_h4096_pytorch"
    assert again.best_traces("rmsnorm_h4096", max_abs_error=0.01)[w1.uuid].solution == "rmsnorm_h4096_pytorch"
    row = next(r for r in again.summary() if r.definition == "rmsnorm_h4096")
    assert (row.traces, row.passed, row.best_solution) == (4, 3, "fast_but_sloppy")
    assert any("fast_but_sloppy" in str(w) for w in again.warnings)


def plant_errors(root: Path) -> dict:
    """Break a copy of the example dataset in one way per file; return the expected fragments."""
    defs = root / "definitions" / "rmsnorm"
    (defs / "broken.json").write_text("{ not json")
    d = json.loads((defs / "rmsnorm_h4096.json").read_text())
    (defs / "dtype.json").write_text(json.dumps({**d, "name": "dtype_bad",
                                                 "inputs": {**d["inputs"], "weight": {"shape": ["hidden_size"],
                                                                                      "dtype": "float7"}}}))
    (defs / "axis.json").write_text(json.dumps({**d, "name": "axis_bad",
                                                "outputs": {"output": {"shape": ["batch_size", "nope"],
                                                                       "dtype": "bfloat16"}}}))
    (defs / "dup.json").write_text(json.dumps(d))
    sol_dir = root / "solutions" / "rmsnorm" / "rmsnorm_h4096"
    s = json.loads((sol_dir / "rmsnorm_h4096_pytorch.json").read_text())
    (sol_dir / "orphan.json").write_text(json.dumps({**s, "name": "orphan", "definition": "missing_def"}))
    (sol_dir / "escape.json").write_text(json.dumps({**s, "name": "escape",
                                                     "sources": [{"path": "../../x.py", "content": "x"}],
                                                     "spec": {**s["spec"], "entry_point": "../../x.py::run"}}))
    wl = root / "workloads" / "rmsnorm" / "rmsnorm_h4096.jsonl"
    first = json.loads(wl.read_text().splitlines()[0])
    outside = {**first, "workload": {**first["workload"], "uuid": "blob-out", "inputs": {
        "weight": {"type": "safetensors", "path": "../secret.safetensors", "tensor_key": "w"}}}}
    missing_axis = {**first, "workload": {**first["workload"], "uuid": "no-axis", "axes": {}}}
    with open(wl, "a") as f:
        f.write("{bad line\n" + json.dumps(outside) + "\n" + json.dumps(missing_axis) + "\n")
    return {
        "broken.json:1": "malformed JSON",
        "dtype.json": "inputs.weight.dtype",
        "axis.json": "axis 'nope' is not declared",
        "duplicate definition name 'rmsnorm_h4096'": "dup.json",
        "orphan.json": "unknown definition 'missing_def'",
        "escape.json": "leaves the solution folder",
        "rmsnorm_h4096.jsonl:5": "malformed JSON line",
        "rmsnorm_h4096.jsonl:6": "relative to the dataset root",
        "rmsnorm_h4096.jsonl:7": "no value for variable axes ['batch_size']",
    }


def test_lenient_load_reports_every_planted_error_and_keeps_the_rest(dataset_copy):
    expected = plant_errors(dataset_copy)
    with pytest.raises(DatasetError, match="more problems"):
        TraceSet.load(dataset_copy)
    ds = TraceSet.load(dataset_copy, strict=False)
    reported = [str(p) for p in ds.problems]
    for where, what in expected.items():
        assert any(where in r and what in r for r in reported), (where, what, reported)
    assert len(reported) == len(expected)
    # every definition file but the three planted bad ones (broken, dtype, axis) and the duplicate loads
    files = len(list((dataset_copy / "definitions").rglob("*.json")))
    assert len(ds.definitions) == files - 4 and len(ds.workloads_for("rmsnorm_h4096")) == 4


def test_writes_refuse_conflicts_and_unknown_definitions(dataset_copy):
    ds = TraceSet.load(dataset_copy)
    d = ds.definitions["rmsnorm_h4096"]
    with pytest.raises(DatasetError, match="exists with other content"):
        ds.add_definition(d.model_copy(update={"description": "changed"}))
    s = ds.solutions["rmsnorm_h4096_pytorch"]
    with pytest.raises(DatasetError, match="unknown definition"):
        ds.add_solution(s.model_copy(update={"name": "x", "definition": "nope"}))
    w = ds.workloads["rmsnorm_h4096"][0]
    bad = w.model_copy(update={"workload": w.workload.model_copy(update={"axes": {"batch_size": 1, "hidden_size": 7}})})
    with pytest.raises(DatasetError, match="fixes it at 4096"):
        ds.add_workloads([bad])


def test_blobs_are_deduplicated_and_usable_in_workloads(dataset_copy):
    ds = TraceSet.load(dataset_copy)
    w = torch.randn(4096).to(torch.bfloat16)
    path = ds.save_blob("rmsnorm_h4096", {"weight": w})
    assert ds.save_blob("rmsnorm_h4096", {"weight": w.clone()}) == path
    entry = ds.workloads["rmsnorm_h4096"][0]
    inputs = {**entry.workload.inputs, "weight": {"type": "safetensors", "path": path, "tensor_key": "weight"}}
    new = Trace.model_validate({"definition": "rmsnorm_h4096", "workload": {
        "uuid": "with-blob", "axes": {"batch_size": 2}, "inputs": {k: (v if isinstance(v, dict) else v.model_dump())
                                                                   for k, v in inputs.items()}}})
    ds.add_workloads([new])
    assert TraceSet.load(dataset_copy).workloads_for("rmsnorm_h4096")[-1].uuid == "with-blob"


def _append_many(root: str, worker: int, count: int) -> None:
    ds = TraceSet.load(root)
    w = ds.workloads_for("rmsnorm_h4096")[0]
    for i in range(count):
        ds.add_traces([trace("rmsnorm_h4096", w, f"writer{worker}", 1.0 + i)])


def test_concurrent_writers_lose_no_record(dataset_copy):
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_many, args=(str(dataset_copy), n, 40)) for n in range(4)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(60)
        assert p.exitcode == 0
    ds = TraceSet.load(dataset_copy, strict=False)
    assert not ds.problems
    per_writer = [len(ds.traces_for("rmsnorm_h4096", solution=f"writer{n}")) for n in range(4)]
    assert per_writer == [40, 40, 40, 40]


def test_torn_last_line_does_not_swallow_the_next_record(dataset_copy):
    ds = TraceSet.load(dataset_copy)
    w = ds.workloads_for("rmsnorm_h4096")[0]
    path = ds.layout.trace_file("rmsnorm", "rmsnorm_h4096")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"definition": "rmsnorm_h4096", "workl')  # a writer died mid-line
    ds.add_traces([trace("rmsnorm_h4096", w, "rmsnorm_h4096_pytorch", 1.0)])
    again = TraceSet.load(dataset_copy, strict=False)
    assert len(again.traces_for("rmsnorm_h4096")) == 1
    assert [p.line for p in again.problems] == [1]


def test_a_torn_trailing_line_is_a_warning_and_never_blocks_loading(dataset_copy):
    ds = TraceSet.load(dataset_copy)
    w = ds.workloads_for("rmsnorm_h4096")[0]
    ds.add_traces([trace("rmsnorm_h4096", w, "rmsnorm_h4096_pytorch", 1.0)])
    path = ds.layout.trace_file("rmsnorm", "rmsnorm_h4096")
    with open(path, "a") as f:
        f.write('{"definition": "rmsnorm_h4096", "workl')  # a writer died mid-line, at the end of the file
    again = TraceSet.load(dataset_copy, strict=True)
    assert len(again.traces_for("rmsnorm_h4096")) == 1 and again.problems == []
    assert [(w.line, "torn last line" in w.message) for w in again.warnings] == [(2, True)]
    with open(path, "a") as f:  # the same bytes mid-file are a malformed record like any other
        f.write('\n{"definition": "rmsnorm_h4096", "workl\n')
    assert [p.line for p in TraceSet.load(dataset_copy, strict=False).problems] == [2, 3]
