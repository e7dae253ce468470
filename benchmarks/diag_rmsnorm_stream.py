"""The CUDA backend's streaming RMSNorm kernel (sm90), config by config, beside FlashInfer, our Triton and CUDA
vectorized kernels and a copy of the same bytes, all timed in turn within each repetition (cold L2).

    python3 -m benchmarks.diag_rmsnorm_stream --out $OUT [--ops fused_add_rmsnorm] [--shapes 8192x4096,...]

A config is (slots a block, blocks an SM, threads a block); only those that fit in shared memory are timed.
Every config is checked against the float64 reference on fresh inputs before it is timed. Writes
diag_rmsnorm_stream.md (and .json) under --out; the table the backend uses is ``backends.STREAM_TABLE``.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from benchmarks.bench_rmsnorm import (
    EPS,
    HOST_AHEAD_US,
    check,
    copy_ceiling_tbps,
    input_sets,
    make_backends,
    op_bytes,
    timed_call,
)
from benchmarks.common import add_out_argument, stamp
from kernelarena.bench.timing import ColdL2Timer

SHAPES = ((8192, 4096), (16384, 4096), (32768, 4096), (8192, 8192), (16384, 8192), (32768, 8192))
STAGES = (2, 3, 4, 6, 8)
PER_SM = (1, 2, 3)
THREADS = (0, 256)


def stream_backends(op, hidden, device):
    """"stream sS bB tT" -> (rmsnorm(x, w, out), fused(x, r, w)) for each config that fits (S slots, B blocks an
    SM, T threads a block, 0 the default), through the library's launcher."""
    from kernelarena.kernels.rmsnorm import backends
    from kernelarena.kernels.rmsnorm import cuda as cuda_impl
    from kernelarena.kernels.rmsnorm.cuda import DTYPE_CODES

    props = torch.cuda.get_device_properties(device)
    kernel = cuda_impl.launcher_module(f"{props.major}{props.minor}{'a' if props.major >= 9 else ''}").launch
    code, stream = DTYPE_CODES["bfloat16"], torch._C._cuda_getCurrentRawStream
    slot = (1 if op == "rmsnorm" else 2) * hidden * 2
    table = {}
    for stages in STAGES:
        for per_sm in PER_SM:
            if stages * per_sm * slot > backends.STREAM_SMEM_PER_SM:
                continue
            for threads in THREADS:
                if threads and (hidden // 8 + threads - 1) // threads > 4:
                    continue
                blocks = per_sm * props.multi_processor_count

                def norm(x, w, out, c=(threads, stages, blocks)):
                    kernel(0, code, x.data_ptr(), x.stride(0), 0, 0, w.data_ptr(), out.data_ptr(), out.stride(0), 0,
                           0, x.shape[0], x.shape[1], EPS, stream(x.device.index or 0), *c)

                def fused(x, r, w, c=(threads, stages, blocks)):
                    kernel(1, code, x.data_ptr(), x.stride(0), r.data_ptr(), r.stride(0), w.data_ptr(), x.data_ptr(),
                           x.stride(0), r.data_ptr(), r.stride(0), x.shape[0], x.shape[1], EPS,
                           stream(x.device.index or 0), *c)

                table[f"stream s{stages} b{per_sm} t{threads or 'def'}"] = (norm, fused)
    return table


def vec_backend(device):
    """Our CUDA vectorized kernel as the "cuda" backend launched it before the streaming kernel."""
    from kernelarena.kernels.rmsnorm import cuda as cuda_impl
    from kernelarena.kernels.rmsnorm.cuda import DTYPE_CODES

    props = torch.cuda.get_device_properties(device)
    kernel = cuda_impl.launcher_module(f"{props.major}{props.minor}{'a' if props.major >= 9 else ''}").launch
    code, stream = DTYPE_CODES["bfloat16"], torch._C._cuda_getCurrentRawStream

    def norm(x, w, out):
        kernel(0, code, x.data_ptr(), x.stride(0), 0, 0, w.data_ptr(), out.data_ptr(), out.stride(0), 0, 0,
               x.shape[0], x.shape[1], EPS, stream(x.device.index or 0))

    def fused(x, r, w):
        kernel(1, code, x.data_ptr(), x.stride(0), r.data_ptr(), r.stride(0), w.data_ptr(), x.data_ptr(),
               x.stride(0), r.data_ptr(), r.stride(0), x.shape[0], x.shape[1], EPS, stream(x.device.index or 0))

    return {"cuda vec": (norm, fused)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_out_argument(parser)
    parser.add_argument("--ops", default="fused_add_rmsnorm,rmsnorm")
    parser.add_argument("--shapes", default=",".join(f"{b}x{h}" for b, h in SHAPES), help="ROWSxHIDDEN,...")
    args = parser.parse_args(argv)
    device = "cuda"
    run = stamp(device)
    timer = ColdL2Timer(device, host_ahead_us=HOST_AHEAD_US)
    ceiling = copy_ceiling_tbps(timer, device)
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    base = make_backends(["flashinfer", "triton", "cuda"], device)
    rows, lines = [], []
    for op in args.ops.split(","):
        for batch, hidden in shapes:
            n_sets = max(2, min(8, -(-(256 << 20) // op_bytes(op, batch, hidden))))
            sets, w = input_sets(op, batch, hidden, device, n_sets)
            candidates = {**base, **vec_backend(device), **stream_backends(op, hidden, device)}
            timed, failures = {}, []
            for name, fns in candidates.items():
                try:
                    err, err_sum = check(op, fns, batch, hidden, device)
                except Exception as exc:  # a config failing must not lose the others
                    failures.append(f"{name}: {type(exc).__name__}: {exc}")
                    continue
                if err > 1e-2 or err_sum > 1e-2:
                    failures.append(f"{name}: relative error {err:.2e} / {err_sum:.2e}")
                    continue
                timed[name] = timed_call(op, fns, w)
            half = op_bytes(op, batch, hidden) // 2
            src = torch.empty(half, dtype=torch.int8, device=device)
            dst = torch.empty(half, dtype=torch.int8, device=device)
            timed["d2d copy (same bytes)"] = lambda _: dst.copy_(src)
            times = timer.median_us_each(timed, sets, min_reps=30)
            fi = times.get("flashinfer")
            for name, us in sorted(times.items(), key=lambda kv: kv[1]):
                rows.append({"op": op, "batch": batch, "hidden": hidden, "impl": name, "us": us,
                             "vs_fi": fi / us if fi else None,
                             "pct_copy": 100 * op_bytes(op, batch, hidden) / (us * 1e-6) / 1e12 / ceiling})
            best = min((k for k in times if k.startswith("stream")), key=times.get, default=None)
            line = (f"{op} {batch}x{hidden}: FI {fi:.1f}, triton {times.get('triton', float('nan')):.1f}, "
                    f"cuda {times.get('cuda', float('nan')):.1f}, cuda vec {times.get('cuda vec', float('nan')):.1f}, "
                    f"best {best} {times.get(best, float('nan')):.1f} ({fi / times[best]:.3f}x), copy "
                    f"{times['d2d copy (same bytes)']:.1f}" + (f"; FAILED {failures}" if failures else ""))
            print(line, flush=True)
            lines.append(line)
            del sets
    table = ["| op | batch x hidden | implementation | us | vs FI | % copy |", "|---|---|---|---|---|---|"]
    for r in rows:
        vs = f"{r['vs_fi']:.3f}x" if r["vs_fi"] else "-"
        table.append(f"| {r['op']} | {r['batch']} x {r['hidden']} | {r['impl']} | {r['us']:.1f} | {vs} | "
                     f"{r['pct_copy']:.1f} |")
    text = (f"# RMSNorm streaming kernel configs ({run.machine}, {run.date})\n\n"
            f"`python3 -m benchmarks.diag_rmsnorm_stream`; bf16, cold L2, timed in turn; copy ceiling "
            f"{ceiling:.2f} TB/s. 'stream sS bB tT': S slots a block, B blocks an SM, T threads a block.\n\n"
            + "\n".join(f"- {line}" for line in lines) + "\n\n" + "\n".join(table) + "\n")
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "diag_rmsnorm_stream.md").write_text(text)
        (args.out / "diag_rmsnorm_stream.json").write_text(json.dumps({"copy_tbps": ceiling, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
