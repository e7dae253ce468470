"""kernelarena run over the example dataset on the CPU: our Triton kernels (under the interpreter) and the
PyTorch solutions pass correctness on each definition's smallest workload."""

import pytest
import torch

from kernelarena.bench import RunConfig, TimingConfig, run
from kernelarena.store import TraceSet

SOLUTIONS = [
    "rmsnorm_h4096_kernelarena_triton", "fused_add_rmsnorm_h8192_kernelarena_triton",
    "kernelarena_triton_gqa_paged_decode_h32_kv8_d128_ps16",
    "kernelarena_triton_gqa_paged_prefill_causal_h32_kv8_d128_ps16",
    "rmsnorm_h4096_pytorch", "gqa_paged_decode_h32_kv8_d128_ps16_pytorch",
]


def test_triton_and_pytorch_solutions_pass_on_cpu(dataset_copy):
    dataset = TraceSet.load(dataset_copy)
    config = RunConfig(devices=("cpu",), correctness_rounds=2, timeout_s=240,
                       timing=TimingConfig(warmup=0, reps=2, checked_calls=1))
    report = run(dataset, config, solutions=SOLUTIONS, smallest=1)
    status = {t.solution: (t.evaluation.status.value, t.evaluation.log[-500:]) for t in report.traces}
    assert set(status) == set(SOLUTIONS)
    assert all(s == "PASSED" for s, _ in status.values()), status
    planned = {t.solution: t.evaluation.performance for t in report.traces if "gqa_paged" in t.definition}
    assert planned and all(p.solution_timing.plan_host_us is not None and p.reference_timing.plan_host_us is not None
                           for p in planned.values()), "attention solutions and references plan outside the timing"
    assert all(t.evaluation.performance.solution_timing.host_overhead_us is not None for t in report.traces)
    assert len(TraceSet.load(dataset_copy).traces_for("rmsnorm_h4096")) == 2


@pytest.mark.gpu
def test_attention_solutions_plan_outside_the_timing_on_the_gpu(dataset_copy):
    dataset = TraceSet.load(dataset_copy)
    config = RunConfig(devices=("cuda:0",), correctness_rounds=2, timeout_s=300,
                       timing=TimingConfig(warmup=2, reps=10))
    report = run(dataset, config, definitions=["gqa_paged_decode_h32_kv8_d128_ps16",
                                               "gqa_paged_prefill_causal_h32_kv8_d128_ps16"], smallest=1, save=False)
    # Four solutions a definition, and our TileLang prefill (target H100/H200): the local runner runs it on any GPU,
    # and off sm90 it fails saying so.
    assert len(report.traces) == 9
    sm90 = torch.cuda.get_device_capability()[0] == 9
    for trace in report.traces:
        if "tilelang" in trace.solution and not sm90:
            assert not trace.passed and "sm90" in trace.evaluation.log, trace.evaluation.log[-800:]
            continue
        assert trace.passed, (trace.solution, trace.evaluation.log[-800:])
        timing = trace.evaluation.performance.solution_timing
        assert timing.plan_host_us is not None and timing.host_overhead_us is not None, trace.solution
