"""RMSNorm and fused add + RMSNorm: ours (Triton, CUDA, TileLang) vs FlashInfer vs torch eager / torch.compile.

The sweep (bf16, batch x hidden):
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import sys

import torch

from benchmarks.common import add_out_argument, publish, stamp
from benchmarks.host_cost import back_to_back_each
from kernelarena.bench.timing import ColdL2Timer

BATCHES = (1, 32, 1024, 8192, 16384, 32768)
HOST_ROWS = (1, 32, 1024)  # --quick's host-cost table: these rows of HOST_HIDDEN (the full run: every shape)
HOST_HIDDEN = 4096
B2B_ROUND_S = 0.05  # GPU seconds of one round of calls back to back (at least 20 calls, at most 500)
HIDDENS = (4096, 8192)
OPS = ("rmsnorm", "fused_add_rmsnorm")
EPS = 1e-6
HOST_AHEAD_US = 400  # longer than the slowest call's host time (torch.compile, ~300 us on the H100 machine)
# Triton launch configs tried with --sweep: (rows per program, warps, persistent programs per SM or 0).
# Session 19 (H200) adds larger tiles and 32 warps, and streaming stores (".cs") on the configs that led there.
TRITON_SWEEP = ((1, 4, 0), (1, 8, 0), (1, 16, 0), (2, 8, 0), (2, 16, 0), (4, 16, 0), (1, 8, 4), (1, 16, 2), (2, 16, 2),
                (2, 32, 0), (4, 32, 0), (8, 16, 0), (8, 32, 0), (1, 8, 0, ".cs"), (2, 16, 0, ".cs"), (4, 16, 0, ".cs"),
                (4, 32, 0, ".cs"))
CUDA_SWEEP = (64, 128, 256, 512, 1024)  # threads per row
__doc__ += f"    batch {BATCHES} x hidden {HIDDENS}, ops {OPS}.\n" + """
Timing: median over repetitions of CUDA-event time around one call, the L2 flushed (twice its size written) before
each repetition and the input sets rotated (triton.testing.do_bench's method, cold cache). The backends of
one shape (and the copy of the same bytes) are timed in turn within each repetition, so that a drift during
the run reaches all of them alike. Bandwidth counts
the bytes each op must move (inputs read once, outputs written once); "% copy" is against a device-to-device
copy of 1 GiB measured in the same run. Every backend's output is checked against float64 first.

Host cost (a second table): each backend called back to back on the same inputs, no sleep ahead, at every
shape (--quick: """ + f"{HOST_ROWS} x {HOST_HIDDEN}" + """ rows), the backends timed in turn within each round
(host_cost.py): "host us/call" is the host's time per call, "b2b us/call" the time per call until the GPU is done
(issue #18's "back to back" measure: inputs that fit in L2 stay there from call to call), both beside FlashInfer's
and PyTorch's in the same run.

    python3 -m benchmarks.bench_rmsnorm --out DIR [--sweep] [--backends triton,cuda,...] [--quick]
    python3 -m benchmarks.bench_rmsnorm --quick --out DIR   # GPU, about 3 minutes with builds: ours, FlashInfer, torch
    python3 -m benchmarks.bench_rmsnorm --device cpu --quick        # smoke test of the script itself
"""


def reference(op, x, r, w):
    from kernelarena.kernels.rmsnorm.reference import fused_add_rmsnorm_reference, rmsnorm_reference

    if op == "rmsnorm":
        return rmsnorm_reference(x, w, EPS), None
    return fused_add_rmsnorm_reference(x, r, w, EPS)


def eager_rmsnorm(x, w):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS) * w.float()).to(x.dtype)


def eager_fused_add_rmsnorm(x, r, w):
    s = x.float() + r.float()
    return (s * torch.rsqrt(s.pow(2).mean(-1, keepdim=True) + EPS) * w.float()).to(x.dtype), s.to(x.dtype)


def make_backends(names, device):
    """name -> (rmsnorm(x, w, out), fused(x, r, w)) callables; the fused ones work in place where the
    backend does (ours, FlashInfer) and return new tensors otherwise (torch)."""
    from kernelarena.kernels.rmsnorm import fused_add_rmsnorm, rmsnorm

    table = {}
    for ours in ("auto", "triton", "cuda", "tilelang"):
        table[ours] = (lambda x, w, out, b=ours: rmsnorm(x, w, EPS, out=out, backend=b),
                       lambda x, r, w, b=ours: fused_add_rmsnorm(x, r, w, EPS, backend=b))
    table["torch"] = (lambda x, w, out: eager_rmsnorm(x, w), eager_fused_add_rmsnorm)
    if "cuda tvm-ffi" in names:  # the same CUDA kernel launched through the dataset's TVM-FFI entry points
        from kernelarena.kernels.rmsnorm import cuda_impl

        norm_entry, fused_entry = (cuda_impl.tvm_ffi_module(op).run for op in OPS)
        table["cuda tvm-ffi"] = (lambda x, w, out: norm_entry(x, w, out),
                                 lambda x, r, w: fused_entry(x, r, w, x, r))
    if "torch.compile" in names:
        compiled_norm = torch.compile(eager_rmsnorm, dynamic=True)
        compiled_fused = torch.compile(eager_fused_add_rmsnorm, dynamic=True)
        table["torch.compile"] = (lambda x, w, out: compiled_norm(x, w), compiled_fused)
    if "flashinfer" in names:
        try:
            import flashinfer
        except Exception as exc:  # keep the run: the other backends' numbers still count
            print(f"flashinfer unavailable: {type(exc).__name__}: {exc}", flush=True)
            names = [n for n in names if n != "flashinfer"]
            return {n: table[n] for n in names}

        table["flashinfer"] = (lambda x, w, out: flashinfer.norm.rmsnorm(x, w, EPS, out=out),
                               lambda x, r, w: flashinfer.norm.fused_add_rmsnorm(x, r, w, EPS))
    return {n: table[n] for n in names}


def op_bytes(op, batch, hidden, elem=2):
    tensors = 2 if op == "rmsnorm" else 4  # x, out  |  x, residual, out, residual_out
    return (tensors * batch * hidden + hidden) * elem


def copy_ceiling_tbps(timer, device):
    if device == "cpu":
        return float("nan")
    n = 1 << 30
    src, dst = torch.empty(n, dtype=torch.int8, device=device), torch.empty(n, dtype=torch.int8, device=device)
    src.random_(-100, 100)
    us = timer.median_us(lambda _: dst.copy_(src), [None], min_reps=20, max_reps=30)
    return 2 * n / (us * 1e-6) / 1e12


def input_sets(op, batch, hidden, device, n_sets, seed=0):
    gen = torch.Generator(device=device).manual_seed(seed)
    sets = []
    for _ in range(n_sets):
        x = torch.randn(batch, hidden, device=device, generator=gen).bfloat16()
        r = torch.randn(batch, hidden, device=device, generator=gen).bfloat16() if op != "rmsnorm" else None
        sets.append((x, r, torch.empty_like(x)))
    w = torch.randn(hidden, device=device, generator=gen).bfloat16()
    return sets, w


def rel_err(actual, expected):
    return ((actual.double() - expected).norm() / expected.norm()).item()


def check(op, backend_fns, batch, hidden, device):
    """Relative errors of the backend's out (and residual_out) against float64 on fresh random inputs."""
    norm_fn, fused_fn = backend_fns
    sets, w = input_sets(op, batch, hidden, device, 1, seed=batch + hidden + 1)
    x, r, out = sets[0]
    ref_out, ref_sum = reference(op, x, r, w)
    if op == "rmsnorm":
        out.fill_(float("nan"))
        got = norm_fn(x, w, out)
        got = out if got is None else got
        return rel_err(got, ref_out), 0.0
    result = fused_fn(x, r, w)
    got_out, got_sum = (x, r) if result is None else result
    return rel_err(got_out, ref_out), rel_err(got_sum, ref_sum)


def timed_call(op, fns, w):
    """The call a backend's timing repeats, as fn(input set)."""
    norm_fn, fused_fn = fns
    if op == "rmsnorm":
        return lambda s: norm_fn(s[0], w, s[2])
    return lambda s: fused_fn(s[0], s[1], w)


def launcher_fns(kernel, threads: int, pdl: int):
    """(rmsnorm(x, w, out), fused(x, r, w)) through our CUDA launcher's ``launch`` (cuda/rmsnorm_python.cu) with
    ``threads`` per row (0: the default) and programmatic dependent launch when ``pdl``; bf16, the fused op in place."""
    from kernelarena.kernels.rmsnorm.cuda import DTYPE_CODES

    code, stream = DTYPE_CODES["bfloat16"], torch._C._cuda_getCurrentRawStream

    def norm(x, w, out):
        kernel(0, code, x.data_ptr(), x.stride(0), 0, 0, w.data_ptr(), out.data_ptr(), out.stride(0), 0, 0,
               x.shape[0], x.shape[1], EPS, stream(x.device.index or 0), threads, pdl)

    def fused(x, r, w):
        kernel(1, code, x.data_ptr(), x.stride(0), r.data_ptr(), r.stride(0), w.data_ptr(), x.data_ptr(),
               x.stride(0), r.data_ptr(), r.stride(0), x.shape[0], x.shape[1], EPS, stream(x.device.index or 0),
               threads, pdl)

    return norm, fused


def covers(hidden: int, threads: int) -> bool:
    """Whether ``threads`` per row covers a row of ``hidden`` within the kernel's 8 vectors a thread."""
    return not threads or (hidden // 8 + threads - 1) // threads <= 8


def cuda_threads_backends(hidden, device):
    """"cuda tN" -> (rmsnorm(x, w, out), fused(x, r, w)) for each threads-per-row N of CUDA_SWEEP that covers a
    row of ``hidden``, and "cuda no-pdl": the default threads without programmatic dependent launch (the "cuda"
    backend launches with it on sm90+ from 1M elements). Our CUDA kernel through the library's launcher (no torch
    extension to build)."""
    from kernelarena.kernels.rmsnorm import cuda as cuda_impl

    major, minor = torch.cuda.get_device_capability(device)
    kernel = cuda_impl.launcher_module(f"{major}{minor}{'a' if major >= 9 else ''}").launch
    table = {f"cuda t{t}": launcher_fns(kernel, t, int(major >= 9)) for t in CUDA_SWEEP if covers(hidden, t)}
    table["cuda no-pdl"] = launcher_fns(kernel, 0, 0)
    return table


def sweep_variants(op, batch, hidden, sets, w, timer, device):
    """Times of every Triton config in TRITON_SWEEP and every CUDA threads-per-row in CUDA_SWEEP."""
    from kernelarena.kernels.rmsnorm import triton as triton_impl

    results = {}
    for rows, warps, per_sm, *stores in TRITON_SWEEP:
        cfg = triton_impl.TritonConfig(rows, warps, per_sm, *stores)
        if op == "rmsnorm":
            fn = lambda s, c=cfg: triton_impl.launch(s[0], None, w, s[2], None, EPS, c)  # noqa: E731
        else:
            fn = lambda s, c=cfg: triton_impl.launch(s[0], s[1], w, s[0], s[1], EPS, c)  # noqa: E731
        results[f"triton r{rows} w{warps} p{per_sm}{''.join(stores)}"] = timer.median_us(fn, sets)
    if device == "cuda":
        for name, fns in cuda_threads_backends(hidden, device).items():
            results[name] = timer.median_us(timed_call(op, fns, w), sets)
    return results


def _version(package):
    try:
        return importlib.import_module(package).__version__ if importlib.util.find_spec(package) else None
    except Exception as exc:  # a broken install must not stop the benchmark; its rows will say what failed
        return f"import failed: {type(exc).__name__}"


def markdown_table(rows, ceiling, meta):
    lines = [f"# RMSNorm benchmark, {meta['date']}, {meta['device']}",
             "",
             f"torch {meta['torch']}, triton {meta['triton']}, flashinfer {meta['flashinfer']}, "
             f"tilelang {meta['tilelang']}; bf16, eps 1e-6; "
             f"median of CUDA-event times with a cold L2 (flushed each repetition) and rotated inputs. "
             f"Copy ceiling (1 GiB device-to-device, read + write) in this run: {ceiling:.2f} TB/s. "
             "'vs FI' = FlashInfer time / this time (> 1: faster than FlashInfer).",
             "",
             "| op | batch x hidden | backend | us | TB/s | % copy | vs FI | max rel err |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        vs = f"{r['vs_flashinfer']:.2f}x" if r.get("vs_flashinfer") else "-"
        lines.append(f"| {r['op']} | {r['batch']} x {r['hidden']} | {r['backend']} | {r['us']:.1f} | {r['tbps']:.2f} | "
                     f"{r['pct_copy']:.1f} | {vs} | {r['err']:.1e} |")
    return "\n".join(lines) + "\n"


COPY_NAME = "d2d copy (same bytes)"


def copy_floor(op, batch, hidden, device):
    """The floor at this size, timed beside the kernels: fn(*ignored) copies, device to device, as many bytes as the
    op moves (half read, half written)."""
    half = op_bytes(op, batch, hidden) // 2
    src, dst = (torch.empty(half, dtype=torch.int8, device=device) for _ in range(2))
    return lambda *_: dst.copy_(src)


def host_cost_rows(backends, device, failures, sweep=False, shapes=None):
    """Per op, shape (rows x hidden; default every BATCHES x HIDDENS on a GPU) and backend: host and back-to-back
    us per call (host_cost.py), the backends timed in turn within each round; with ``sweep``, also our CUDA kernel
    at each threads-per-row of CUDA_SWEEP ("cuda tN"); on a GPU, a device-to-device copy of the same bytes (the
    floor). Each round's calls take about B2B_ROUND_S of GPU time."""
    rows_out = []
    if shapes is None:
        shapes = [(b, h) for h in HIDDENS for b in BATCHES] if device == "cuda" else [(3, 256)]
    for op in OPS:
        for batch, hidden in shapes:
            table = {**backends, **cuda_threads_backends(hidden, device)} if sweep and device == "cuda" else backends
            sets, w = input_sets(op, batch, hidden, device, 1, seed=batch)
            s = sets[0]
            calls = 3 if device == "cpu" else int(min(500, max(20, B2B_ROUND_S / (op_bytes(op, batch, hidden) / 3e12))))
            fns = {name: (lambda c=timed_call(op, fns, w): c(s)) for name, fns in table.items()}
            if device == "cuda":
                fns[COPY_NAME] = copy_floor(op, batch, hidden, device)
            errors = {}  # one backend failing must not lose the rest of the run
            measured = back_to_back_each(fns, calls=calls, rounds=1 if device == "cpu" else 5, errors=errors)
            for name, why in errors.items():
                failures.append(f"host cost {op} {batch}x{hidden} {name}: {why}")
                print("FAILED", failures[-1], flush=True)
            fi = measured.get("flashinfer")
            for name, m in measured.items():
                rows_out.append({"op": op, "batch": batch, "hidden": hidden, "backend": name, "host_us": m.host_us,
                                 "b2b_us": m.wall_us, "vs_flashinfer": fi.wall_us / m.wall_us if fi else None})
            print(f"host cost {op} {batch}x{hidden} (host / b2b us per call): "
                  + ", ".join(f"{k} {v.host_us:.1f} / {v.wall_us:.1f}" for k, v in measured.items()), flush=True)
    return rows_out


def host_cost_table(rows):
    lines = ["## Host cost, calls back to back on the same inputs (no sleep ahead)", "",
             "'host us/call': the host's time per call; 'b2b us/call': time per call until the GPU is done; "
             "'vs FI' = FlashInfer's b2b time / this one (>= 1: no more time per call than FlashInfer); the "
             f"'{COPY_NAME}' row is the floor: a device-to-device copy moving the bytes the op moves.", "",
             "| op | batch x hidden | backend | host us/call | b2b us/call | vs FI |", "|---|---|---|---|---|---|"]
    for r in rows:
        vs = f"{r['vs_flashinfer']:.3f}x" if r.get("vs_flashinfer") else "-"
        lines.append(f"| {r['op']} | {r['batch']} x {r['hidden']} | {r['backend']} | {r['host_us']:.1f} | "
                     f"{r['b2b_us']:.1f} | {vs} |")
    return "\n".join(lines) + "\n"


KEY = ["op", "shape", "backend"]
COLUMNS = [*KEY, "us", "% copy", "vs FI"]
TITLE = """# RMSNorm: device time per call

`python3 -m benchmarks.bench_rmsnorm --out $OUT` (bf16, eps 1e-6): median CUDA-event us of one call with a cold L2 and
rotated inputs, every backend of a shape timed in turn; "% copy" is the bandwidth against a 1 GiB device-to-device
copy of the same run, "vs FI" FlashInfer's time over this one (> 1: faster). One row per machine, op, shape and
backend, the latest run of each. The latest run's full output (copy rows, errors, host cost) is
`rmsnorm_latest.md` beside this file."""


def table_rows(rows):
    """The results table's rows of a run's device-time rows."""
    return [{"op": r["op"], "shape": f"{r['batch']} x {r['hidden']}", "backend": r["backend"], "us": r["us"],
             "% copy": r["pct_copy"] if r["pct_copy"] == r["pct_copy"] else "-",
             "vs FI": f"{r['vs_flashinfer']:.2f}x" if r.get("vs_flashinfer") else "-"}
            for r in rows]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    add_out_argument(parser)
    parser.add_argument("--backends", default=None, help="comma list; default: all available")
    parser.add_argument("--sweep", action="store_true", help="also time Triton configs and CUDA threads per row")
    parser.add_argument("--quick", action="store_true",
                        help="two device-time shapes; ours (auto, triton, cuda), FlashInfer and torch eager only")
    parser.add_argument("--host-only", action="store_true",
                        help="only the host-cost table (calls back to back); with --sweep, each CUDA threads per row")
    parser.add_argument("--tag", default="", help="suffix of the raw JSON file's name (rmsnorm_latest<tag>.json)")
    args = parser.parse_args(argv)
    device = args.device
    if device == "cpu":
        os.environ.setdefault("TRITON_INTERPRET", "1")
    available = ["auto", "triton", "cuda", "cuda tvm-ffi", "tilelang", "flashinfer", "torch", "torch.compile"]
    if args.quick:  # no TileLang, TVM-FFI or torch.compile builds: the run stays within about 3 minutes
        available = ["auto", "triton", "cuda", "flashinfer", "torch"]
    if device == "cpu":
        available = ["auto", "triton", "torch"]
    needs = {"tilelang": "tilelang", "flashinfer": "flashinfer", "cuda tvm-ffi": "tvm_ffi"}
    available = [b for b in available if b not in needs or importlib.util.find_spec(needs[b])]
    names = args.backends.split(",") if args.backends else available
    shapes = [(b, h) for h in HIDDENS for b in BATCHES]
    if args.quick:
        shapes = [(3, 256), (5, 512)] if device == "cpu" else [(32, 4096), (8192, 4096)]
    if args.host_only:
        shapes = []
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    run = stamp(device)
    meta = {
        "date": run.date,
        "device": run.machine,
        "torch": torch.__version__,
        "triton": importlib.util.find_spec("triton") and __import__("triton").__version__,
        "flashinfer": _version("flashinfer"),
        "tilelang": _version("tilelang"),
    }
    timer = ColdL2Timer(device, host_ahead_us=HOST_AHEAD_US)
    ceiling = copy_ceiling_tbps(timer, device)
    print(f"copy ceiling {ceiling:.3f} TB/s on {meta['device']}", flush=True)
    backends = make_backends(names, device)
    rows, sweeps, failures = [], {}, []
    host_rows = host_cost_rows(backends, device, failures, args.sweep,
                               [(b, HOST_HIDDEN) for b in HOST_ROWS] if args.quick and device == "cuda" else None)
    for op in OPS:
        for batch, hidden in shapes:
            n_sets = max(2, min(8, math.ceil((256 << 20) / op_bytes(op, batch, hidden))))
            sets, w = input_sets(op, batch, hidden, device, n_sets)
            timed, errors = {}, {}
            for name, fns in backends.items():
                try:
                    errors[name] = check(op, fns, batch, hidden, device)
                except Exception as exc:  # one backend failing must not lose the rest of the run
                    failures.append(f"{op} {batch}x{hidden} {name}: {type(exc).__name__}: {exc}")
                    print("FAILED", failures[-1], flush=True)
                    continue
                timed[name] = timed_call(op, fns, w)
            if device == "cuda":
                timed[COPY_NAME] = copy_floor(op, batch, hidden, device)
                errors[COPY_NAME] = (0.0, 0.0)
            try:
                times = timer.median_us_each(timed, sets)
            except Exception as exc:  # keep the rows of the other cases
                failures.append(f"{op} {batch}x{hidden} timing: {type(exc).__name__}: {exc}")
                print("FAILED", failures[-1], flush=True)
                times = {}
            for name, us in times.items():
                err, err_sum = errors[name]
                ok = err < 1e-2 and err_sum < 1e-2
                if not ok:
                    failures.append(f"{op} {batch}x{hidden} {name}: relative error {err:.2e} / {err_sum:.2e}")
                rows.append({"op": op, "batch": batch, "hidden": hidden, "backend": name, "us": us,
                             "tbps": op_bytes(op, batch, hidden) / (us * 1e-6) / 1e12, "err": max(err, err_sum),
                             "correct": ok})
                rows[-1]["pct_copy"] = 100 * rows[-1]["tbps"] / ceiling if ceiling == ceiling else float("nan")
            timed.pop(COPY_NAME, None)  # frees the copy's buffers
            for r in rows:
                if r["op"] == op and r["batch"] == batch and r["hidden"] == hidden and "flashinfer" in times:
                    r["vs_flashinfer"] = times["flashinfer"] / r["us"]
            if args.sweep:
                sweeps[f"{op} {batch}x{hidden}"] = sweep_variants(op, batch, hidden, sets, w, timer, device)
            print(f"{op} {batch}x{hidden}: " + ", ".join(f"{k} {v:.1f}" for k, v in times.items()), flush=True)
            del sets
            if args.out is not None:  # written after each shape, so a run cut short keeps its rows
                (args.out / f"rmsnorm_latest{args.tag}.json").write_text(json.dumps(
                    {"meta": meta, "copy_tbps": ceiling, "rows": rows, "host_rows": host_rows, "sweeps": sweeps,
                     "failures": failures}, indent=1))
    table = markdown_table(rows, ceiling, meta) + "\n" + host_cost_table(host_rows)
    if args.out is not None and args.host_only:  # no device-time rows: the results table keeps its own
        path = args.out / "rmsnorm_host_latest.md"
        path.write_text(f"# RMSNorm host cost, {meta['date']}, {meta['device']}\n\n" + host_cost_table(host_rows))
        print(f"wrote {path}")
    elif args.out is not None:
        path = publish("rmsnorm", args.out, table, TITLE, key=KEY, columns=COLUMNS, rows=table_rows(rows), run=run)
        print(f"wrote {path} and {args.out / 'rmsnorm_latest.md'}")
    if sweeps:
        print("\nsweep (us):")
        for key, res in sweeps.items():
            best = min(res, key=res.get)
            print(f"  {key}: best {best} {res[best]:.1f}; " + ", ".join(f"{k} {v:.1f}" for k, v in res.items()))
    print()
    print(table)
    if failures:
        print("FAILURES:\n  " + "\n  ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
