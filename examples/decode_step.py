"""The rest of a Llama-3.1-8B decode step for the example dataset, named as FlashInfer-Trace names them: the
four GEMMs (qkv, o, gate_up, down), silu_and_mul, RoPE with a cos/sin cache (NeoX style), the three
samplers over the 128256-token vocabulary, DeepSeek's MLA paged decode, and a bf16 MoE with DeepSeek-V3 routing
(top 8 of 256 experts, 32 local experts as with expert parallelism 8) at DeepSeek-V3's sizes and at a small
hidden size the CPU runs. References come from kernelarena/kernels/<op>/reference.py.
"""

from __future__ import annotations

import math
from pathlib import Path

from kernelarena.schema import Definition

KERNELS = Path(__file__).resolve().parents[1] / "kernelarena" / "kernels"
LLAMA_GEMMS = {"qkv_proj": (6144, 4096), "o_proj": (4096, 4096), "gate_up_proj": (28672, 4096),
               "down_proj": (4096, 14336)}
VOCAB = 128256
# bf16 MoE with DeepSeek-V3 routing, named as FlashInfer-Trace's moe_fp8_block_scale_ds_routing_* without the
# fp8 block scales: (hidden_size, intermediate_size) -> what the size is for.
MOE_SIZES = {(7168, 2048): "DeepSeek-V3/R1, expert parallelism 8", (256, 128): "a CPU-sized variant (no model)"}
MOE_EXPERTS, MOE_LOCAL_EXPERTS = 256, 32
_SAMPLERS = {  # definition prefix -> (inputs beyond probs, call of the reference's sample())
    "top_k_sampling_from_probs": (("top_k",), "sample(probs, top_k=top_k)"),
    "top_p_sampling_from_probs": (("top_p",), "sample(probs, top_p=top_p)"),
    "top_k_top_p_sampling_from_probs": (("top_k", "top_p"), "sample(probs, top_k=top_k, top_p=top_p)"),
}


def _reference(op: str) -> str:
    return (KERNELS / op / "reference.py").read_text()


def _t(dtype: str, *shape: str) -> dict:
    return {"shape": list(shape), "dtype": dtype}


