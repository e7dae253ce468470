"""What a CUPTI profile's start and stop cost in a process that profiles again and again, as a solution's worker
and a reference process do (one profile per timed loop), with Kineto's default and with ``TEARDOWN_CUPTI=0``
(Kineto finalizes CUPTI after each profile by default from CUDA 12.6: ``cuptiFinalize``, said to be heavy, and a
re-initialization at the next start). And whether CUPTI left attached makes the calls after a profile slower on
the host: the timer takes a call's host time from unprofiled warm-up calls, so that must not change.

In #14's wall-time runs on the H200 (2026-12-04) reading profiles back took 12.1 s of the solutions' lane time
and 4.5-5.3 s of the reference processes', about 0.1 s a timed loop. Each setting runs in a fresh process; each
cycle: host time of unprofiled calls, a profile of the same calls (start, calls, stop), host time again.

    python3 -m benchmarks.diag_cupti_teardown --out "$OUT" [--cycles 6] [--calls 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

from benchmarks.common import add_out_argument, emit, markdown_table, stamp

SETTINGS = {"Kineto's default": {}, "TEARDOWN_CUPTI=0": {"TEARDOWN_CUPTI": "0"}}


def _host_us(call, calls: int) -> float:
    import torch

    spent = []
    for i in range(calls):
        t0 = time.perf_counter()
        call(i)
        spent.append(time.perf_counter() - t0)
    torch.cuda.synchronize()
    return statistics.median(spent) * 1e6


def child(cycles: int, calls: int) -> List[Dict[str, float]]:
    """Each cycle's figures, in this process."""
    import torch

    from kernelarena.bench.device_activity import ActivityProfile

    x = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(4096, device="cuda", dtype=torch.bfloat16)

    def call(i):
        return torch.nn.functional.rms_norm(x, (4096,), w)

    _host_us(call, 50)  # loads the kernels
    rows = []
    for cycle in range(cycles):
        before = _host_us(call, calls)
        profile = ActivityProfile(calls)
        t0 = time.perf_counter()
        profile.start()
        started = time.perf_counter() - t0
        for i in range(calls):
            with profile.call(i):
                call(i)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        activity = profile.stop()
        stopped = time.perf_counter() - t0
        t0 = time.perf_counter()
        call(0)  # Kineto's teardown may run in a callback of the next CUDA call after the stop
        first = time.perf_counter() - t0
        after = _host_us(call, calls)
        busy = activity.busy_us() if activity.problem is None else []
        rows.append({"cycle": cycle, "start ms": started * 1e3, "stop ms": stopped * 1e3,
                     "first call after ms": first * 1e3,
                     "host us before": before, "host us after": after, "events": activity.events,
                     "device us": statistics.median(busy) if busy else float("nan"),
                     "problem": activity.problem or ""})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_out_argument(parser)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.cycles, args.calls)))
        return 0
    table = []
    for setting, extra in SETTINGS.items():
        environ = {k: v for k, v in os.environ.items() if k != "TEARDOWN_CUPTI"}
        done = subprocess.run([sys.executable, "-m", "benchmarks.diag_cupti_teardown", "--child",
                               "--cycles", str(args.cycles), "--calls", str(args.calls)],
                              env={**environ, **extra}, capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1])
        if done.returncode:
            print(done.stdout, done.stderr, file=sys.stderr)
            table.append({"setting": setting, "cycle": "failed", "problem": done.stderr.strip()[-300:]})
            continue
        for row in json.loads(done.stdout.strip().splitlines()[-1]):
            table.append({"setting": setting, **{k: (round(v, 2) if isinstance(v, float) else v)
                                                 for k, v in row.items()}})
    columns = ["setting", "cycle", "start ms", "stop ms", "first call after ms", "host us before", "host us after",
               "device us", "events", "problem"]
    where = stamp("cuda")
    lines = [f"# CUPTI profile start and stop, repeated in one process ({where.machine}, {where.date})", "",
             f"Command: `python3 -m benchmarks.diag_cupti_teardown --cycles {args.cycles} --calls {args.calls}`; "
             "torch.nn.functional.rms_norm on 4096 x 4096 bf16; host us: median host time of one unprofiled call "
             "before and after the cycle's profile; first call after: the call right after the stop.", "",
             markdown_table(columns, table)]
    emit(lines, args.out, "diag_cupti_teardown_latest.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
