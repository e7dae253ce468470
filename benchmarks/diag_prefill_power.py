"""Power and clocks of our prefill kernel (the default path on sm90: TileLang) and FlashInfer's fa3 at the prefill
grid's largest points, where the H200 runs at its power cap.

    python3 -m benchmarks.diag_prefill_power --out $OUT [--cases 16x8192x16384,4x1024x4096] [--seconds 3]

Each implementation runs back to back for ``--seconds`` on one case (nothing else on the GPU), while a thread samples
``nvidia-smi`` (power draw, SM clock, the clock-event reasons) every 100 ms; the implementations take turns, twice,
with a rest between runs. Reported per run: microseconds a call, mean power over the run's second half, mean SM
clock, the share of samples with the software power cap active (reason 0x4), and the energy a call (mean power x
time a call). A kernel that needs more energy for the same work runs at lower clocks under the cap. Writes
diag_prefill_power.md under --out.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time

import torch

from benchmarks.bench_attention import HKV, PAGE, D, Problem, flashinfer_prefill, ours_prefill
from benchmarks.common import add_out_argument, emit, stamp

QUERY = "power.draw,clocks.sm,clocks_event_reasons.active"
SW_POWER_CAP = 0x4


def sample(stop: threading.Event, into: list) -> None:
    """(time, watts, MHz, reasons) every ~100 ms until ``stop``."""
    while not stop.is_set():
        line = subprocess.run(["nvidia-smi", f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True).stdout.strip().splitlines()[0]
        watts, mhz, reasons = (v.strip() for v in line.split(","))
        into.append((time.perf_counter(), float(watts), float(mhz), int(reasons, 16)))
        stop.wait(0.1)


def run_for(fn, seconds: float) -> tuple[float, list]:
    """Call ``fn`` back to back for about ``seconds``; (us a call, samples of the run's second half)."""
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    per_call = time.perf_counter() - t0
    calls = max(3, int(seconds / per_call))
    samples: list = []
    stop = threading.Event()
    thread = threading.Thread(target=sample, args=(stop, samples))
    thread.start()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    torch.cuda.synchronize()
    end = time.perf_counter()
    stop.set()
    thread.join()
    half = start + (end - start) / 2
    return (end - start) / calls * 1e6, [s for s in samples if half <= s[0] <= end]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_out_argument(parser)
    parser.add_argument("--cases", default="16x8192x16384,4x1024x4096", help="BATCHxQUERIESxKV,...")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rest", type=float, default=3.0, help="seconds idle before each run")
    args = parser.parse_args(argv)
    device = torch.device("cuda")
    run = stamp("cuda")
    cases = [tuple(int(v) for v in c.split("x")) for c in args.cases.split(",")]
    tokens = max(b * kv for b, _, kv in cases)
    cache = torch.empty(tokens // PAGE, 2, PAGE, HKV, D, dtype=torch.bfloat16, device=device).normal_()
    ws = torch.empty(256 << 20, dtype=torch.uint8, device=device)
    fi_ws = torch.empty(256 << 20, dtype=torch.uint8, device=device)
    lines = ["| case | implementation | run | us/call | mean W | mean SM MHz | power-capped samples | mJ/call |",
             "|---|---|---|---|---|---|---|---|"]
    for batch, qo_len, kv_len in cases:
        p = Problem(cache, batch, qo_len, kv_len, seed=batch + qo_len)
        impls = {"ours (default)": ours_prefill(p, ws)[1], "flashinfer fa3": flashinfer_prefill(p, fi_ws, "fa3")[1]}
        for round_ in (1, 2):
            for name, fn in impls.items():
                time.sleep(args.rest)
                us, samples = run_for(fn, args.seconds)
                watts = statistics.fmean(s[1] for s in samples) if samples else float("nan")
                mhz = statistics.fmean(s[2] for s in samples) if samples else float("nan")
                capped = sum(1 for s in samples if s[3] & SW_POWER_CAP) / max(1, len(samples))
                lines.append(f"| {batch} x {qo_len} over {kv_len} | {name} | {round_} | {us:.1f} | {watts:.0f} | "
                             f"{mhz:.0f} | {capped:.0%} | {watts * us * 1e-3:.1f} |")
                print(lines[-1], flush=True)
    emit([f"# Prefill power and clocks ({run.machine}, {run.date})", "",
          f"`python3 -m benchmarks.diag_prefill_power --cases {args.cases} --seconds {args.seconds}`: bf16, causal, "
          "32 / 8 heads, d 128, page 16; each implementation back to back for the given seconds after a rest, in "
          "turn, twice; power and clocks from nvidia-smi every 100 ms over each run's second half.", "", *lines],
         args.out, "diag_prefill_power.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
