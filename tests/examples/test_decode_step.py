"""The decode-step definitions of the example dataset (gemm, silu_and_mul, rope, sampling, MLA decode, MoE) on the
CPU: their references pass as solutions against themselves (sampling through the sampling evaluator), and our
Triton kernels pass under the interpreter on the smallest workloads. The GPU runs every size and FlashInfer."""

import pytest

from kernelarena.bench import RunConfig, TimingConfig, run
from kernelarena.schema import EvaluatorSpec, Status
from kernelarena.store import TraceSet

MOE_SMALL = "moe_bf16_ds_routing_topk8_ng8_kg4_e32_h256_i128"
MOE_DEEPSEEK = "moe_bf16_ds_routing_topk8_ng8_kg4_e32_h7168_i2048"

# One call per phase: the GEMM weights alone are up to 235 MB to draw on the CPU.
QUICK = TimingConfig(warmup=0, reps=1, checked_calls=1, input_copies=1)


def _run(dataset, solutions, **config):
    report = run(dataset, RunConfig(devices=("cpu",), correctness_rounds=1, timeout_s=300, timing=QUICK,
                                    time_reference=False, **config), solutions=solutions, smallest=1, save=False)
    failed = {t.solution: t.evaluation.log[-600:] for t in report.traces if t.evaluation.status != Status.PASSED}
    assert {t.solution for t in report.traces} == set(solutions) and not failed, failed
    return report


def test_references_pass_against_themselves(dataset_copy):
    ds = TraceSet.load(dataset_copy)
    names = ["gemm_n6144_k4096", "gemm_n4096_k4096", "gemm_n28672_k4096", "gemm_n4096_k14336",
             "silu_and_mul_d14336", "rope_with_cos_sin_cache_neox_style_d128_rd128",
             "mla_paged_decode_h16_ckv512_kpe64_ps1", MOE_SMALL]
    _run(ds, [f"{n}_pytorch" for n in names])


def test_sampling_reference_passes_the_sampling_evaluator(dataset_copy):
    # Top-k alone (no full sort of the 128256-token row, ~0.1 s each here) and 100 draws per row keep this
    # short; the GPU runs all three samplers with the default 10000 draws.
    report = _run(TraceSet.load(dataset_copy), ["top_k_sampling_from_probs_v128256_pytorch"],
                  evaluator=EvaluatorSpec(kind="sampling", draws=100))
    assert report.traces[0].evaluation.correctness.max_absolute_error > 0  # a TVD was measured


def test_triton_kernels_pass_on_cpu(dataset_copy):
    _run(TraceSet.load(dataset_copy), ["silu_and_mul_d14336_kernelarena_triton",
                                       "rope_with_cos_sin_cache_neox_style_d128_rd128_kernelarena_triton",
                                       "mla_paged_decode_h16_ckv512_kpe64_ps1_kernelarena_triton",
                                       f"{MOE_SMALL}_kernelarena_triton"])


