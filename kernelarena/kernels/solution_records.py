"""Dataset Solution records of the decode-step operators (gemm, silu_and_mul, rope, sampling, mla, moe), each built
from its kernel package's own files: the Triton module and the FlashInfer baseline, embedded verbatim
under a file name of their own (a file named triton.py would shadow the triton package where it is loaded).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
AUTHOR = "kernelarena"
_ALIAS = ("\n\n# Entry point of this solution's definition (appended by kernelarena's solution_records.py).\n"
          "run = {entry}\n")

# Definition -> (operator package, entry function in its modules, what the kernel does)
DEFINITIONS = {
    "gemm_n6144_k4096": ("gemm", "run", "Llama-3.1-8B qkv_proj"),
    "gemm_n4096_k4096": ("gemm", "run", "Llama-3.1-8B o_proj"),
    "gemm_n28672_k4096": ("gemm", "run", "Llama-3.1-8B gate_up_proj"),
    "gemm_n4096_k14336": ("gemm", "run", "Llama-3.1-8B down_proj"),
    "silu_and_mul_d14336": ("silu_and_mul", "run", "Llama-3.1-8B MLP activation"),
    "rope_with_cos_sin_cache_neox_style_d128_rd128": ("rope", "run", "Llama-3.1-8B RoPE on q and k"),
    "top_k_sampling_from_probs_v128256": ("sampling", "run_top_k", "top-k sampling"),
    "top_p_sampling_from_probs_v128256": ("sampling", "run_top_p", "top-p sampling"),
    "top_k_top_p_sampling_from_probs_v128256": ("sampling", "run_top_k_top_p", "top-k then top-p sampling"),
    "mla_paged_decode_h16_ckv512_kpe64_ps1": ("mla", "run", "DeepSeek MLA paged decode"),
    "moe_bf16_ds_routing_topk8_ng8_kg4_e32_h7168_i2048": ("moe", "run", "DeepSeek-V3 bf16 MoE (32 local experts)"),
    "moe_bf16_ds_routing_topk8_ng8_kg4_e32_h256_i128": ("moe", "run", "bf16 MoE, DeepSeek-V3 routing, hidden 256"),
}
# Where our Triton solution may run. The CPU means Triton's interpreter, which pays per element and per
# operation: the larger GEMM weights (60-117M elements) and the sampler's ~64 passes over 128256 tokens take
# minutes a call there, so those run on the GPU only (the sampler is checked on the CPU at a small vocabulary
# by tests/kernels/test_sampling_triton.py).
_CPU_TOO = {"gemm_n4096_k4096", "silu_and_mul_d14336", "rope_with_cos_sin_cache_neox_style_d128_rd128",
            "mla_paged_decode_h16_ckv512_kpe64_ps1", "moe_bf16_ds_routing_topk8_ng8_kg4_e32_h256_i128"}
_TRITON_NOTES = {
    "gemm": "tiled tl.dot with float32 accumulation, grouped tile order, tiles chosen by M",
    "silu_and_mul": "one pass, float32 math, one program per row and column block",
    "rope": "one program per token rotates all q and k heads with one cos/sin load",
    "mla": "one program per request for all 16 heads (each token's compressed KV read once), online softmax",
    "moe": "routing in torch, then two grouped GEMMs over the routed rows sorted by expert (gate/up with SwiGLU, "
           "down with the routing weight), float32 intermediate",
    "sampling": "exact and sort-free: binary searches over float bit patterns for the top-k and top-p "
                "thresholds, an inverse-CDF draw from Philox",
}


def _source(op: str, module: str, entry: str) -> str:
    text = (HERE / op / f"{module}.py").read_text()
    return text if entry == "run" else text + _ALIAS.format(entry=entry)


def _spec(language: str, entry_point: str, hardware: list[str], dependencies: list[str]) -> dict:
    return {"language": language, "target_hardware": hardware, "entry_point": entry_point,
            "destination_passing_style": True, "dependencies": dependencies}


def solution_records() -> list[dict]:
    """Solution dicts per definition: ours in Triton (CUDA, and the CPU under the interpreter where that takes
    seconds) and FlashInfer's where the operator has a flashinfer.py."""
    records = []
    for definition, (op, entry, what) in DEFINITIONS.items():
        records.append({
            "name": f"{definition}_kernelarena_triton", "definition": definition, "author": AUTHOR,
            "description": f"{what} in Triton: {_TRITON_NOTES[op]}.",
            "spec": _spec("triton", f"{op}_triton.py::run", ["cpu", "cuda"] if definition in _CPU_TOO else ["cuda"],
                          []),
            "sources": [{"path": f"{op}_triton.py", "content": _source(op, "triton", entry)}]})
        if not (HERE / op / "flashinfer.py").exists():
            continue
        records.append({
            "name": f"{definition}_flashinfer", "definition": definition, "author": AUTHOR,
            "description": f"Baseline: FlashInfer's kernel for {what}.",
            "spec": _spec("python", f"{op}_flashinfer.py::run", ["cuda"], ["flashinfer"]),
            "sources": [{"path": f"{op}_flashinfer.py", "content": _source(op, "flashinfer", entry)}]})
    return records
