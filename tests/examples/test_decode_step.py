"""The decode-step definitions of the example dataset (gemm, silu_and_mul, rope, sampling, MLA decode) on the CPU: their
references pass as solutions against themselves (sampling through the sampling evaluator), and our Triton
kernels pass under the interpreter on the smallest workloads. The GPU runs every size and FlashInfer."""

import pytest

from kernelarena.bench import RunConfig, TimingConfig, run
from kernelarena.schema import EvaluatorSpec, Status
from kernelarena.store import TraceSet

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
             "mla_paged_decode_h16_ckv512_kpe64_ps1"]
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
                                       "mla_paged_decode_h16_ckv512_kpe64_ps1_kernelarena_triton"])


@pytest.mark.slow
def test_triton_gemm_passes_on_cpu(dataset_copy):
    """About 15 s a call under the interpreter: the o_proj weight alone is 16M elements."""
    _run(TraceSet.load(dataset_copy), ["gemm_n4096_k4096_kernelarena_triton"])


DECODE_STEP = ["gemm_n6144_k4096", "gemm_n4096_k4096", "gemm_n28672_k4096", "gemm_n4096_k14336",
               "silu_and_mul_d14336", "rope_with_cos_sin_cache_neox_style_d128_rd128",
               "top_k_sampling_from_probs_v128256", "top_p_sampling_from_probs_v128256",
               "top_k_top_p_sampling_from_probs_v128256", "mla_paged_decode_h16_ckv512_kpe64_ps1"]


@pytest.mark.gpu
def test_every_decode_step_solution_passes_on_the_gpu(dataset_copy):
    """Ours (Triton), FlashInfer's (where it has the op) and the references, on the two smallest workloads of
    each definition."""
    ds = TraceSet.load(dataset_copy)
    report = run(ds, RunConfig(devices=("cuda:0",), timeout_s=300, timing=TimingConfig(warmup=3, reps=20)),
                 definitions=DECODE_STEP, smallest=2, save=False)
    failed = {(t.solution, t.workload.uuid): t.evaluation.log[-800:] for t in report.traces
              if t.evaluation.status != Status.PASSED}
    assert len(report.traces) == 2 * sum(len(ds.solutions_for(d)) for d in DECODE_STEP) and not failed, failed