def test_moe_triton_routing_is_the_references():
    """The Triton solution's routing is the reference's, operation for operation (same experts, same weights):
    8 distinct experts from at most 4 groups of 32, weights summing to the scaling factor."""
    import torch

    from kernelarena.kernels.moe import reference
    from kernelarena.kernels.moe import triton as moe_triton

    g = torch.Generator().manual_seed(0)
    logits, bias = torch.randn(64, 256, generator=g), torch.randn(256, generator=g).to(torch.bfloat16)
    ids, weights = reference.route(logits, bias, 2.5)
    ids_t, weights_t = moe_triton.route(logits, bias, 2.5)
    assert torch.equal(ids, ids_t) and torch.equal(weights, weights_t)
    assert torch.allclose(weights.sum(dim=1), torch.full((64,), 2.5))
    assert all(len(set(row.tolist())) == 8 and len(set((row // 32).tolist())) <= 4 for row in ids)


def test_moe_evaluator_rejects_wrong_routing_weights(dataset_copy):
    """A solution that weighs the experts by the biased scores fails the MoE definition's matched-ratio
    evaluator (at 64 tokens some surely route to local experts)."""
    ds = TraceSet.load(dataset_copy)
    good = ds.solutions[f"{MOE_SMALL}_pytorch"]
    broken = good.model_copy(deep=True, update={"name": f"{MOE_SMALL}_biased_weights"})
    broken.sources[0].content = good.sources[0].content.replace("weights = scores.gather(1, ids)",
                                                                "weights = biased.gather(1, ids)")
    assert broken.sources[0].content != good.sources[0].content
    ds.add_solution(broken)
    report = run(ds, RunConfig(devices=("cpu",), correctness_rounds=1, timeout_s=300, timing=QUICK,
                               time_reference=False), solutions=[broken.name], definitions=[MOE_SMALL], save=False)
    status = {t.workload.axes["seq_len"]: t.evaluation.status for t in report.traces}
    assert status[64] == Status.INCORRECT_NUMERICAL and Status.PASSED not in (status[16], status[64]), status


@pytest.mark.slow
def test_triton_gemm_passes_on_cpu(dataset_copy):
    """About 15 s a call under the interpreter: the o_proj weight alone is 16M elements."""
    _run(TraceSet.load(dataset_copy), ["gemm_n4096_k4096_kernelarena_triton"])


DECODE_STEP = {  # by family: one GPU test each, so that a capped GPU call keeps the families that finished
    "gemm": ["gemm_n6144_k4096", "gemm_n4096_k4096", "gemm_n28672_k4096", "gemm_n4096_k14336"],
    "activation_rope": ["silu_and_mul_d14336", "rope_with_cos_sin_cache_neox_style_d128_rd128"],
    "sampling": ["top_k_sampling_from_probs_v128256", "top_p_sampling_from_probs_v128256",
                 "top_k_top_p_sampling_from_probs_v128256"],
    "mla": ["mla_paged_decode_h16_ckv512_kpe64_ps1"],
    "moe": [MOE_DEEPSEEK, MOE_SMALL],
}


@pytest.mark.gpu
@pytest.mark.parametrize("family", list(DECODE_STEP))
def test_every_decode_step_solution_passes_on_the_gpu(dataset_copy, family):
    """Ours (Triton), FlashInfer's (where it has the op) and the references, on the two smallest workloads of
    each definition."""
    ds = TraceSet.load(dataset_copy)
    definitions = DECODE_STEP[family]
    report = run(ds, RunConfig(devices=("cuda:0",), timeout_s=300, timing=TimingConfig(warmup=3, reps=20)),
                 definitions=definitions, smallest=2, save=False)
    failed = {(t.solution, t.workload.uuid): t.evaluation.log[-800:] for t in report.traces
              if t.evaluation.status != Status.PASSED}
    assert len(report.traces) == 2 * sum(len(ds.solutions_for(d)) for d in definitions) and not failed, failed


@pytest.mark.gpu
def test_moe_triton_passes_every_workload_on_the_gpu(dataset_copy):
    """Ours at every MoE workload, so that both tile configurations (16-row tiles up to 64 routed rows, 64-row
    tiles from 256 tokens) run on the GPU at DeepSeek-V3's sizes."""
    ds = TraceSet.load(dataset_copy)
    solutions = [f"{d}_kernelarena_triton" for d in (MOE_DEEPSEEK, MOE_SMALL)]
    report = run(ds, RunConfig(devices=("cuda:0",), timeout_s=300, timing=TimingConfig(warmup=3, reps=20)),
                 solutions=solutions, save=False)
    failed = {(t.solution, t.workload.axes["seq_len"]): t.evaluation.log[-800:] for t in report.traces
              if t.evaluation.status != Status.PASSED}
    assert len(report.traces) == 8 and not failed, failed
