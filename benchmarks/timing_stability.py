"""Does a long call's measured latency depend on what the GPU did just before? Heavy calls (a bf16 GEMM through
PyTorch and through the dataset's Triton solution) are timed by the evaluator's own timer (bench/timing.py,
CUDA events, L2 flushed) in four states, interleaved and repeated: after the GPU sat idle, right after seconds
of back-to-back matmuls, and each of those with and without the timer's settling rounds before its loop. The
SM clock, power and temperature are sampled by nvidia-smi throughout and summarised per measurement. "+settle":
the timer's own settling rounds (TimingConfig.settle_s, bench/timing.SETTLE_S by default); without it, settle_s=0.

    source benchmarks/gpu_env.sh && python3 -m benchmarks.timing_stability --out $OUT

Writes $OUT/timing_stability_latest.md. Used to choose the evaluator's settling (issue #23: a Triton GEMM at
M=2048 read 845 and 899 us in two runs of the same dataset).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import add_out_argument, stamp, timed_cases
from kernelarena.bench.config import TimingConfig
from kernelarena.bench.timing import SETTLE_S, time_calls

ROOT = Path(__file__).resolve().parents[1]
STATES = ("idle", "hot", "idle+settle", "hot+settle")
LONG_SETTLE_S = 1.0
LONG_STATES = ("idle+settle1s", "hot+settle1s")
REST = 1.0
REST_STATES = ("idle+rest", "hot+rest")
"""With --rest: also the states timed without settling and with the device idle REST times each call's length
after it (TimingConfig.rest): clocks at their peak, whatever the GPU did before?"""
"""With --long-settle: also the states with LONG_SETTLE_S of settling rounds, to see whether a longer settle
erases what ran before (issue #23: FlashInfer's prefill at 16 x 512 spread 5.7% and 4.2% in two sessions)."""
PREFILL = ("gqa_paged_prefill_causal_h32_kv8_d128_ps16", {"batch_size": 16, "total_q": 8192},
           {"flashinfer prefill 16x512 (dataset)": "flashinfer_wrapper_gqa_paged_prefill_causal_h32_kv8_d128_ps16",
            "triton prefill 16x512 (dataset)": "kernelarena_triton_gqa_paged_prefill_causal_h32_kv8_d128_ps16"})


def triton_gemm():
    """The dataset's Triton GEMM solution's ``gemm`` function, loaded from its JSON."""
    path = ROOT / "examples/dataset/solutions/gemm/gemm_n28672_k4096/gemm_n28672_k4096_kernelarena_triton.json"
    source = json.loads(path.read_text())["sources"][0]["content"]
    folder = Path(tempfile.mkdtemp(prefix="timing-stability-"))
    (folder / "gemm_triton.py").write_text(source)
    spec = importlib.util.spec_from_file_location("gemm_triton_stability", folder / "gemm_triton.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.gemm


def dataset_calls(definition_name: str, axes: dict, solutions: dict, copies: int, device: str = "cuda:0"):
    """name -> (call(i), outputs_of(i)) for the dataset's solutions on the first workload of ``definition_name``
    whose axes include ``axes``, made as a run's timed loop makes them (benchmarks/common.timed_cases)."""
    from kernelarena.store import TraceSet

    dataset = TraceSet.load(ROOT / "examples" / "dataset", strict=True)
    workload = next(w.workload for w in dataset.workloads[definition_name]
                    if all(w.workload.axes.get(k) == v for k, v in axes.items()))
    return {name: timed_cases(dataset, solution_name, workload, device, copies)[:2]
            for name, solution_name in solutions.items()}


def heat(seconds: float) -> None:
    """Back-to-back large matmuls for ``seconds``: the GPU at its power limit."""
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(20):
            a @ a
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-s", type=float, default=2.0)
    parser.add_argument("--hot-s", type=float, default=2.0)
    parser.add_argument("--kernels", choices=("gemm", "prefill"), default="gemm",
                        help="gemm: the GEMM through PyTorch and the dataset's Triton solution; prefill: the dataset's "
                             "FlashInfer and Triton paged prefill solutions at 16 x 512 queries over KV 4096")
    parser.add_argument("--mode", choices=("events", "cold"), default="events",
                        help="the timer: CUDA events, or the evaluator's default (CUPTI device time), both L2 flushed")
    parser.add_argument("--long-settle", action="store_true", help=f"add states settled {LONG_SETTLE_S} s")
    parser.add_argument("--rest", action="store_true", help=f"add states resting {REST}x each call after it")
    add_out_argument(parser)
    args = parser.parse_args()
    copies = 4
    if args.kernels == "gemm":
        m, n, k = 2048, 28672, 4096
        a = [torch.randn(m, k, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
        b = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / 64 for _ in range(copies)]
        c = [torch.empty(m, n, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
        gemm = triton_gemm()
        calls = {"torch.matmul": (lambda i: (torch.matmul(a[i], b[i].T, out=c[i]),), lambda i: (c[i],)),
                 "triton gemm (dataset)": (lambda i: (gemm(a[i], b[i], c[i]) or c[i],), lambda i: (c[i],))}
    else:
        calls = dataset_calls(*PREFILL, copies)
    states = STATES + (LONG_STATES if args.long_settle else ()) + (REST_STATES if args.rest else ())
    log = Path(tempfile.mkdtemp()) / "smi.csv"
    smi = subprocess.Popen(["nvidia-smi", "--query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu",
                            "--format=csv,noheader,nounits", "-lms", "20", "-f", str(log)])
    configs = {"": TimingConfig(mode=args.mode, settle_s=0), "+settle": TimingConfig(mode=args.mode),
               "+settle1s": TimingConfig(mode=args.mode, settle_s=LONG_SETTLE_S),
               "+rest": TimingConfig(mode=args.mode, settle_s=0, rest=REST)}
    rows = []
    started = time.time()
    try:
        for name, (call, _) in calls.items():
            call(0)
            torch.cuda.synchronize()
        for r in range(args.rounds):
            for name, (call, outputs_of) in calls.items():
                for state in states:
                    if state.startswith("idle"):
                        time.sleep(args.idle_s)
                    else:
                        heat(args.hot_s)
                    config = configs[state[state.index("+"):] if "+" in state else ""]
                    t0 = time.time() - started
                    stats, _ = time_calls(call, copies, "cuda", config, outputs_of, check=False)
                    t1 = time.time() - started
                    rows.append({"kernel": name, "state": state, "round": r, "median_us": stats.median_ms * 1e3,
                                 "p25_us": stats.p25_ms * 1e3, "p75_us": stats.p75_ms * 1e3,
                                 "reps": stats.count, "t0": t0, "t1": t1})
                    print(f"{name:22s} {state:10s} round {r}: median {stats.median_ms * 1e3:8.1f} us "
                          f"(p25 {stats.p25_ms * 1e3:.1f}, p75 {stats.p75_ms * 1e3:.1f}, {stats.count} reps)",
                          flush=True)
    finally:
        smi.terminate()
        smi.wait()
    clock = read_smi(log, started)
    for row in rows:
        inside = [s for s in clock if row["t0"] <= s[0] <= row["t1"]]
        row["sm_mhz"] = statistics.median(s[1] for s in inside) if inside else None
        row["power_w"] = max((s[2] for s in inside), default=None)
        row["temp_c"] = statistics.median(s[3] for s in inside) if inside else None
    write(rows, args, states)


def read_smi(log: Path, started: float) -> list:
    """(seconds since ``started``, SM MHz, watts, degrees C) samples from nvidia-smi's CSV."""
    import datetime

    samples = []
    for line in log.read_text().splitlines() if log.exists() else []:
        parts = [p.strip() for p in line.split(",")]
        try:
            when = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
            samples.append((when - started, float(parts[1]), float(parts[2]), float(parts[3])))
        except (ValueError, IndexError):
            continue
    return samples


def write(rows: list, args, states) -> None:
    s = stamp("cuda")
    what = ("GEMM 2048 x 28672 x 4096 bf16" if args.kernels == "gemm" else
            f"the dataset's paged prefill solutions on {PREFILL[0]} at {PREFILL[1]}, planned outside the loop")
    timer = "CUDA events" if args.mode == "events" else "CUPTI device time (the evaluator's default)"
    lines = [f"# Timing stability of long calls ({s.machine}, {s.date})", "",
             f"`python3 -m benchmarks.timing_stability --kernels {args.kernels} --mode {args.mode}"
             f"{' --long-settle' if args.long_settle else ''}{' --rest' if args.rest else ''}` "
             f"(rounds {args.rounds}, idle {args.idle_s} s, hot "
             f"{args.hot_s} s of 8192^3 bf16 matmuls). {what}, timed by bench/timing.time_calls ({timer}, L2 flushed, "
             f"warm-up of 10 calls); `+settle`: with the timer's settling rounds ({SETTLE_S} s), `+settle1s`: "
             f"{LONG_SETTLE_S} s of them; `+rest`: no settling, the device idle {REST}x each call's wall time after "
             "it (TimingConfig.rest); else settle_s=0. SM clock and temperature: medians of nvidia-smi's "
             "20 ms samples during the timing (settling included); power: its peak.", "",
             "| kernel | state | round | median us | p25 | p75 | reps | SM MHz | peak W | temp C |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    for r in rows:
        lines.append(f"| {r['kernel']} | {r['state']} | {r['round']} | {r['median_us']:.1f} | {r['p25_us']:.1f} | "
                     f"{r['p75_us']:.1f} | {r['reps']} | {fmt(r['sm_mhz'], '.0f')} | {fmt(r['power_w'], '.0f')} | "
                     f"{fmt(r['temp_c'], '.0f')} |")
    lines += ["", "Spread of the medians per kernel and state (max/min - 1) and across states:", ""]
    for kernel in dict.fromkeys(r["kernel"] for r in rows):
        mine = [r for r in rows if r["kernel"] == kernel]
        per = []
        for state in states:
            values = [r["median_us"] for r in mine if r["state"] == state]
            per.append(f"{state} {100 * (max(values) / min(values) - 1):.1f}%")
        every = [r["median_us"] for r in mine]
        plain = [r["median_us"] for r in mine if "+" not in r["state"]]
        settled = [r["median_us"] for r in mine if r["state"].endswith("+settle")]
        lines.append(f"- {kernel}: {', '.join(per)}; all {100 * (max(every) / min(every) - 1):.1f}%, without "
                     f"settling {100 * (max(plain) / min(plain) - 1):.1f}%, with "
                     f"{100 * (max(settled) / min(settled) - 1):.1f}%"
                     + (f", settled {LONG_SETTLE_S} s {100 * (max(long) / min(long) - 1):.1f}%"
                        if (long := [r["median_us"] for r in mine if r["state"].endswith("settle1s")]) else "")
                     + (f", resting {100 * (max(rest) / min(rest) - 1):.1f}%"
                        if (rest := [r["median_us"] for r in mine if r["state"].endswith("+rest")]) else ""))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        name = "timing_stability_latest.md" if args.kernels == "gemm" else f"timing_stability_{args.kernels}_latest.md"
        (Path(args.out) / name).write_text(text)


if __name__ == "__main__":
    main()
