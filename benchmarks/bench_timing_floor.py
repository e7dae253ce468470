"""Timing floor: what bench_rmsnorm.py's timer and L2 flush put under a small kernel's time (issue #5).

The issue asks for rmsnorm 32 x 4096 <= 4.5 us and 1024 x 4096 <= 8 us, where a device-to-device copy of the
same bytes measured 5.2 and 11.0 us. This script times, with timing.ColdL2Timer on one GPU, bf16
[rows, 4096] inputs for rows in ROWS, under four things run before each timed call:

    write   the benchmark's flush: 256 MB written (leaves the L2 full of dirty lines)
    read    256 MB read by a Triton sum kernel (leaves clean lines)
    none    nothing: warm L2, but the GPU idles while the host launches, so host time above the GPU's shows
    sleep   a 300 us sleep kernel: warm L2 with the host ahead, the device time alone

What is timed:
    empty Triton kernel (direct launch) and torch.cuda._sleep(0): a launch between two events, nothing moved
    Triton sum of each row into one float: the input's bytes read, a tiny write
    torch copy of the input: the bytes an rmsnorm moves (read + write), bench_rmsnorm's "d2d copy"
    rmsnorm (Triton), through triton_impl's direct launch and through Triton's ordinary launch
and the host time of one call (median, no synchronization), which must stay under the flush's GPU time.

    python3 -m benchmarks.bench_timing_floor [--out DIR]      # GPU; table printed, and in DIR/timing_floor.md
    TRITON_INTERPRET=1 python3 -m benchmarks.bench_timing_floor --device cpu   # smoke test of the script
--out defaults to $OUT; without either the table is only printed.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import torch
import triton
import triton.language as tl

from benchmarks.bench_rmsnorm import EPS, input_sets, op_bytes
from benchmarks.common import add_out_argument, publish, stamp
from benchmarks.read_floor import EMPTY_KERNEL  # the empty kernel, direct launch
from kernelarena import env
from kernelarena.bench.timing import ColdL2Timer
from kernelarena.kernels.rmsnorm import triton as triton_impl
from kernelarena.kernels.rmsnorm.triton import DirectLauncher

ROWS = (1, 32, 1024, 8192)
HIDDEN = 4096
SLEEP_AHEAD_US = 300  # longer than Triton's ordinary launch on the H100 machine's host (~100 us)


@triton.jit
def _sum_rows_kernel(x_ptr, out_ptr, n_cols, stride, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    base = x_ptr + row.to(tl.int64) * stride
    acc = tl.zeros([BLOCK], tl.float32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        acc += tl.load(base + cols, mask=cols < n_cols, other=0.0).to(tl.float32)
    tl.store(out_ptr + row, tl.sum(acc, axis=0))


_SUM_ROWS = DirectLauncher(_sum_rows_kernel)


def sum_rows(x: torch.Tensor, out: torch.Tensor) -> None:
    """out[i] = sum of row i of x (2-D, last dim contiguous), in float32: reads x once, writes 4 bytes a row."""
    n_rows, n_cols = x.shape
    _SUM_ROWS(n_rows, x, out, n_cols, x.stride(0), min(4096, 1 << (n_cols - 1).bit_length()), num_warps=4)


def host_us(fn, sets, calls=200):
    """Median host time of one fn(set) call, calls issued back to back."""
    times = []
    for i in range(calls):
        start = time.perf_counter()
        fn(sets[i % len(sets)])
        times.append(time.perf_counter() - start)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return statistics.median(times) * 1e6


def ordinary_launch(fn):
    """fn with triton_impl's direct launch turned off for the duration of each call."""
    def call(s):
        DirectLauncher.enabled = False
        try:
            return fn(s)
        finally:
            DirectLauncher.enabled = True
    return call


def make_flushes(device, flush_bytes):
    """Flush name -> callable run before each timed call, and the 256 MB buffer they use."""
    buffer = torch.zeros(flush_bytes, dtype=torch.int8, device=device)
    as_rows = buffer.view(torch.bfloat16).view(-1, 8192)
    row_sums = torch.empty(as_rows.shape[0], dtype=torch.float32, device=device)
    flushes = {"write": buffer.zero_, "read": lambda: sum_rows(as_rows, row_sums), "none": lambda: None}
    if device == "cuda":
        from kernelarena.bench.timing import sleep_cycles_per_us

        cycles = int(SLEEP_AHEAD_US * sleep_cycles_per_us(torch.device(device)))
        flushes["sleep"] = lambda: torch.cuda._sleep(cycles)
    return flushes