def definitions() -> list[Definition]:
    out = []
    for layer, (n, k) in LLAMA_GEMMS.items():
        out.append(Definition(
            name=f"gemm_n{n}_k{k}", op_type="gemm", description=f"C = A @ B.T (Llama-3.1-8B {layer}), bf16.",
            axes={"M": {"type": "var"}, "N": {"type": "const", "value": n}, "K": {"type": "const", "value": k}},
            inputs={"A": _t("bfloat16", "M", "K"), "B": _t("bfloat16", "N", "K")},
            outputs={"C": _t("bfloat16", "M", "N")}, reference=_reference("gemm"),
            tags=["status:verified", "model:llama-3.1-8b", "fi_api:flashinfer.gemm.mm_bf16"],
            roofline={"bytes": "2 * (M * K + N * K + M * N)", "flops": "2 * M * N * K"}))
    out.append(Definition(
        name="silu_and_mul_d14336", op_type="activation",
        description="silu(x[:, :d]) * x[:, d:] (Llama-3.1-8B MLP, intermediate 14336), float32 math, bf16.",
        axes={"batch_size": {"type": "var"}, "d": {"type": "const", "value": 14336},
              "two_d": {"type": "const", "value": 28672}},
        inputs={"x": _t("bfloat16", "batch_size", "two_d")}, outputs={"output": _t("bfloat16", "batch_size", "d")},
        reference=_reference("silu_and_mul"),
        tags=["status:verified", "model:llama-3.1-8b", "fi_api:flashinfer.activation.silu_and_mul"],
        roofline={"bytes": "2 * batch_size * (two_d + d)", "flops": "4 * batch_size * d"}))
    out.append(Definition(
        name="rope_with_cos_sin_cache_neox_style_d128_rd128", op_type="rope",
        description="RoPE on q and k from a cos/sin cache (cos first half, sin second), NeoX style (halves "
                    "rotated), head size and rotary dim 128 (Llama-3.1-8B); float32 math.",
        axes={"num_tokens": {"type": "var"}, "num_qo_heads": {"type": "var"}, "num_kv_heads": {"type": "var"},
              "max_seq_len": {"type": "var"}, "head_size": {"type": "const", "value": 128},
              "rotary_dim": {"type": "const", "value": 128}},
        inputs={"q": _t("bfloat16", "num_tokens", "num_qo_heads", "head_size"),
                "k": _t("bfloat16", "num_tokens", "num_kv_heads", "head_size"),
                "cos_sin_cache": _t("float32", "max_seq_len", "rotary_dim"),
                "positions": _t("int64", "num_tokens")},
        outputs={"q_out": _t("bfloat16", "num_tokens", "num_qo_heads", "head_size"),
                 "k_out": _t("bfloat16", "num_tokens", "num_kv_heads", "head_size")},
        reference=_reference("rope"),
        constraints=["max(positions).item() < max_seq_len"],
        tags=["status:verified", "model:llama-3.1-8b",
              "fi_api:flashinfer.rope.apply_rope_with_cos_sin_cache_inplace"],
        roofline={"bytes": "4 * num_tokens * (num_qo_heads + num_kv_heads) * head_size + 4 * num_tokens * rotary_dim"}))
    for prefix, (params, call) in _SAMPLERS.items():
        args = ", ".join(("probs",) + params)
        out.append(Definition(
            name=f"{prefix}_v{VOCAB}", op_type="sampling",
            description=f"{prefix.replace('_', ' ')} over a {VOCAB}-token vocabulary (Llama-3.1-8B): one token "
                        "per row; top-k first, then top-p on the renormalized rest. Judged by the sampling "
                        "evaluator (many draws against the filtered distribution).",
            axes={"batch_size": {"type": "var"}, "vocab_size": {"type": "const", "value": VOCAB}},
            inputs={"probs": _t("float32", "batch_size", "vocab_size"),
                    **{p: _t("int32" if p == "top_k" else "float32", "batch_size") for p in params}},
            outputs={"samples": _t("int64", "batch_size")},
            reference=_reference("sampling") + f"\n\ndef run({args}):\n    return {call}\n",
            tags=["status:verified", "model:llama-3.1-8b", f"fi_api:flashinfer.sampling.{prefix}"],
            roofline={"bytes": "4 * batch_size * vocab_size"}))
    out.append(Definition(
        name="mla_paged_decode_h16_ckv512_kpe64_ps1", op_type="mla_paged",
        description="Batch decode with multi-head latent attention (DeepSeek, absorbed form): 16 heads share a "
                    "512-wide compressed KV and a 64-wide rotary key per token, paged (page size 1) in CSR form. "
                    "lse is log2-sum-exp of the scaled logits.",
        axes={"batch_size": {"type": "var"}, "num_qo_heads": {"type": "const", "value": 16},
              "head_dim_ckv": {"type": "const", "value": 512}, "head_dim_kpe": {"type": "const", "value": 64},
              "page_size": {"type": "const", "value": 1}, "num_pages": {"type": "var"},
              "len_indptr": {"type": "var"}, "num_kv_indices": {"type": "var"}},
        inputs={"q_nope": _t("bfloat16", "batch_size", "num_qo_heads", "head_dim_ckv"),
                "q_pe": _t("bfloat16", "batch_size", "num_qo_heads", "head_dim_kpe"),
                "ckv_cache": _t("bfloat16", "num_pages", "page_size", "head_dim_ckv"),
                "kpe_cache": _t("bfloat16", "num_pages", "page_size", "head_dim_kpe"),
                "kv_indptr": _t("int32", "len_indptr"), "kv_indices": _t("int32", "num_kv_indices"),
                "sm_scale": {"shape": None, "dtype": "float32"}},
        outputs={"output": _t("bfloat16", "batch_size", "num_qo_heads", "head_dim_ckv"),
                 "lse": _t("float32", "batch_size", "num_qo_heads")},
        reference=_reference("mla"),
        constraints=["len_indptr == batch_size + 1", "num_kv_indices == kv_indptr[-1].item()"],
        plan_inputs=["kv_indptr", "kv_indices"],
        tags=["status:verified", "model:deepseek-v3", "fi_api:flashinfer.mla.BatchMLAPagedAttentionWrapper"],
        roofline={"bytes": "2 * num_kv_indices * (head_dim_ckv + head_dim_kpe) "
                           "+ 4 * batch_size * num_qo_heads * (head_dim_ckv + head_dim_kpe)",
                  "flops": "2 * num_kv_indices * num_qo_heads * (2 * head_dim_ckv + head_dim_kpe)"}))
    out += [_moe_definition(h, i, what) for (h, i), what in MOE_SIZES.items()]
    return out


def moe_name(hidden: int, inter: int) -> str:
    return f"moe_bf16_ds_routing_topk8_ng8_kg4_e{MOE_LOCAL_EXPERTS}_h{hidden}_i{inter}"


