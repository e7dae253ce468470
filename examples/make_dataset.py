"""Write the example dataset (examples/dataset/) from the references and kernel sources in this repo.

    python examples/make_dataset.py [--out examples/dataset]

Definitions used by LLM serving: rmsnorm and fused_add_rmsnorm (hidden 4096 and 8192, bf16), GQA paged decode
and causal paged prefill (32 query heads, 8 KV heads, head_dim 128, page size 16), and the rest of a
Llama-3.1-8B decode step (decode_step.py: GEMMs, silu_and_mul, RoPE, sampling). Each has its PyTorch
reference (examples/references/ or kernelarena/kernels/<op>/reference.py), realistic workloads, a plain
PyTorch solution, and our kernels' solutions. Inputs a reference's make_inputs builds (page tables, positions)
are stored as safetensors blobs under blob/.
The dataset is committed; tests/examples/test_example_dataset.py checks that it matches this script.
"""

from __future__ import annotations

import argparse
import math
import shutil
import uuid
from pathlib import Path

import decode_step

from kernelarena.schema import Definition, Solution, Trace, Workload
from kernelarena.store import TraceSet

HERE = Path(__file__).parent
REFERENCES = HERE / "references"
NAMESPACE = uuid.UUID("6f1c2a52-8f0e-4c53-9a0e-6b1f3d2f9c11")


def _reference(name: str) -> str:
    return (REFERENCES / f"{name}.py").read_text()


def _bf16(*shape: str) -> dict:
    return {"shape": list(shape), "dtype": "bfloat16"}


def norm_definitions() -> list[Definition]:
    out = []
    for hidden in (4096, 8192):
        axes = {"batch_size": {"type": "var", "description": "Number of tokens."},
                "hidden_size": {"type": "const", "value": hidden}}
        out.append(Definition(
            name=f"rmsnorm_h{hidden}", op_type="rmsnorm", axes=axes,
            description=f"RMSNorm over hidden size {hidden}, eps 1e-6, float32 accumulation.",
            inputs={"hidden_states": _bf16("batch_size", "hidden_size"), "weight": _bf16("hidden_size")},
            outputs={"output": _bf16("batch_size", "hidden_size")},
            reference=_reference("rmsnorm"), tags=["status:verified", "model:llama-3", "fi_api:rmsnorm"]))
        out.append(Definition(
            name=f"fused_add_rmsnorm_h{hidden}", op_type="rmsnorm", axes=axes,
            description=f"residual + hidden_states, then RMSNorm of the sum (hidden {hidden}, eps 1e-6). "
                        "Outputs the normalized sum and the sum itself.",
            inputs={"hidden_states": _bf16("batch_size", "hidden_size"),
                    "residual": _bf16("batch_size", "hidden_size"), "weight": _bf16("hidden_size")},
            outputs={"output": _bf16("batch_size", "hidden_size"),
                     "residual_out": _bf16("batch_size", "hidden_size")},
            reference=_reference("fused_add_rmsnorm"), tags=["status:verified", "fi_api:fused_add_rmsnorm"]))
    return out


def _attention_axes(extra: dict) -> dict:
    return {**extra,
            "num_qo_heads": {"type": "const", "value": 32}, "num_kv_heads": {"type": "const", "value": 8},
            "head_dim": {"type": "const", "value": 128}, "page_size": {"type": "const", "value": 16},
            "num_pages": {"type": "var", "description": "Pages in the KV cache."},
            "len_indptr": {"type": "var", "description": "batch_size + 1."},
            "num_kv_indices": {"type": "var", "description": "Pages used by the batch."}}


def _cache() -> dict:
    return {"k_cache": _bf16("num_pages", "page_size", "num_kv_heads", "head_dim"),
            "v_cache": _bf16("num_pages", "page_size", "num_kv_heads", "head_dim")}


def _int32(*shape: str) -> dict:
    return {"shape": list(shape), "dtype": "int32"}


