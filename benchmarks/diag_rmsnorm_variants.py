"""Our CUDA RMSNorm kernel built with values of its compile-time knobs (rmsnorm.cuh: STREAMING_LOADS, PDL_EARLY,
STREAMING_STORES, MIN_BLOCK, WEIGHT_LATE) and threads per row, and our Triton kernel with its loads evict-first and
plain, beside FlashInfer, the library's backends and a device-to-device copy of the same bytes (the floor): back to
back (issue #18's measure) and with a cold L2, all timed in turn.

    python3 -m benchmarks.diag_rmsnorm_variants --out $OUT [--shapes 8192x4096,...] [--ops fused_add_rmsnorm,rmsnorm]
        [--variants 'NAME;NAME;...']      (VARIANTS' names, ';' between them: the names hold commas)

Each variant is the library's launcher (cuda/rmsnorm_python.cu) compiled with -D flags into its own module, launched
as the backend launches on sm90 (default threads per row, programmatic dependent launch), and checked against the
float64 reference before it is timed. Writes diag_rmsnorm_variants.md under --out.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from benchmarks.bench_rmsnorm import (
    B2B_ROUND_S,
    COPY_NAME,
    EPS,
    HOST_AHEAD_US,
    check,
    copy_floor,
    covers,
    input_sets,
    launcher_fns,
    make_backends,
    op_bytes,
    timed_call,
)
from benchmarks.common import add_out_argument, emit, stamp
from benchmarks.host_cost import back_to_back_each
from kernelarena.bench.timing import ColdL2Timer

SHAPES = ((1024, 4096), (8192, 4096), (16384, 4096), (32768, 4096), (1024, 8192), (8192, 8192), (16384, 8192),
          (32768, 8192))
# name -> (-D knobs of rmsnorm.cuh, threads per row: 0 the default). The default build's values: plain loads and
# stores, the PDL trigger after the last store, blocks of at least 128 threads, the weight read after the reduction
# for the fused op at 8 vectors a thread (and with x elsewhere).
VARIANTS = {
    "default": ({}, 0),
    "default, t64": ({}, 64),
    "stores cs": ({"STREAMING_STORES": 1}, 0),
    "blocks of 256+": ({"MIN_BLOCK": 256}, 0),
    "blocks of 512+": ({"MIN_BLOCK": 512}, 0),
    "blocks of 256+, t64": ({"MIN_BLOCK": 256}, 64),
    "blocks of 64+": ({"MIN_BLOCK": 64}, 0),
    "weight late": ({"WEIGHT_LATE": 1}, 0),
    "weight early": ({"WEIGHT_LATE": 0}, 0),
    "loads cs, pdl early": ({"STREAMING_LOADS": 1, "PDL_EARLY": 1}, 0),
    # Threads per row (t128: 4 vectors a thread, one row a block). Session 28 also timed blocks an SM capped by unused
    # shared memory and raised by launch bounds (both slower; the knobs are in commit b7d22f6, rmsnorm.cuh says more).
    "weight late, t128": ({"WEIGHT_LATE": 1}, 128),
    "t256": ({}, 256),
    "t512": ({}, 512),
    "loads cg": ({"STREAMING_LOADS": 2}, 0),
    "loads cg, t128": ({"STREAMING_LOADS": 2}, 128),
}


def triton_variants() -> dict:
    """Our Triton kernel with its loads evict-first (as the backend's default config) and plain."""
    from dataclasses import replace

    from kernelarena.kernels.rmsnorm import triton as triton_impl

    table = {}
    for evict in (True, False):
        def norm(x, w, out, e=evict):
            triton_impl.launch(x, None, w, out, None, EPS, replace(triton_impl.pick_config(*x.shape, False),
                                                                    evict_first=e))

        def fused(x, r, w, e=evict):
            triton_impl.launch(x, r, w, x, r, EPS, replace(triton_impl.pick_config(*x.shape, True), evict_first=e))

        table[f"triton loads {'evict-first' if evict else 'plain'}"] = (norm, fused)
    return table


@functools.lru_cache(maxsize=None)
def build_variant(knobs: tuple, arch: str, where: Path):
    """The launcher module compiled with ``knobs`` ((name, value) pairs of rmsnorm.cuh's KERNELARENA_RMSNORM_*
    macros), a module of its own path."""
    from kernelarena.kernels.rmsnorm import cuda as cuda_impl

    tag = "_".join(f"{k.lower()}{v}" for k, v in knobs) or "default"
    path = where / tag / f"{cuda_impl.LAUNCHER_MODULE}.so"
    path.parent.mkdir(parents=True, exist_ok=True)
    command = cuda_impl.launcher_nvcc_command(arch, str(path))
    command[1:1] = [f"-DKERNELARENA_RMSNORM_{k}={v}" for k, v in knobs]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode:
        raise RuntimeError(f"nvcc failed for {tag}: {result.stderr[-2000:]}")
    return cuda_impl.load_launcher(path).launch


def _arch(device) -> tuple[str, bool]:
    """nvcc's arch for ``device`` (e.g. "90a") and whether it is sm90+ (programmatic dependent launch)."""
    major, minor = torch.cuda.get_device_capability(device)
    return f"{major}{minor}{'a' if major >= 9 else ''}", major >= 9


def prebuild(device, where: Path, names) -> None:
    """Compile the knob sets of ``names`` side by side (one nvcc each): built one after another they took most of a
    GPU call."""
    arch, _ = _arch(device)
    knob_sets = {tuple(sorted(VARIANTS[name][0].items())) for name in names}
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda knobs: build_variant(knobs, arch, where), knob_sets))