def _moe_definition(hidden: int, inter: int, what: str) -> Definition:
    return Definition(
        name=moe_name(hidden, inter), op_type="moe",
        description=f"bf16 MoE ({what}): DeepSeek-V3 no-aux routing (sigmoid scores plus bias pick 4 of 8 "
                    "expert groups, then the top 8 experts; weights from the scores without bias, normalized, "
                    "times routed_scaling_factor), then for the local experts GEMM1 ([up; gate]) -> "
                    "silu(gate) * up -> GEMM2, summed with the routing weights. float32 math throughout, bf16 "
                    "output. Judged by matched ratio: random inputs make outputs sums of large terms of both "
                    "signs, so another float32 summation order can move the few that cancel to near zero "
                    "outside the tolerance.",
        axes={"seq_len": {"type": "var", "description": "Number of tokens."},
              "num_experts": {"type": "const", "value": MOE_EXPERTS, "description": "Total number of experts."},
              "num_local_experts": {"type": "const", "value": MOE_LOCAL_EXPERTS,
                                    "description": "Experts computed here (expert parallelism 8)."},
              "hidden_size": {"type": "const", "value": hidden},
              "intermediate_size": {"type": "const", "value": inter},
              "gemm1_out_size": {"type": "const", "value": 2 * inter,
                                 "description": "2 * intermediate_size: up, then gate."}},
        inputs={"routing_logits": _t("float32", "seq_len", "num_experts"),
                "routing_bias": _t("bfloat16", "num_experts"),
                "hidden_states": _t("bfloat16", "seq_len", "hidden_size"),
                "gemm1_weights": _t("bfloat16", "num_local_experts", "gemm1_out_size", "hidden_size"),
                "gemm2_weights": _t("bfloat16", "num_local_experts", "hidden_size", "intermediate_size"),
                "local_expert_offset": {"shape": None, "dtype": "int32",
                                        "description": "First local expert's index among all experts."},
                "routed_scaling_factor": {"shape": None, "dtype": "float32"}},
        outputs={"output": _t("bfloat16", "seq_len", "hidden_size")},
        reference=_reference("moe"),
        tags=["status:verified", "ep:8"] + (["model:deepseek-v3"] if hidden == 7168 else []),
        evaluator={"kind": "lowbit", "required_matched_ratio": 0.999},
        # A lower bound, as speed of light must be (a latency under it fails as impossible): a token may route
        # to no local expert, so no expert weights need be read; the hidden states and logits are read and the
        # output written whatever the routing.
        roofline={"bytes": "4 * seq_len * hidden_size + 4 * seq_len * num_experts"})


# DeepSeek-V3's softmax scale: 1 / sqrt(qk_nope_head_dim 128 + qk_rope_head_dim 64).
MLA_SCALE = 1 / math.sqrt(192)


def runs_on_cpu(definition: str) -> bool:
    """Whether the definition's plain PyTorch solution is practical on a CPU. DeepSeek-V3's MoE is not: its
    inputs hold 2.8 GB of expert weights, about 140 s an evaluation on a 2-core CPU."""
    return definition != moe_name(7168, 2048)


def workload_axes() -> dict[str, list[dict]]:
    """Axis values per definition: decode batches first (the smallest is what the CPU runs)."""
    out: dict[str, list[dict]] = {}
    for n, k in LLAMA_GEMMS.values():
        out[f"gemm_n{n}_k{k}"] = [{"M": m} for m in (1, 16, 64, 256, 2048)]
    out["silu_and_mul_d14336"] = [{"batch_size": b} for b in (1, 16, 64, 256, 2048)]
    out["rope_with_cos_sin_cache_neox_style_d128_rd128"] = [
        {"num_tokens": t, "num_qo_heads": 32, "num_kv_heads": 8, "max_seq_len": s}
        for t, s in ((1, 64), (16, 8192), (64, 8192), (2048, 8192))]
    for prefix in _SAMPLERS:
        out[f"{prefix}_v{VOCAB}"] = [{"batch_size": b} for b in (1, 16, 64)]
    out["mla_paged_decode_h16_ckv512_kpe64_ps1"] = [
        {"batch_size": b, "len_indptr": b + 1, "num_kv_indices": b * length, "num_pages": b * length + b * length // 8}
        for b, length in ((1, 64), (1, 4096), (16, 1024), (64, 1024))]
    for (hidden, inter) in MOE_SIZES:
        out[moe_name(hidden, inter)] = [{"seq_len": t} for t in ((1, 16, 64, 256, 1024) if hidden > 1024
                                                                  else (1, 16, 64))]
    return out


def workload_inputs(definition: str) -> dict:
    """Inputs a workload fixes beyond random data (the blobs come later, from make_inputs)."""
    if definition.startswith("mla_paged_decode"):
        return {"sm_scale": {"type": "scalar", "value": MLA_SCALE}}
    if definition.startswith("moe_bf16_ds_routing"):  # the third of 8 ranks; DeepSeek-V3's scaling factor
        return {"local_expert_offset": {"type": "scalar", "value": 2 * MOE_LOCAL_EXPERTS},
                "routed_scaling_factor": {"type": "scalar", "value": 2.5}}
    return {}
