"""Issue #18's closest points, measured again and again: are we behind FlashInfer there, or even with it?

One run of bench_rmsnorm / bench_attention times each shape once (on one allocation, one page order), and at the
points where both libraries run within 1-3% of a copy or a read of the same bytes the ratio moves from run to run
by about as much as it differs from 1.0 (fused_add_rmsnorm 8192 x 4096 back to back read 0.985x, 0.990x, 1.003x and
1.019x in four calls of the same kernel on the H200, 2026-12-04). This diag repeats each point ``--repeats`` times,
each repetition on fresh inputs (new tensors behind a pad of a different size, so at other addresses; for decode a
new random page order), the implementations timed in turn within it as the benchmarks time them, and reports every
repetition's ratio, their median, range and how many are at or above 1.0, beside the floor of the same repetition.

    python3 -m benchmarks.diag_ties --out $OUT [--repeats 7] [--parts rmsnorm,decode]
        [--rmsnorm-shapes 8192x4096,...] [--decode-cases 64x8192,...] [--variants 'NAME;NAME']

  rmsnorm  fused_add_rmsnorm back to back (host_cost.back_to_back_each, 7 rounds): ours (`auto`) and FlashInfer,
           and a device-to-device copy of the same bytes (the floor)
  decode   bf16 decode, 32 q / 8 kv heads, d 128, page 16, cold L2 (bench_attention's timer): ours (the default
           path) and FlashInfer's better backend, and a plain read of the same K/V bytes (the floor)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence

import torch

from benchmarks import diag_rmsnorm_variants
from benchmarks.bench_attention import (
    HKV,
    PAGE,
    D,
    Problem,
    device_time_us,
    flashinfer_decode,
    measure_in_turn,
    ours_decode,
)
from benchmarks.bench_rmsnorm import (
    B2B_ROUND_S,
    COPY_NAME,
    check,
    copy_floor,
    input_sets,
    make_backends,
    op_bytes,
    timed_call,
)
from benchmarks.common import add_out_argument, emit, stamp
from benchmarks.host_cost import back_to_back_each
from benchmarks.read_floor import read_floor_us

RMSNORM_SHAPES = ((8192, 4096), (16384, 4096), (32768, 4096), (8192, 8192), (16384, 8192), (32768, 8192))
DECODE_CASES = tuple((b, n) for b in (64, 128, 256) for n in (1024, 2048, 4096, 8192))
PAD_STEP_BYTES = 3 << 20  # repetition k allocates k x 3 MiB ahead of its inputs: the inputs land elsewhere each time


def summarize(ratios: Sequence[float]) -> Dict[str, float]:
    """Median, least and greatest of one point's per-repetition ratios (FlashInfer's time / ours), and how many are
    at or above 1.0. Raises ValueError on an empty sequence."""
    if not ratios:
        raise ValueError("summarize: no repetitions")
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
            "at_least_even": sum(r >= 1.0 for r in ratios), "repeats": len(ratios)}


def summary_cells(ratios: Sequence[float]) -> str:
    """A table's cells for one point: every ratio, the median, the range and the count at or above 1.0."""
    s = summarize(ratios)
    listed = " ".join(f"{r:.3f}" for r in ratios)
    return (f"{listed} | **{s['median']:.3f}x** | {s['min']:.3f}-{s['max']:.3f} | "
            f"{s['at_least_even']}/{s['repeats']}")


def rmsnorm_rows(shapes, repeats: int, device: str, variants=()) -> List[str]:
    """fused_add_rmsnorm back to back at each shape, ``repeats`` times on fresh inputs: table rows (one more row a
    shape for each of ``variants``, diag_rmsnorm_variants' builds, timed in turn with the others)."""
    op = "fused_add_rmsnorm"
    backends = make_backends(["auto", "flashinfer"], device)
    if "flashinfer" not in backends:
        raise RuntimeError("diag_ties needs FlashInfer (benchmarks/prepare_gpu_deps.sh)")
    rows = []
    with tempfile.TemporaryDirectory() as where:
        if variants:
            diag_rmsnorm_variants.prebuild(device, Path(where), variants)
        for batch, hidden in shapes:
            extra = diag_rmsnorm_variants.variant_backends(device, Path(where), hidden, variants) if variants else {}
            rows += rmsnorm_shape_rows(op, batch, hidden, {**backends, **extra}, repeats, device)
    return rows


def rmsnorm_shape_rows(op, batch, hidden, backends, repeats, device) -> List[str]:
    """One shape of rmsnorm_rows: a row for `auto` and one for each other implementation but FlashInfer."""
    ours_names = [n for n in backends if n != "flashinfer"]
    for name, fns in backends.items():
        err, err_sum = check(op, fns, batch, hidden, device)
        if err > 1e-2 or err_sum > 1e-2:
            raise RuntimeError(f"{name} {batch}x{hidden}: relative error {err:.2e} / {err_sum:.2e}")
    times = {name: [] for name in [*backends, COPY_NAME]}
    calls = int(min(500, max(20, B2B_ROUND_S / (op_bytes(op, batch, hidden) / 3e12))))
    for k in range(repeats):
        pad = torch.empty(k * PAD_STEP_BYTES + 1, dtype=torch.uint8, device=device)
        sets, w = input_sets(op, batch, hidden, device, 1, seed=1000 + k)
        fns = {name: (lambda c=timed_call(op, f, w), s=sets[0]: c(s)) for name, f in backends.items()}
        fns[COPY_NAME] = copy_floor(op, batch, hidden, device)
        b2b = back_to_back_each(fns, calls=calls, rounds=7)
        for name in times:
            times[name].append(b2b[name].wall_us)
        print(f"fused_add_rmsnorm {batch}x{hidden} #{k}: "
              + ", ".join(f"{name} {b2b[name].wall_us:.1f}" for name in times) + " us", flush=True)
        del pad, sets, fns
        torch.cuda.empty_cache()
    fi, floor = times["flashinfer"], times[COPY_NAME]
    rows = []
    for name in ours_names:
        ours = times[name]
        label = "fused_add_rmsnorm b2b" + ("" if name == "auto" else f" ({name})")
        rows.append(f"| {label} | {batch} x {hidden} | {statistics.median(ours):.1f} | "
                    f"{statistics.median(fi):.1f} | {summary_cells([f / o for f, o in zip(fi, ours)])} | "
                    f"{statistics.median([c / o for c, o in zip(floor, ours)]):.3f} |")
    return rows


