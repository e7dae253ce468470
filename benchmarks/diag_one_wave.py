"""Issue #18's points still under FlashInfer, variant by variant: prefill where the tiles make one wave (1 x 512
queries over 512 / 4096 / 16384 keys, 128 tiles for 132 SMs) beside a case of many waves (4 x 1024 over 4096),
and decode at the largest batches (128 / 256 requests x 8192 keys). Each case times FlashInfer's best backend and
our kernel's variants in one run, timed in turn within each repetition with bench_attention.py's timer
(device_times_us: L2 cleared before each call, median; until 47cf8af each one after the other with triton's do_bench),
decode beside the read floor of the same bytes.

    source benchmarks/gpu_env.sh && python3 -m benchmarks.diag_one_wave --out $OUT
    ncu --profile-from-start off ... python3 -m benchmarks.diag_one_wave --profile 1,512,4096   # one call of each
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.bench_attention import (
    HKV,
    PAGE,
    TILELANG_SCHEDULES,
    D,
    Problem,
    device_time_us,
    device_times_us,
    flashinfer_decode,
    flashinfer_prefill,
    ours_decode,
    ours_prefill,
    rel_err,
)
from benchmarks.common import add_out_argument, emit, markdown_table, stamp
from benchmarks.read_floor import read_floor_us
from kernelarena.kernels.attention.kernel_config import KernelConfig

NAME = "diag_one_wave"
PREFILL_CASES = ((1, 512, 512), (1, 512, 4096), (1, 512, 16384), (4, 1024, 4096))
DECODE_CASES = ((128, 8192), (256, 8192), (256, 4096))
PREFILL_VARIANTS = {
    "fa3": TILELANG_SCHEDULES["fa3"],
    "fa3 static": replace(TILELANG_SCHEDULES["fa3"], dynamic=False),
    "plain": TILELANG_SCHEDULES["plain"],
    "fa3 block a tile": replace(TILELANG_SCHEDULES["fa3"], persistent=False),
    # 96-key blocks, as FlashInfer's sm90 paged kernel (AttentionKernelTraits<..., 128, 96, 2, ...> in ncu's name)
    "fa3 n96": replace(TILELANG_SCHEDULES["fa3"], block_n=96),
    "fa3 n96 s3": replace(TILELANG_SCHEDULES["fa3"], block_n=96, num_stages=3),
    "fa3 n112": replace(TILELANG_SCHEDULES["fa3"], block_n=112),
    # three K/V stages (224 KB of shared memory with Q): a block more of slack between a stage's release and its use
    "fa3 s3": replace(TILELANG_SCHEDULES["fa3"], num_stages=3),
    "plain s3": replace(TILELANG_SCHEDULES["plain"], num_stages=3),
}
# The default decode config (16 x 128 blocks, 2 stages, 2 programs an SM, KV split only below one item a program)
# and the same with each request's KV cut in 2 or 4 equal chunks (merged in the launch), 1 program an SM, 3 stages.
DECODE_VARIANTS = {
    "default": None,
    "2 chunks": KernelConfig(16, 128, 4, 2, 2, 256, 8),
    "4 chunks": KernelConfig(16, 128, 4, 2, 2, 256, 16),
    "1 program/SM": KernelConfig(16, 128, 4, 2, 1, 256, 1),
    "3 stages": KernelConfig(16, 128, 4, 3, 2, 256, 1),
}


MODULE = "kernelarena.kernels.attention.prefill_tilelang"


@contextlib.contextmanager
def kernel_file(path: Path | None):
    """The TileLang kernel's module loaded from ``path`` (another commit's prefill_tilelang.py) in place of the
    package's own while the block runs: an A/B of two versions of the kernel in one run. The launcher imports the
    module at each call and keeps the kernel it compiled, so a run planned inside the block stays on that version."""
    if path is None:
        yield
        return
    package = sys.modules[MODULE.rsplit(".", 1)[0]]
    own = sys.modules[MODULE]
    spec = importlib.util.spec_from_file_location(MODULE, path)
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    sys.modules[MODULE], package.prefill_tilelang = other, other
    try:
        yield
    finally:
        sys.modules[MODULE], package.prefill_tilelang = own, own


def prefill_rows(cache, ws, fi_ws, variants: dict, cases, ab: Path | None = None) -> list[dict]:
    import kernelarena.kernels.attention.prefill_tilelang  # noqa: F401  (the module kernel_file swaps)

    versions = [("", None)] + ([(f" @{ab.stem.rsplit('_', 1)[-1]}", ab)] if ab else [])
    rows = []
    for batch, qo, kv in cases:
        p = Problem(cache, batch, qo, kv, seed=batch + qo)
        _, fi_run, ref = flashinfer_prefill(p, fi_ws, "fa3")
        runs, outs = {"FlashInfer fa3": fi_run}, {}
        for name, config in variants.items():
            for suffix, path in versions:
                with kernel_file(path):  # planned and compiled with that version; its runs keep the kernel
                    _, runs[name + suffix], outs[name + suffix] = ours_prefill(p, ws, config)
                    runs[name + suffix]()
        row = {"case": f"prefill {batch} x {qo} / {kv}", **device_times_us(runs, False)}
        row.update({f"{name} err": rel_err(out, ref) for name, out in outs.items()})
        rows.append(row)
        print(row, flush=True)
    return rows


def decode_rows(cache, ws, fi_ws) -> list[dict]:
    rows = []
    for batch, kv in DECODE_CASES:
        p = Problem(cache, batch, 1, kv, seed=batch * 7 + kv)
        _, fi_run, ref = flashinfer_decode(p, fi_ws, True)
        runs, outs = {"FlashInfer tc": fi_run}, {}
        for name, config in DECODE_VARIANTS.items():
            _, runs[name], outs[name] = ours_decode(p, ws, config)
        row = {"case": f"decode {batch} / {kv}", **device_times_us(runs, False),
               "K/V read floor": read_floor_us(lambda fn: device_time_us(fn, False), cache, p.kv_bytes())}
        row.update({f"{name} err": rel_err(out, ref) for name, out in outs.items()})
        rows.append(row)
        print(row, flush=True)
    return rows


def profile(cache, ws, fi_ws, case: str) -> None:
    """One call each of FlashInfer's fa3 and our fa3-schedule kernel between profiler start and stop (ncu)."""
    batch, qo, kv = (int(x) for x in case.split(","))
    p = Problem(cache, batch, qo, kv, seed=batch + qo)
    runs = [flashinfer_prefill(p, fi_ws, "fa3")[1], ours_prefill(p, ws, PREFILL_VARIANTS["fa3"])[1]]
    for run in runs:
        run()
        run()
    torch.cuda.synchronize()
    for run in runs:
        torch.cuda.profiler.start()
        run()
        torch.cuda.synchronize()
        torch.cuda.profiler.stop()