def variant_backends(device, where: Path, hidden: int, names) -> dict:
    """name -> (rmsnorm(x, w, out), fused(x, r, w)) for each of ``names`` (of VARIANTS) that covers a row of
    ``hidden``."""
    arch, sm90 = _arch(device)
    return {name: launcher_fns(build_variant(tuple(sorted(knobs.items())), arch, where), threads, int(sm90))
            for name, (knobs, threads) in VARIANTS.items() if name in names and covers(hidden, threads)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_out_argument(parser)
    parser.add_argument("--ops", default="fused_add_rmsnorm")
    parser.add_argument("--shapes", default=",".join(f"{b}x{h}" for b, h in SHAPES), help="ROWSxHIDDEN,...")
    parser.add_argument("--variants", default=";".join(VARIANTS), help="VARIANTS' names, ';' between (default: all)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.variants.split(";")]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; known: {'; '.join(VARIANTS)}")
    device = "cuda"
    run = stamp(device)
    timer = ColdL2Timer(device, host_ahead_us=HOST_AHEAD_US)
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    with tempfile.TemporaryDirectory() as where:
        prebuild(device, Path(where), names)
        base = {**make_backends(["flashinfer", "triton", "cuda"], device), **triton_variants()}
        lines = ["| op | rows x hidden | implementation | b2b us/call | b2b vs FI | cold-L2 us | cold vs FI |",
                 "|---|---|---|---|---|---|---|"]
        for op in args.ops.split(","):
            for batch, hidden in shapes:
                n_sets = max(2, min(8, -(-(256 << 20) // op_bytes(op, batch, hidden))))
                sets, w = input_sets(op, batch, hidden, device, n_sets)
                impls = {**base, **variant_backends(device, Path(where), hidden, names)}
                calls, failed = {}, []
                for name, fns in impls.items():
                    try:
                        err, err_sum = check(op, fns, batch, hidden, device)
                    except RuntimeError as exc:  # a knob set the GPU cannot launch (registers x block size)
                        failed.append(f"{name}: {exc}")
                        continue
                    if err > 1e-2 or err_sum > 1e-2:
                        failed.append(f"{name}: relative error {err:.2e} / {err_sum:.2e}")
                        continue
                    calls[name] = timed_call(op, fns, w)
                calls[COPY_NAME] = copy_floor(op, batch, hidden, device)  # the floor, timed in turn with the kernels
                n = int(min(500, max(20, B2B_ROUND_S / (op_bytes(op, batch, hidden) / 3e12))))
                first = sets[0]
                b2b = back_to_back_each({k: (lambda c=c, s=first: c(s)) for k, c in calls.items()}, calls=n, rounds=7)
                cold = timer.median_us_each(calls, sets, min_reps=30)
                fi_b2b, fi_cold = b2b["flashinfer"].wall_us, cold["flashinfer"]
                for name in calls:
                    wall = b2b[name].wall_us
                    lines.append(f"| {op} | {batch} x {hidden} | {name} | {wall:.1f} | {fi_b2b / wall:.3f}x | "
                                 f"{cold[name]:.1f} | {fi_cold / cold[name]:.3f}x |")
                print("\n".join(lines[-len(calls):]) + (f"\nFAILED {failed}" if failed else ""), flush=True)
                del sets, first, calls
    emit([f"# Our CUDA RMSNorm kernel's compile-time knobs ({run.machine}, {run.date})", "",
          "`python3 -m benchmarks.diag_rmsnorm_variants`: bf16; 'b2b': calls back to back on the same inputs "
          "(host_cost.back_to_back_each, 7 rounds, the implementations in turn), 'cold-L2': one call after an L2 "
          "flush (ColdL2Timer, in turn); vs FI = FlashInfer's time / this one.", "", *lines],
         args.out, "diag_rmsnorm_variants.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