def measurements(device, rows_list):
    """(what, rows or None, KiB moved, fn(set), sets) for every timed item."""
    first_sets, _ = input_sets("rmsnorm", rows_list[0], HIDDEN, device, 2)
    items = [("empty Triton kernel, direct launch", None, 0, lambda s: EMPTY_KERNEL(1, s[0]), first_sets)]
    if device == "cuda":
        items.append(("torch.cuda._sleep(0)", None, 0, lambda s: torch.cuda._sleep(0), first_sets))
    for rows in rows_list:
        n_sets = max(2, min(8, math.ceil((256 << 20) / op_bytes("rmsnorm", rows, HIDDEN))))  # as bench_rmsnorm
        sets, w = input_sets("rmsnorm", rows, HIDDEN, device, n_sets)
        sums = torch.empty(rows, dtype=torch.float32, device=device)
        x_kib = rows * HIDDEN * 2 / 1024
        norm = lambda s, w=w: triton_impl.launch(s[0], None, w, s[2], None, EPS)  # noqa: E731
        items += [
            ("Triton sum of rows (reads x)", rows, x_kib, lambda s, sums=sums: sum_rows(s[0], sums), sets),
            ("torch copy x -> out", rows, 2 * x_kib, lambda s: s[2].copy_(s[0]), sets),
            ("rmsnorm Triton, direct launch", rows, op_bytes("rmsnorm", rows, HIDDEN) / 1024, norm, sets),
            ("rmsnorm Triton, Triton's launch", rows, op_bytes("rmsnorm", rows, HIDDEN) / 1024,
             ordinary_launch(norm), sets),
        ]
    return items


def markdown(rows, flush_us, meta):
    lines = [f"# Timing floor, {meta['date']}, {meta['device']}", "",
             f"torch {meta['torch']}, triton {meta['triton']}; bf16 [rows, {HIDDEN}]; median us of CUDA-event "
             "time around one call (timing.ColdL2Timer), inputs rotated, with before each call: write = "
             f"{meta['flush_mb']} MB written (the write flush), read = {meta['flush_mb']} MB read by a "
             "Triton sum, none = nothing, "
             f"sleep = a {SLEEP_AHEAD_US} us sleep kernel (warm L2, host ahead). host us: one call's host time. "
             "GPU time of each flush: " + ", ".join(f"{k} {v:.1f} us" for k, v in flush_us.items()) + ".", "",
             "| what | rows | KiB moved | host us | " + " | ".join(meta["flushes"]) + " |",
             "|---|---|---|---|" + "---|" * len(meta["flushes"])]
    for r in rows:
        rows_cell = "-" if r["rows"] is None else str(r["rows"])
        times = " | ".join(f"{r['us'][f]:.1f}" for f in meta["flushes"])
        lines.append(f"| {r['what']} | {rows_cell} | {r['kib']:.0f} | {r['host_us']:.1f} | {times} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    add_out_argument(parser)
    args = parser.parse_args(argv)
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA GPU here; run on the GPU machine, or smoke-test with TRITON_INTERPRET=1 --device cpu")
    if device == "cpu" and not env.triton_interpreted():
        parser.error("--device cpu needs TRITON_INTERPRET=1 in the environment (kernels are defined at import)")
    # On the CPU (interpreter, wall-clock timer that runs no flush) a small run only checks the script.
    rows_list, flush_bytes = (ROWS, 256 << 20) if device == "cuda" else ((1, 4), 1 << 20)
    flushes = make_flushes(device, flush_bytes)
    base = ColdL2Timer(device, flush_l2=flushes["none"], host_ahead_us=0)
    flush_us = {name: base.median_us(lambda _, f=f: f(), [None]) for name, f in flushes.items() if name != "none"}
    timers = {name: ColdL2Timer(device, flush_l2=f, host_ahead_us=0) for name, f in flushes.items()}
    run = stamp(device)
    meta = {"date": run.date, "device": run.machine if device == "cuda" else "cpu (interpreter smoke test)",
            "torch": torch.__version__, "triton": triton.__version__, "flushes": list(timers),
            "flush_mb": flush_bytes >> 20}
    results = []
    for what, rows, kib, fn, sets in measurements(device, rows_list):
        us = {name: timer.median_us(fn, sets) for name, timer in timers.items()}
        results.append({"what": what, "rows": rows, "kib": kib, "host_us": host_us(fn, sets), "us": us})
        print(f"{what} [{rows}]: " + ", ".join(f"{k} {v:.1f}" for k, v in us.items()), flush=True)
    table = markdown(results, flush_us, meta)
    print()
    print(table)
    if args.out is not None:
        rows = [{"what": r["what"], "rows": "-" if r["rows"] is None else r["rows"], "KiB moved": round(r["kib"]),
                 "host us": round(r["host_us"], 1), **{f: round(r["us"][f], 1) for f in meta["flushes"]}}
                for r in results]
        path = publish("timing_floor", args.out, table, TITLE, key=["what", "rows"],
                       columns=["what", "rows", "KiB moved", "host us", *meta["flushes"]], rows=rows, run=run)
        print(f"results table: {path}")
    return 0


TITLE = """# Timing floor

What the cold-L2 event timer itself measures (`python3 -m benchmarks.bench_timing_floor`): median us of one call of
an empty kernel, a read, a copy and the Triton rmsnorm, bf16 [rows, 4096], under four things done before each call:
write = 256 MB written (the L2 flush), read = 256 MB read, none = nothing, sleep = a sleep kernel (warm L2, host
ahead). "host us" is one call's host time. One row per machine, case and rows, the latest run of each;
`timing_floor_latest.md` holds the latest run's full output."""

if __name__ == "__main__":
    sys.exit(main())