def table(rows: list[dict], base: str) -> list[str]:
    """Times in us, each column's ratio to FlashInfer (> 1: faster than FlashInfer) beside it."""
    names = [k for k in rows[0] if k != "case" and not k.endswith(" err")]
    out = []
    for r in rows:
        cells = {"case": r["case"]}
        for n in names:
            cells[n] = f"{r[n]:.1f}" if n == base else f"{r[n]:.1f} ({r[base] / r[n]:.3f}x)"
        out.append(cells)
    errs = max(v for r in rows for k, v in r.items() if k.endswith(" err"))
    return [markdown_table(list(out[0]), out), f"Largest relative error against FlashInfer: {errs:.1e}"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="batch,queries,keys: one call each for ncu, then stop")
    parser.add_argument("--only", choices=("prefill", "decode"), default=None)
    parser.add_argument("--variants", default=None,
                        help="comma-separated prefill variants to time (default: all of PREFILL_VARIANTS)")
    parser.add_argument("--ab", type=Path, default=None,
                        help="another prefill_tilelang.py (named ..._<rev>.py): every variant timed with it too")
    parser.add_argument("--cases", default=None, help="prefill cases as b,q,kv;b,q,kv (default: PREFILL_CASES)")
    add_out_argument(parser)
    args = parser.parse_args(argv)
    device = torch.device("cuda")
    cases = [tuple(int(x) for x in c.split(",")) for c in args.cases.split(";")] if args.cases else PREFILL_CASES
    variants = {n: PREFILL_VARIANTS[n] for n in args.variants.split(",")} if args.variants else PREFILL_VARIANTS
    tokens = max(max(b * kv for b, _, kv in cases), max(b * kv for b, kv in DECODE_CASES))
    cache = torch.empty(tokens // PAGE, 2, PAGE, HKV, D, dtype=torch.bfloat16, device=device).normal_()
    ws = torch.empty(256 << 20, dtype=torch.uint8, device=device)
    fi_ws = torch.empty(256 << 20, dtype=torch.uint8, device=device)
    if args.profile:
        profile(cache, ws, fi_ws, args.profile)
        return
    run = stamp("cuda")
    lines = [f"# One-wave prefill and large decode, variant by variant ({run.machine}, {run.date})", "",
             "bf16, 32 q / 8 kv heads, head_dim 128, page 16, causal prefill; us per call (bench_attention's "
             "device_times_us: L2 cleared before each call, median, the implementations timed in turn); (ratio) = "
             "FlashInfer's time / this one.", ""]
    if args.only != "decode":
        rows = prefill_rows(cache, ws, fi_ws, variants, cases, args.ab)
        lines += ["## Prefill (TileLang kernel's variants)", ""] + table(rows, "FlashInfer fa3") + [""]
    if args.only != "prefill":
        lines += ["## Decode (Triton kernel's configs)", ""] + table(decode_rows(cache, ws, fi_ws),
                                                                      "FlashInfer tc") + [""]
    emit(lines, args.out, f"{NAME}_latest.md")


if __name__ == "__main__":
    main()
