"""A dataset for report tests: the example dataset with hand-written traces on two hardware, some carrying
speed of light, one failing at run time, one numerically wrong, and one workload measured twice."""

from __future__ import annotations

import shutil
from pathlib import Path

from kernelarena.schema import Trace
from kernelarena.store import TraceSet

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dataset"
GPU = "NVIDIA H200"
CPU = "CPU Test Processor"
RMSNORM = "rmsnorm_h4096"
DECODE = "gqa_paged_decode_h32_kv8_d128_ps16"


def make_trace(definition, workload, solution, hardware, latency_ms=None, speedup=None, status="PASSED",
               sol=None, log="", timestamp="2026-12-01T10:00:00+00:00", torch_version="2.13.0"):
    """A trace; PASSED ones time the reference at ``latency_ms * speedup``; ``sol`` is the speed-of-light
    fraction to record (None: no speed of light)."""
    evaluation = {"status": status, "timestamp": timestamp, "log": log,
                  "environment": {"hardware": hardware, "libs": {"torch": torch_version, "python": "3.12"}}}
    if status in ("PASSED", "INCORRECT_NUMERICAL"):
        evaluation["correctness"] = {"max_absolute_error": 0.5 if status != "PASSED" else 0.0,
                                     "max_relative_error": 0.25 if status != "PASSED" else 0.0}
    if status == "PASSED":
        timing = {"median_ms": latency_ms, "mean_ms": latency_ms, "min_ms": latency_ms, "max_ms": latency_ms,
                  "p25_ms": latency_ms, "p75_ms": latency_ms, "count": 10,
                  "mode": "cpu-wall" if hardware == CPU else "cuda-events-cold-l2"}
        performance = {"latency_ms": latency_ms, "reference_latency_ms": latency_ms * speedup,
                       "speedup_factor": speedup, "solution_timing": timing}
        if sol is not None:
            performance["speed_of_light"] = {"bytes": 1e6, "ceiling_ms": latency_ms * sol, "bound": "memory",
                                             "fraction": sol, "ceilings": {"copy_bytes_per_s": 3e12}}
        evaluation["performance"] = performance
    return Trace.model_validate({"definition": definition, "workload": workload.model_dump(mode="json"),
                                 "solution": solution, "evaluation": evaluation})


def report_dataset(root: Path) -> TraceSet:
    """Copy the example dataset to ``root`` and append the traces the report tests read."""
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(".*.lock"))
    ds = TraceSet.load(root)
    w1, w32, w1024, _ = ds.workloads_for(RMSNORM)
    d1, d2 = ds.workloads_for(DECODE)[:2]
    fast, slow, broken = "rmsnorm_h4096_kernelarena_triton", "rmsnorm_h4096_pytorch", "rmsnorm_h4096_flashinfer"
    ds.add_traces([
        # GPU: triton 2x and 8x faster than the reference, pytorch 1x; triton's first try on w1 was slower
        make_trace(RMSNORM, w1, fast, GPU, 0.010, 1.5, sol=0.05, timestamp="2026-12-01T09:00:00+00:00"),
        make_trace(RMSNORM, w1, fast, GPU, 0.005, 2.0, sol=0.10),
        make_trace(RMSNORM, w32, fast, GPU, 0.006, 8.0, sol=0.40),
        make_trace(RMSNORM, w1024, fast, GPU, 0.020, 4.0, sol=0.85),
        make_trace(RMSNORM, w1, slow, GPU, 0.010, 1.0, sol=0.05),
        make_trace(RMSNORM, w32, slow, GPU, 0.050, 1.0, sol=0.05),
        make_trace(RMSNORM, w1024, slow, GPU, 0.080, 1.0, sol=0.21),
        make_trace(RMSNORM, w1, broken, GPU, status="RUNTIME_ERROR",
                   log="Traceback (most recent call last):\n  File x\nRuntimeError: CUDA error: misaligned address\n"),
        make_trace(RMSNORM, w32, broken, GPU, status="INCORRECT_NUMERICAL", torch_version="2.12.0"),
        # CPU: no speed of light; one definition with several variable axes (sized by bytes)
        make_trace(RMSNORM, w1, slow, CPU, 0.5, 1.0),
        make_trace(DECODE, d1, "gqa_paged_decode_h32_kv8_d128_ps16_pytorch", CPU, 2.0, 1.0),
        make_trace(DECODE, d2, "gqa_paged_decode_h32_kv8_d128_ps16_pytorch", CPU, 4.0, 1.0),
        make_trace(DECODE, d1, "kernelarena_triton_gqa_paged_decode_h32_kv8_d128_ps16", CPU, status="COMPILE_ERROR",
                   log="triton.compiler.errors.CompilationError: at 3:4: bad\n\n"),
    ])
    return ds