def attention_definitions() -> list[Definition]:
    table = {"kv_indptr": _int32("len_indptr"), "kv_indices": _int32("num_kv_indices"),
             "kv_last_page_len": _int32("batch_size")}
    scale = {"sm_scale": {"shape": None, "dtype": "float32", "description": "Softmax scale, 1/sqrt(head_dim)."}}
    common = ["len_indptr == batch_size + 1", "num_kv_indices >= batch_size", "num_pages >= num_kv_indices"]
    decode = Definition(
        name="gqa_paged_decode_h32_kv8_d128_ps16", op_type="gqa_paged",
        description="Batch decode (one query token per request) with grouped-query attention over a paged KV "
                    "cache in CSR form. lse is log2-sum-exp of the scaled logits, as FlashInfer returns it.",
        axes=_attention_axes({"batch_size": {"type": "var"}}),
        inputs={"q": _bf16("batch_size", "num_qo_heads", "head_dim"), **_cache(), **table, **scale},
        outputs={"output": _bf16("batch_size", "num_qo_heads", "head_dim"),
                 "lse": {"shape": ["batch_size", "num_qo_heads"], "dtype": "float32"}},
        reference=_reference("gqa_paged_decode"), constraints=common, plan_inputs=list(table),
        tags=["status:verified", "model:llama-3.1-8b", "fi_api:BatchDecodeWithPagedKVCacheWrapper"])
    prefill = Definition(
        name="gqa_paged_prefill_causal_h32_kv8_d128_ps16", op_type="gqa_paged",
        description="Batch prefill with causal masking (queries aligned to the end of each sequence), GQA, "
                    "over a paged KV cache in CSR form; variable query lengths by qo_indptr.",
        axes=_attention_axes({"batch_size": {"type": "var"}, "total_q": {"type": "var"}}),
        inputs={"q": _bf16("total_q", "num_qo_heads", "head_dim"), **_cache(),
                "qo_indptr": _int32("len_indptr"), **table, **scale},
        outputs={"output": _bf16("total_q", "num_qo_heads", "head_dim"),
                 "lse": {"shape": ["total_q", "num_qo_heads"], "dtype": "float32"}},
        reference=_reference("gqa_paged_prefill"), constraints=common + ["total_q >= batch_size"],
        plan_inputs=["qo_indptr", *table],
        tags=["status:verified", "model:llama-3.1-8b", "fi_api:BatchPrefillWithPagedKVCacheWrapper"])
    return [decode, prefill]


def _workload(definition: Definition, axes: dict, inputs: dict | None = None) -> Trace:
    key = definition.name + repr(sorted(axes.items()))
    return Trace(definition=definition.name, workload=Workload(
        uuid=str(uuid.uuid5(NAMESPACE, key)), axes=axes,
        inputs={name: {"type": "random"} for name in definition.inputs} | (inputs or {})))


def with_structural_blobs(dataset: TraceSet, traces: list[Trace]) -> list[Trace]:
    """``traces`` with the inputs their reference's make_inputs builds (page tables, index pointers) stored as
    safetensors blobs, built once per workload with a seed from its uuid: any runner, FlashInfer-Bench
    included, then reads a valid page table instead of drawing random page indices."""
    import torch

    from kernelarena.bench.inputs import reference_module

    out = []
    for trace in traces:
        definition = dataset.definitions[trace.definition]
        maker = getattr(reference_module(definition), "make_inputs", None)
        if maker is None:
            out.append(trace)
            continue
        seed = uuid.UUID(trace.workload.uuid).int % (1 << 63)
        made = maker({**definition.const_axes, **trace.workload.axes}, "cpu", torch.Generator().manual_seed(seed))
        path = dataset.save_blob(definition.name, made, uuid=trace.workload.uuid)
        stored = {name: {"type": "safetensors", "path": path, "tensor_key": name} for name in made}
        workload = Workload.model_validate({**trace.workload.to_json_dict(),
                                            "inputs": {**trace.workload.to_json_dict()["inputs"], **stored}})
        out.append(Trace(definition=trace.definition, workload=workload))
    return out


