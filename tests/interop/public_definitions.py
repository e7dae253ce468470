"""A few public FlashInfer-Trace definitions (names, axes, inputs, outputs and constraints as published; the
reference code written here to the same semantics) and workloads whose structural inputs are safetensors
blobs, written with FlashInfer-Bench's own classes: a dataset in FlashInfer-Bench's format."""

from __future__ import annotations

from pathlib import Path

import torch

_GQA_REFERENCE = '''
import math
import torch


@torch.no_grad()
def run(q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale):
    batch, heads, dim = q.shape
    group = heads // k_cache.shape[2]
    out = torch.zeros(batch, heads, dim, dtype=torch.bfloat16, device=q.device)
    lse = torch.full((batch, heads), -math.inf, dtype=torch.float32, device=q.device)
    for b in range(batch):
        pages = kv_indices[int(kv_indptr[b]):int(kv_indptr[b + 1])].long()
        if pages.numel() == 0:
            continue
        k = k_cache[pages, 0].float().repeat_interleave(group, dim=1)
        v = v_cache[pages, 0].float().repeat_interleave(group, dim=1)
        logits = torch.einsum("hd,thd->ht", q[b].float(), k) * sm_scale
        lse[b] = torch.logsumexp(logits, dim=-1) / math.log(2.0)
        out[b] = torch.einsum("ht,thd->hd", torch.softmax(logits, dim=-1), v).to(torch.bfloat16)
    return out, lse
'''

_MLA_REFERENCE = '''
import math
import torch


@torch.no_grad()
def run(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale):
    batch, heads, dim = q_nope.shape
    out = torch.zeros(batch, heads, dim, dtype=torch.bfloat16, device=q_nope.device)
    lse = torch.full((batch, heads), -math.inf, dtype=torch.float32, device=q_nope.device)
    for b in range(batch):
        pages = kv_indices[int(kv_indptr[b]):int(kv_indptr[b + 1])].long()
        if pages.numel() == 0:
            continue
        ckv, kpe = ckv_cache[pages, 0].float(), kpe_cache[pages, 0].float()
        logits = (q_nope[b].float() @ ckv.T + q_pe[b].float() @ kpe.T) * sm_scale
        lse[b] = torch.logsumexp(logits, dim=-1) / math.log(2.0)
        out[b] = (torch.softmax(logits, dim=-1) @ ckv).to(torch.bfloat16)
    return out, lse
'''

GQA_DECODE = {
    "name": "gqa_paged_decode_h32_kv8_d128_ps1",
    "op_type": "gqa_paged",
    "description": "Batched GQA decode over a paged KV cache, page size 1.",
    "tags": ["status:verified", "model:llama-3.1-8b"],
    "axes": {"batch_size": {"type": "var"}, "num_qo_heads": {"type": "const", "value": 32},
             "num_kv_heads": {"type": "const", "value": 8}, "head_dim": {"type": "const", "value": 128},
             "num_pages": {"type": "var"}, "page_size": {"type": "const", "value": 1},
             "len_indptr": {"type": "var"}, "num_kv_indices": {"type": "var"}},
    "constraints": ["len_indptr == batch_size + 1", "num_kv_indices == kv_indptr[-1].item()"],
    "inputs": {"q": {"shape": ["batch_size", "num_qo_heads", "head_dim"], "dtype": "bfloat16"},
               "k_cache": {"shape": ["num_pages", "page_size", "num_kv_heads", "head_dim"], "dtype": "bfloat16"},
               "v_cache": {"shape": ["num_pages", "page_size", "num_kv_heads", "head_dim"], "dtype": "bfloat16"},
               "kv_indptr": {"shape": ["len_indptr"], "dtype": "int32"},
               "kv_indices": {"shape": ["num_kv_indices"], "dtype": "int32"},
               "sm_scale": {"shape": None, "dtype": "float32"}},
    "outputs": {"output": {"shape": ["batch_size", "num_qo_heads", "head_dim"], "dtype": "bfloat16"},
                "lse": {"shape": ["batch_size", "num_qo_heads"], "dtype": "float32"}},
    "reference": _GQA_REFERENCE,
}

MLA_DECODE = {
    "name": "mla_paged_decode_h16_ckv512_kpe64_ps1",
    "op_type": "mla_paged",
    "description": "Batched MLA decode (absorbed) over a paged compressed KV cache, page size 1.",
    "tags": ["status:verified", "model:deepseek-v3"],
    "axes": {"batch_size": {"type": "var"}, "num_qo_heads": {"type": "const", "value": 16},
             "head_dim_ckv": {"type": "const", "value": 512}, "head_dim_kpe": {"type": "const", "value": 64},
             "page_size": {"type": "const", "value": 1}, "num_pages": {"type": "var"},
             "len_indptr": {"type": "var"}, "num_kv_indices": {"type": "var"}},
    "constraints": ["len_indptr == batch_size + 1", "num_kv_indices == kv_indptr[-1].item()"],
    "inputs": {"q_nope": {"shape": ["batch_size", "num_qo_heads", "head_dim_ckv"], "dtype": "bfloat16"},
               "q_pe": {"shape": ["batch_size", "num_qo_heads", "head_dim_kpe"], "dtype": "bfloat16"},
               "ckv_cache": {"shape": ["num_pages", "page_size", "head_dim_ckv"], "dtype": "bfloat16"},
               "kpe_cache": {"shape": ["num_pages", "page_size", "head_dim_kpe"], "dtype": "bfloat16"},
               "kv_indptr": {"shape": ["len_indptr"], "dtype": "int32"},
               "kv_indices": {"shape": ["num_kv_indices"], "dtype": "int32"},
               "sm_scale": {"shape": None, "dtype": "float32"}},
    "outputs": {"output": {"shape": ["batch_size", "num_qo_heads", "head_dim_ckv"], "dtype": "bfloat16"},
                "lse": {"shape": ["batch_size", "num_qo_heads"], "dtype": "float32"}},
    "reference": _MLA_REFERENCE,
}

