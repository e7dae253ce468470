"""Why does a trace's latency differ from the reproducibility script's separate CUPTI profile? For the traces
named (by default the ones outside 5% on the H200, 2026-12-03), each way of taking the same kernels' device
time, in one process, on the same input sets:

- harness: the evaluator's timer as a run uses it (bench/timing.time_calls, cold: the L2 flushed, the host-ahead
  sleep kernel before each call, CUPTI's busy time per call: the union of the call's activity intervals);
- harness, no sleep: the same with ``TimingConfig(host_ahead=False)``;
- profile: the reproducibility script's CUPTI step without its sleep (the L2 flushed before each call, 20
  calls, the sum of the call's activity durations), and ", union": the same profile's union of intervals;
- profile + sleep: the same with the harness's sleep kernel after the flush (the reproducibility script's step
  as it is now), and its union.

The sleep ahead was what differed for the PyTorch RMSNorm at 8192 x 32 and our Triton rope at one token (their
profiles with the sleep came within 5%: results/reproducibility_nvidia_h200_part1_recupti.md, _part2b_recupti);
for the MoE solutions at hidden size 7168 it was not (PyTorch's at one token: 493 us traced, 587 us of activity
summed, with the sleep or without). If a profile's union reads like the harness where its sum does not, the
call's activity intervals overlap (a pageable copy's record spanning the kernels queued before it, say), and
the sum counts that time twice. A diagnostic for issue #23's CUPTI agreement; prints one table, writes
``diag_cupti_ratio_latest.md`` under --out.

    python3 -m benchmarks.diag_cupti_ratio --out "$OUT" [--case SOLUTION:AXIS=VALUE ...]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Dict, List, Tuple

import torch

from benchmarks.common import add_out_argument, emit, stamp, timed_cases

ROOT = Path(__file__).resolve().parents[1]
CASES = ("rmsnorm_h8192_pytorch:batch_size=32",
         "rope_with_cos_sin_cache_neox_style_d128_rd128_kernelarena_triton:num_tokens=1",
         # Part 2a's outliers (H200, 2026-12-03): host-bound MoE, the latency under the profile's kernel sum
         # (PyTorch at one token 493 against 587 us, 0.841; at 256 tokens 0.854; our Triton at one token 0.916).
         "moe_bf16_ds_routing_topk8_ng8_kg4_e32_h7168_i2048_pytorch:seq_len=1",
         "moe_bf16_ds_routing_topk8_ng8_kg4_e32_h7168_i2048_pytorch:seq_len=256",
         "moe_bf16_ds_routing_topk8_ng8_kg4_e32_h7168_i2048_kernelarena_triton:seq_len=1",
         "gemm_n28672_k4096_kernelarena_triton:M=2048")


def _calls(dataset, solution_name: str, axes: Dict[str, int], device: str):
    """(call(i), outputs_of(i), copies) for a dataset solution on the first workload with ``axes``, made as a run's
    timed loop makes them (benchmarks/common.timed_cases: as many input sets too) and each called once (lazy
    compilation and first-call allocations out of every measurement)."""
    definition = dataset.solutions[solution_name].definition
    workload = next(w.workload for w in dataset.workloads[definition]
                    if all(w.workload.axes.get(k) == v for k, v in axes.items()))
    call, outputs_of, copies = timed_cases(dataset, solution_name, workload, device)
    with torch.no_grad():
        for i in range(copies):
            call(i)
    torch.cuda.synchronize()
    return call, outputs_of, copies


def measure(call, outputs_of, copies: int, device: str, calls: int = 20) -> Dict[str, float]:
    """Median device microseconds per call, each way (see the module docstring)."""
    from kernelarena.bench.config import TimingConfig
    from kernelarena.bench.device_activity import profile_calls
    from kernelarena.bench.timing import RANDOM_SEED, host_ahead_us, l2_flush_buffer, sleep_cycles_per_us, time_calls

    out = {}
    with torch.no_grad():
        stats, _ = time_calls(call, copies, device, TimingConfig(mode="cold"), outputs_of, check=False)
        out["harness"], host_us = stats.median_ms * 1e3, stats.host_overhead_us or 0.0
        stats, _ = time_calls(call, copies, device, TimingConfig(mode="cold", host_ahead=False), outputs_of,
                              check=False)
        out["harness, no sleep"] = stats.median_ms * 1e3
        flush = l2_flush_buffer(torch.device(device))
        cycles = int(host_ahead_us(host_us * 1e-6) * sleep_cycles_per_us(torch.device(device)))
        for name, sleep in (("profile", 0), ("profile + sleep", cycles)):
            made: List[None] = []

            def before(sleep=sleep) -> None:
                flush.zero_()
                torch.manual_seed(RANDOM_SEED + len(made) % copies)
                made.append(None)
                if sleep:
                    torch.cuda._sleep(sleep)

            activity = profile_calls(lambda r: call(r % copies), calls, before=before)
            ok = activity.problem is None
            out[name] = statistics.median(activity.sum_us()) if ok else float("nan")
            out[f"{name}, union"] = statistics.median(activity.busy_us()) if ok else float("nan")
    out["host us"] = host_us
    return out


def _parse(case: str) -> Tuple[str, Dict[str, int]]:
    solution, _, axes = case.partition(":")
    return solution, {k: int(v) for k, v in (pair.split("=") for pair in axes.split(",") if pair)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", default=[], metavar="SOLUTION:AXIS=VALUE[,AXIS=VALUE]")
    parser.add_argument("--dataset", type=Path, default=ROOT / "examples" / "dataset")
    add_out_argument(parser)
    args = parser.parse_args()
    from kernelarena.store import TraceSet

    device = "cuda:0"
    dataset = TraceSet.load(args.dataset, strict=True)
    ways = ("harness", "harness, no sleep", "profile", "profile, union", "profile + sleep", "profile + sleep, union")
    s = stamp(device)
    lines = [f"# Latency against the separate CUPTI profile, way by way ({s.machine}, {s.date})", "",
             "`python3 -m benchmarks.diag_cupti_ratio`: median device us per call; ratios against `profile` (the "
             "reproducibility script's CUPTI step).", "",
             "| solution | workload | host us | " + " | ".join(ways) + " | harness / profile | "
             "profile + sleep / profile |", "|---|---|---|" + "---|" * (len(ways) + 2)]
    for case in args.case or CASES:
        solution, axes = _parse(case)
        try:
            call, outputs_of, copies = _calls(dataset, solution, axes, device)
            us = measure(call, outputs_of, copies, device)
        except Exception as e:  # one case's failure (a solution that cannot build here) leaves the others
            lines.append(f"| {solution} | {axes} | failed: {type(e).__name__}: {str(e)[:120]} |")
            continue
        lines.append(f"| {solution} | {axes} | {us['host us']:.1f} | " + " | ".join(f"{us[w]:.2f}" for w in ways)
                     + f" | {us['harness'] / us['profile']:.3f} | {us['profile + sleep'] / us['profile']:.3f} |")
        print(lines[-1], flush=True)
    emit(lines, args.out, "diag_cupti_ratio_latest.md")


if __name__ == "__main__":
    main()