def workloads(definitions: dict[str, Definition]) -> list[Trace]:
    out = []
    for hidden, batches in ((4096, (1, 32, 1024, 8192)), (8192, (1, 32, 1024, 4096))):
        for prefix in ("rmsnorm", "fused_add_rmsnorm"):
            d = definitions[f"{prefix}_h{hidden}"]
            out += [_workload(d, {"batch_size": b}) for b in batches]
    scale = {"sm_scale": {"type": "scalar", "value": 1 / math.sqrt(128)}}
    decode = definitions["gqa_paged_decode_h32_kv8_d128_ps16"]
    for batch, kv_len in ((1, 1024), (1, 4096), (16, 2048), (64, 4096)):
        used = batch * kv_len // 16
        out.append(_workload(decode, {"batch_size": batch, "len_indptr": batch + 1, "num_kv_indices": used,
                                      "num_pages": used + used // 8}, scale))
    prefill = definitions["gqa_paged_prefill_causal_h32_kv8_d128_ps16"]
    for batch, q_len, kv_len in ((1, 32, 128), (4, 256, 1024), (16, 512, 4096)):
        used = batch * kv_len // 16
        out.append(_workload(prefill, {"batch_size": batch, "total_q": batch * q_len, "len_indptr": batch + 1,
                                       "num_kv_indices": used, "num_pages": used}, scale))
    return out


def decode_step_workloads(definitions: dict[str, Definition]) -> list[Trace]:
    return [_workload(definitions[name], axes, decode_step.workload_inputs(name))
            for name, grid in decode_step.workload_axes().items() for axes in grid]


def pytorch_solutions(definitions: list[Definition]) -> list[Solution]:
    """The plain PyTorch solution of each definition: its reference, returning outputs."""
    return [Solution(
        name=f"{d.name}_pytorch", definition=d.name, author="kernelarena",
        description="Plain PyTorch (the reference computation), value-returning.",
        spec={"language": "python", "target_hardware": ["cpu", "cuda"] if decode_step.runs_on_cpu(d.name) else ["cuda"],
              "entry_point": "main.py::run",
              "destination_passing_style": False},
        sources=[{"path": "main.py", "content": d.reference}]) for d in definitions]


def kernel_solutions() -> list[Solution]:
    """Solutions of our own kernels (kernelarena.kernels.*.solutions)."""
    from kernelarena.kernels.attention.solutions import solution_records as attention
    from kernelarena.kernels.rmsnorm.solutions import solution_records as rmsnorm
    from kernelarena.kernels.solution_records import solution_records as decode_step_ops

    return [Solution.model_validate(record) for record in rmsnorm() + attention() + decode_step_ops()]


def write_dataset(out: Path, with_kernels: bool = True) -> TraceSet:
    """Replace ``out`` with a freshly generated example dataset and return it."""
    if out.exists():
        shutil.rmtree(out)
    dataset = TraceSet(out)
    definitions = norm_definitions() + attention_definitions() + decode_step.definitions()
    for d in definitions:
        dataset.add_definition(d)
    for s in pytorch_solutions(definitions) + (kernel_solutions() if with_kernels else []):
        dataset.add_solution(s)
    dataset.add_workloads(with_structural_blobs(dataset, workloads(dataset.definitions)
                                                + decode_step_workloads(dataset.definitions)))
    return dataset


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "dataset")
    parser.add_argument("--no-kernels", action="store_true", help="only the PyTorch solutions")
    args = parser.parse_args()
    ds = write_dataset(args.out, with_kernels=not args.no_kernels)
    print(f"wrote {args.out}: {len(ds.definitions)} definitions, {len(ds.solutions)} solutions, "
          f"{sum(len(w) for w in ds.workloads.values())} workloads")
