"""kernelarena loads, validates and runs a dataset written in FlashInfer-Bench's own format with public
FlashInfer-Trace definitions whose constraints read input tensors (``num_kv_indices == kv_indptr[-1].item()``),
page tables stored as safetensors blobs, and a sampling definition judged by the sampling evaluator."""

import pytest
import torch

pytest.importorskip("flashinfer_bench.data", reason="flashinfer-bench is not installed")

from kernelarena.bench import RunConfig, TimingConfig, run  # noqa: E402
from kernelarena.schema import EvaluatorSpec  # noqa: E402
from kernelarena.store import TraceSet  # noqa: E402
from tests.interop.public_definitions import DEFINITIONS, write_dataset  # noqa: E402


@pytest.fixture(scope="module")
def public_dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("public"))


def test_definitions_with_tensor_constraints_load(public_dataset):
    ds = TraceSet.load(public_dataset)
    assert not ds.problems, ds.problems
    assert set(ds.definitions) == {d["name"] for d in DEFINITIONS}
    decode = ds.definitions["mla_paged_decode_h16_ckv512_kpe64_ps1"]
    assert decode.constraints == ["len_indptr == batch_size + 1", "num_kv_indices == kv_indptr[-1].item()"]


def test_validate_checks_tensor_constraints_on_stored_blobs(public_dataset, tmp_path):
    import shutil

    from safetensors.torch import save_file

    broken = tmp_path / "broken"
    shutil.copytree(public_dataset, broken)
    (blob,) = (broken / "blob").rglob("gqa_paged_decode_h32_kv8_d128_ps1-3.safetensors")
    save_file({"kv_indptr": torch.tensor([0, 2], dtype=torch.int32),
               "kv_indices": torch.tensor([0, 1, 2], dtype=torch.int32)}, str(blob))
    problems = [str(p) for p in TraceSet.load(broken, strict=False).problems]
    assert any("num_kv_indices == kv_indptr[-1].item()" in p and "does not hold" in p for p in problems), problems


def test_kernelarena_runs_the_public_definitions_reference_against_itself(public_dataset):
    ds = TraceSet.load(public_dataset)
    # 100 draws per row keep the CPU check short (sorting a 128256 vocabulary row costs ~0.1 s here); the
    # default is 10000 on a GPU. The run's evaluator overrides the one the sampling op_type picks.
    config = RunConfig(devices=("cpu",), timeout_s=120, timing=TimingConfig(warmup=0, reps=1), correctness_rounds=2,
                       evaluator=None)
    sampling_config = RunConfig(devices=("cpu",), timeout_s=120, timing=TimingConfig(warmup=0, reps=1),
                                correctness_rounds=1, evaluator=EvaluatorSpec(kind="sampling", draws=100))
    traces = run(ds, config, definitions=[d["name"] for d in DEFINITIONS[:2]], save=False).traces
    traces += run(ds, sampling_config, definitions=[DEFINITIONS[2]["name"]], workloads=[
        f"{DEFINITIONS[2]['name']}-b1"], save=False).traces
    failed = {(t.definition, t.workload.uuid): t.evaluation.log[-600:] for t in traces
              if t.evaluation.status.value != "PASSED"}
    assert len(traces) == 5 and not failed, failed
    (sampling,) = [t for t in traces if t.definition.startswith("top_k_top_p")]
    assert sampling.evaluation.correctness.max_absolute_error > 0  # a TVD was measured


def test_a_sampler_that_ignores_top_p_fails(public_dataset, tmp_path):
    import shutil

    from kernelarena.schema import Solution

    root = tmp_path / "ds"
    shutil.copytree(public_dataset, root)
    ds = TraceSet.load(root)
    name = "top_k_top_p_sampling_from_probs_v128256"
    wrong = ("import torch\n\ndef run(probs, top_k, top_p):\n"
             "    return torch.multinomial(probs.float(), 1)[:, 0]\n")
    ds.add_solution(Solution.model_validate({
        "name": "ignores_filters", "definition": name, "author": "test",
        "spec": {"language": "python", "target_hardware": ["cpu"], "entry_point": "main.py::run",
                 "destination_passing_style": False},
        "sources": [{"path": "main.py", "content": wrong}]}))
    config = RunConfig(devices=("cpu",), timeout_s=120, timing=TimingConfig(warmup=0, reps=1), correctness_rounds=1,
                       evaluator=EvaluatorSpec(kind="sampling", draws=100))
    report = run(ds, config, solutions=["ignores_filters"], workloads=[f"{name}-b1"])
    (trace,) = report.traces
    assert trace.evaluation.status.value == "INCORRECT_NUMERICAL", trace.evaluation.log[-800:]
    assert "excludes" in trace.evaluation.log