TOP_K_TOP_P = {
    "name": "top_k_top_p_sampling_from_probs_v128256",
    "op_type": "sampling",
    "description": "Top-k then top-p sampling from probabilities, vocabulary 128256.",
    "tags": ["status:verified", "model:llama-3.1-8b"],
    "axes": {"batch_size": {"type": "var"}, "vocab_size": {"type": "const", "value": 128256}},
    "inputs": {"probs": {"shape": ["batch_size", "vocab_size"], "dtype": "float32"},
               "top_k": {"shape": ["batch_size"], "dtype": "int32"},
               "top_p": {"shape": ["batch_size"], "dtype": "float32"}},
    "outputs": {"samples": {"shape": ["batch_size"], "dtype": "int64"}},
    "reference": '''
import torch


@torch.no_grad()
def run(probs, top_k, top_p):
    rows = probs.float()
    samples = torch.empty(rows.shape[0], dtype=torch.int64, device=probs.device)
    for i in range(rows.shape[0]):
        row, k, p = rows[i], int(top_k[i]), float(top_p[i])
        if 0 < k < row.numel():
            kept = torch.zeros_like(row)
            top = torch.topk(row, k).indices
            kept[top] = row[top]
            row = kept / kept.sum()
        if p <= 0:
            samples[i] = torch.argmax(row)
            continue
        if p < 1:
            values, order = torch.sort(row, descending=True)
            drop = (torch.cumsum(values, 0) - values) > p
            row = row.clone()
            row[order[drop]] = 0
        samples[i] = torch.multinomial(row / row.sum(), 1)[0]
    return samples
''',
}

DEFINITIONS = [GQA_DECODE, MLA_DECODE, TOP_K_TOP_P]


def _page_table(lengths: list[int], num_pages: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    indptr = torch.tensor([0] + list(torch.tensor(lengths).cumsum(0)), dtype=torch.int32)
    indices = torch.randperm(num_pages, generator=generator)[: int(indptr[-1])].to(torch.int32)
    return {"kv_indptr": indptr, "kv_indices": indices}


def write_dataset(root: Path) -> Path:
    """The definitions above with a few small workloads each, saved by FlashInfer-Bench's classes under
    ``root``; the page tables as safetensors blobs under blob/."""
    from flashinfer_bench import data as fib
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(0)
    traces = []
    for record in DEFINITIONS:
        definition = fib.Definition.model_validate(record)
        fib.save_json_file(definition, root / "definitions" / definition.op_type / f"{definition.name}.json")
        solution = fib.Solution.model_validate({
            "name": f"{definition.name}_reference", "definition": definition.name, "author": "test",
            "spec": {"language": "python", "target_hardware": ["cpu", "cuda"], "entry_point": "main.py::run",
                     "destination_passing_style": False},
            "sources": [{"path": "main.py", "content": definition.reference}]})
        fib.save_json_file(solution, root / "solutions" / definition.op_type / definition.name
                           / f"{solution.name}.json")
        if definition.op_type == "sampling":
            for batch in (1, 2):
                traces.append(fib.Trace(definition=definition.name, workload=fib.Workload(
                    uuid=f"{definition.name}-b{batch}", axes={"batch_size": batch},
                    inputs={n: fib.RandomInput() for n in definition.inputs})))
            continue
        for lengths in ([3], [5, 1, 7]):
            num_pages = sum(lengths) + 4
            table = _page_table(lengths, num_pages, generator)
            uuid = f"{definition.name}-{'-'.join(map(str, lengths))}"
            blob = f"blob/workloads/{definition.op_type}/{definition.name}/{uuid}.safetensors"
            (root / blob).parent.mkdir(parents=True, exist_ok=True)
            save_file(table, str(root / blob))
            inputs = {n: fib.RandomInput() for n in definition.inputs}
            inputs |= {n: fib.SafetensorsInput(path=blob, tensor_key=n) for n in table}
            inputs["sm_scale"] = fib.ScalarInput(value=0.08)
            traces.append(fib.Trace(definition=definition.name, workload=fib.Workload(
                uuid=uuid, inputs=inputs,
                axes={"batch_size": len(lengths), "len_indptr": len(lengths) + 1, "num_pages": num_pages,
                      "num_kv_indices": sum(lengths)})))
    for definition in {t.definition for t in traces}:
        op_type = next(d["op_type"] for d in DEFINITIONS if d["name"] == definition)
        path = root / "workloads" / op_type / f"{definition}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(t.model_dump_json(exclude_none=True) + "\n" for t in traces
                                if t.definition == definition))
    return root
