"""Hardware view of the small cases where event timing leaves questions (issues #5 and #6), for Nsight Compute.

Event timing (bench_rmsnorm, bench_attention) puts our CUDA RMSNorm about 1 us behind our Triton one at
1 to 1024 rows, and our batch-1 decode 4 us behind FlashInfer's. This script runs each kernel of those cases
once inside a profiled range, after warm-up, so that ncu reports the kernel's own duration, DRAM bytes and
launch shape, without the launch and the timer around it:

    ncu --profile-from-start off --clock-control none --cache-control all --csv --log-file ncu.csv \\
        --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,launch__grid_size,\\
launch__block_size,launch__registers_per_thread python3 -m benchmarks.ncu_small_kernels --labels cases.txt
    python3 -m benchmarks.ncu_small_kernels --labels cases.txt --summarize ncu.csv   # the table, by case

Before each case the script launches an empty marker kernel whose grid size is the case's number, so the
summary tells which kernels (one or several) belong to which case.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch
import triton

from kernelarena.kernels.rmsnorm.triton import DirectLauncher

RMSNORM_SHAPES = ((1, 4096), (32, 4096), (1024, 4096))
DECODE_CASES = ((1, 1024), (1, 4096), (16, 1024))
EPS = 1e-6


def rmsnorm_cases():
    """(label, fn) for every RMSNorm backend installed, at each shape."""
    import importlib.util

    from kernelarena.kernels.rmsnorm import cuda as cuda_impl
    from kernelarena.kernels.rmsnorm import rmsnorm

    cases = []
    for rows, hidden in RMSNORM_SHAPES:
        x = torch.randn(rows, hidden, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(hidden, device="cuda", dtype=torch.bfloat16)
        out = torch.empty_like(x)
        for backend in ("triton", "cuda", "tilelang"):
            if backend == "tilelang" and not importlib.util.find_spec("tilelang"):
                continue
            cases.append((f"rmsnorm {rows}x{hidden} {backend}",
                          lambda x=x, w=w, out=out, b=backend: rmsnorm(x, w, EPS, out=out, backend=b)))
        if importlib.util.find_spec("tvm_ffi"):
            entry = cuda_impl.tvm_ffi_module("rmsnorm").run
            cases.append((f"rmsnorm {rows}x{hidden} cuda tvm-ffi", lambda x=x, w=w, out=out, e=entry: e(x, w, out)))
        if importlib.util.find_spec("flashinfer"):
            import flashinfer

            cases.append((f"rmsnorm {rows}x{hidden} flashinfer",
                          lambda x=x, w=w, out=out: flashinfer.norm.rmsnorm(x, w, EPS, out=out)))
    return cases


# Kernel configs tried for the decode cases with --decode-configs: around the small-batch default
# (16, 128, 4 warps, 5 stages, 1 program per SM, chunks >= 256 tokens).
DECODE_CONFIGS = ((16, 128, 4, 2, 1, 256, 1), (16, 128, 4, 3, 1, 256, 1), (16, 128, 4, 5, 1, 128, 1),
                  (16, 128, 4, 5, 1, 512, 1), (16, 64, 4, 3, 1, 128, 1), (16, 64, 4, 5, 1, 128, 1),
                  (16, 64, 4, 4, 2, 128, 1), (16, 32, 4, 4, 1, 128, 1), (16, 128, 8, 5, 1, 256, 1),
                  (16, 64, 2, 4, 2, 128, 1))


def decode_cases(with_configs: bool):
    """(label, fn) for our decode (and, with_configs, each of DECODE_CONFIGS) and FlashInfer's (both
    backends) at each case."""
    import importlib.util

    from benchmarks.bench_attention import PAGE, Problem, flashinfer_decode, ours_decode
    from kernelarena.kernels.attention import KernelConfig

    tokens = max(b * n for b, n in DECODE_CASES)
    cache = torch.empty(tokens // PAGE, 2, PAGE, 8, 128, dtype=torch.bfloat16, device="cuda").normal_()
    ws = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    fi_ws = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    cases = []
    for batch, kv_len in DECODE_CASES:
        p = Problem(cache, batch, 1, kv_len, seed=batch * 7 + kv_len)
        cases.append((f"decode {batch}x{kv_len} ours", ours_decode(p, ws)[1]))
        for config in DECODE_CONFIGS if with_configs else ():
            cases.append((f"decode {batch}x{kv_len} ours {config}", ours_decode(p, ws, KernelConfig(*config))[1]))
        if importlib.util.find_spec("flashinfer"):
            for tc in (False, True):
                cases.append((f"decode {batch}x{kv_len} flashinfer {'tensor' if tc else 'cuda'} cores",
                              flashinfer_decode(p, fi_ws, tc)[1]))
    return cases


@triton.jit
def _case_marker(x_ptr):
    pass


_MARKER = DirectLauncher(_case_marker)


def profile(labels_path: Path, only: str, with_configs: bool) -> None:
    """Run every case (whose label contains ``only``) once in the profiled range, each after a marker kernel
    whose grid is its case number."""
    norms = [] if only.startswith("decode") else rmsnorm_cases()
    cases = [c for c in norms + decode_cases(with_configs) if only in c[0]]
    dummy = torch.empty(1, device="cuda")
    for i, (_, fn) in enumerate(cases):  # warm-up: compilation, module loads, direct-launch caches
        _MARKER(i + 1, dummy)
        fn()
        fn()
    torch.cuda.synchronize()
    labels_path.write_text("\n".join(label for label, _ in cases) + "\n")
    torch.cuda.cudart().cudaProfilerStart()
    for i, (_, fn) in enumerate(cases):
        _MARKER(i + 1, dummy)
        fn()
        torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStop()


def _number(value: str, unit: str) -> float:
    """An ncu metric value in us (times) or KB (bytes)."""
    v = float(value.replace(",", ""))
    scale = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3, "byte": 1e-3,
             "Kbyte": 1.0, "Mbyte": 1e3,
             "Gbyte": 1e6}
    return v * scale.get(unit, 1.0)


def summarize(csv_path: Path, labels_path: Path) -> str:
    """One line per profiled kernel: its case (from the marker before it), name, duration, DRAM KB, launch."""
    lines = csv_path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('"ID"'))
    kernels: dict = {}
    for row in csv.DictReader(lines[start:]):
        entry = kernels.setdefault(int(row["ID"]), {"name": row["Kernel Name"]})
        entry[row["Metric Name"]] = (row["Metric Value"], row["Metric Unit"])
    labels = labels_path.read_text().splitlines()
    out = ["| case | kernel | us | DRAM read KB | DRAM write KB | grid x block | regs |",
           "|---|---|---|---|---|---|---|"]
    label = "?"
    for kid in sorted(kernels):
        k = kernels[kid]
        grid = k.get("launch__grid_size", ("?", ""))[0]
        if "_case_marker" in k["name"]:
            label = labels[int(grid.replace(",", "")) - 1]
            continue
        us = _number(*k["gpu__time_duration.sum"])
        rd, wr = (_number(*k[m]) for m in ("dram__bytes_read.sum", "dram__bytes_write.sum"))
        out.append(f"| {label} | {k['name'][:50]} | {us:.2f} | {rd:.0f} | {wr:.0f} | "
                   f"{grid} x {k.get('launch__block_size', ('?',))[0]} | "
                   f"{k.get('launch__registers_per_thread', ('?',))[0]} |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, required=True, help="file of case labels (written, then read)")
    parser.add_argument("--summarize", type=Path, help="ncu --csv output to print as a table (no profiling)")
    parser.add_argument("--only", default="", help="profile only the cases whose label contains this")
    parser.add_argument("--decode-configs", action="store_true", help="also our decode with DECODE_CONFIGS")
    args = parser.parse_args()
    if args.summarize:
        print(summarize(args.summarize, args.labels), end="")
    else:
        profile(args.labels, args.only, args.decode_configs)


if __name__ == "__main__":
    main()