def decode_rows(cases, repeats: int, device: str) -> List[str]:
    """Decode at each (batch, KV length), ``repeats`` times on fresh page orders, cold L2: table rows."""
    max_tokens = max(b * n for b, n in cases)
    cache = torch.empty(max_tokens // PAGE, 2, PAGE, HKV, D, dtype=torch.bfloat16, device=device).normal_()
    ws = torch.empty(256 << 20, dtype=torch.uint8, device=device)
    fi_ws = torch.empty(256 << 20, dtype=torch.uint8, device=device)
    rows = []
    for batch, kv_len in cases:
        ratios, floor_share, ours_us, fi_us = [], [], [], []
        for k in range(repeats):
            p = Problem(cache, batch, 1, kv_len, seed=7919 * (k + 1) + batch * 7 + kv_len)
            timed = measure_in_turn({"ours": lambda: ours_decode(p, ws),
                                     "fi_cuda_cores": lambda: flashinfer_decode(p, fi_ws, False),
                                     "fi_tensor_cores": lambda: flashinfer_decode(p, fi_ws, True)}, False, 1)
            ours = timed["ours"][0]
            fi = min(timed["fi_cuda_cores"][0], timed["fi_tensor_cores"][0])
            floor = read_floor_us(lambda fn: device_time_us(fn, False), cache, p.kv_bytes())
            ratios.append(fi / ours)
            floor_share.append(floor / ours)
            ours_us.append(ours)
            fi_us.append(fi)
            print(f"decode {batch}x{kv_len} #{k}: ours {ours:.1f} FI {fi:.1f} floor {floor:.1f} us "
                  f"-> {fi / ours:.3f}x", flush=True)
        rows.append(f"| decode (cold L2) | {batch} x {kv_len} | {statistics.median(ours_us):.1f} | "
                    f"{statistics.median(fi_us):.1f} | {summary_cells(ratios)} | "
                    f"{statistics.median(floor_share):.3f} |")
    return rows


def parse_pairs(text: str, option: str) -> List[tuple]:
    """'8192x4096,16384x4096' -> [(8192, 4096), (16384, 4096)]; a malformed entry is an error naming ``option``."""
    pairs = []
    for item in text.split(","):
        try:
            a, b = (int(v) for v in item.strip().split("x"))
        except ValueError:
            raise SystemExit(f"{option}: '{item}' is not ROWSxCOLUMNS (e.g. 8192x4096)") from None
        pairs.append((a, b))
    return pairs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_out_argument(parser)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--parts", default="rmsnorm,decode", help="comma list of rmsnorm, decode")
    parser.add_argument("--rmsnorm-shapes", default=",".join(f"{r}x{h}" for r, h in RMSNORM_SHAPES))
    parser.add_argument("--decode-cases", default=",".join(f"{b}x{n}" for b, n in DECODE_CASES))
    parser.add_argument("--variants", default="",
                        help="diag_rmsnorm_variants' builds to time beside ours, ';' between names")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    unknown = sorted(set(parts) - {"rmsnorm", "decode"})
    if unknown:
        parser.error(f"--parts: unknown {unknown} (rmsnorm, decode)")
    variants = [n.strip() for n in args.variants.split(";") if n.strip()]
    unknown = [n for n in variants if n not in diag_rmsnorm_variants.VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; known: {'; '.join(diag_rmsnorm_variants.VARIANTS)}")
    if args.repeats < 1:
        parser.error("--repeats: at least 1")
    if not torch.cuda.is_available():
        parser.error("diag_ties times CUDA kernels: no GPU here")
    run = stamp("cuda")
    lines = []
    if "rmsnorm" in parts:
        lines += rmsnorm_rows(parse_pairs(args.rmsnorm_shapes, "--rmsnorm-shapes"), args.repeats, "cuda", variants)
    if "decode" in parts:
        lines += decode_rows(parse_pairs(args.decode_cases, "--decode-cases"), args.repeats, "cuda")
    emit([f"# Issue #18's closest points, repeated ({run.machine}, {run.date})", "",
          f"`python3 -m benchmarks.diag_ties --repeats {args.repeats}`: each point timed {args.repeats} times, each "
          "time on fresh inputs (rmsnorm: new tensors at other addresses; decode: a new random page order), ours and "
          "FlashInfer (its better backend) in turn within each repetition. 'ratio' = FlashInfer's time / ours "
          "(>= 1: ours no slower); 'floor / ours' = the time of a copy (rmsnorm) or a plain read (decode) of the "
          "same bytes over ours, median over the repetitions.", "",
          "| point | shape | ours us (median) | FI us (median) | ratio each repetition | median ratio | range | "
          ">= 1.0 | floor / ours |", "|---|---|---|---|---|---|---|---|---|", *lines],
         args.out, "diag_ties.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
