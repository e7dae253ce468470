"""Sweep the CUDA small-batch decode kernel's launch shape against the Triton kernel and FlashInfer (GPU).

For decode at batch 1 and 16 x KV 1024-8192 (bench_attention's shapes: bf16, 32 q / 8 KV heads, d 128,
page 16), times the wrapper with the Triton kernel, with small_decode.cu under each (token loop, warps, unroll, stages,
programs per SM, shortest chunk) setting, and FlashInfer's better backend, all with bench_attention's
do_bench timer; every CUDA result is checked against the Triton kernel's output first. Prints a table and
writes sweep_small_decode_latest.{md,json} and the results table sweep_small_decode.md under --out (default $OUT).

    python3 -m benchmarks.sweep_small_decode            # full sweep
    python3 -m benchmarks.sweep_small_decode --quick    # two settings, two shapes
"""

from __future__ import annotations

import argparse
import json

import torch

from benchmarks.bench_attention import HKV, PAGE, D, Problem, device_time_us, flashinfer_decode, ours_decode, rel_err
from benchmarks.common import add_out_argument, publish, stamp
from kernelarena.kernels.attention import allocate_paged_kv_cache, small_decode

BATCHES = (1, 16)
KV_LENS = (1024, 2048, 4096, 8192)
# (token loop: 0 CUDA cores / 1 tensor cores, warps, unroll, stages, programs per SM, shortest chunk, schedule
# in the launch's arguments). Tensor cores: a warp's stage is 8 KB at d 128; a block has at most 227 KB.
SETTINGS = [(0, 8, 4, 3, 1, 64, 1), (1, 8, 1, 3, 1, 128, 0), (1, 8, 1, 3, 1, 128, 1), (1, 8, 1, 2, 1, 128, 1),
            (1, 4, 1, 4, 1, 128, 1), (1, 8, 1, 3, 1, 256, 1), (1, 4, 1, 3, 2, 128, 1)]
NAMES = ("MMA", "WARPS", "UNROLL", "STAGES", "CTAS_PER_SM", "MIN_CHUNK", "INLINE")


def label(setting) -> str:
    return "{} w{} u{} s{} c{} m{} {}".format("tc" if setting[0] else "cc", *setting[1:-1],
                                             "inline" if setting[-1] else "words")


DEFAULT = label([getattr(small_decode, name) for name in NAMES])


def with_settings(settings, fn):
    """fn() with small_decode's launch settings replaced, and its size limit lifted (the kernel at every
    shape, so the table shows where it wins)."""
    saved = [getattr(small_decode, name) for name in NAMES]
    limit = small_decode.MAX_TOKEN_HEADS
    small_decode.MAX_TOKEN_HEADS = 1 << 40
    for name, value in zip(NAMES, settings):
        setattr(small_decode, name, value)
    try:
        return fn()
    finally:
        small_decode.MAX_TOKEN_HEADS = limit
        for name, value in zip(NAMES, saved):
            setattr(small_decode, name, value)


def time_ours(p, ws, quick, use_small=True):
    small_decode.enabled = use_small
    try:
        _, run, out = ours_decode(p, ws)
    finally:
        small_decode.enabled = True
    run()
    torch.cuda.synchronize()
    return device_time_us(run, quick), out.clone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    add_out_argument(parser)
    parser.add_argument("--profile", metavar="BATCHxKV", help="run the default setting at one shape once, "
                        "inside a profiler range (for ncu --profile-from-start off), then the Triton kernel")
    args = parser.parse_args()
    device = torch.device("cuda")
    if args.profile:
        batch, kv_len = (int(x) for x in args.profile.split("x"))
        cache = allocate_paged_kv_cache(batch * kv_len // PAGE + 1, PAGE, HKV, D, dtype=torch.bfloat16,
                                        device=device).normal_()
        p = Problem(cache, batch, 1, kv_len, seed=1)
        ws = torch.empty(256 << 20, dtype=torch.uint8, device=device)
        runs = []
        small_decode.MAX_TOKEN_HEADS = 1 << 40  # the CUDA kernel at any size
        for use_small in (True, False):
            small_decode.enabled = use_small
            runs.append(ours_decode(p, ws)[1])
            small_decode.enabled = True
        for run in runs:
            run()
        torch.cuda.synchronize()
        torch.cuda.cudart().cudaProfilerStart()
        for run in runs:
            run()
        torch.cuda.synchronize()
        torch.cuda.cudart().cudaProfilerStop()
        return
    shapes = [(b, n) for b in BATCHES for n in KV_LENS]
    settings = SETTINGS
    if args.quick:
        shapes, settings = shapes[:1] + shapes[-1:], settings[:2]
    max_pages = max(b * n for b, n in shapes) // PAGE + 1
    cache = allocate_paged_kv_cache(max_pages, PAGE, HKV, D, dtype=torch.bfloat16, device=device).normal_()
    ws = torch.empty(256 << 20, dtype=torch.uint8, device=device)
    try:
        import flashinfer  # noqa: F401
        have_fi = True
    except ImportError:
        have_fi = False
    rows = []
    for batch, kv_len in shapes:
        p = Problem(cache, batch, 1, kv_len, seed=batch * 7 + kv_len)
        triton_us, triton_out = time_ours(p, ws, args.quick, use_small=False)
        fi_us = float("nan")
        if have_fi:
            fi_times = []
            for tc in (False, True):
                _, run, _ = flashinfer_decode(p, ws, tc)
                run()
                fi_times.append(device_time_us(run, args.quick))
            fi_us = min(fi_times)
        row = {"batch": batch, "kv_len": kv_len, "triton_us": triton_us, "flashinfer_us": fi_us, "cuda": {}}
        for setting in settings:
            us, out = with_settings(setting, lambda: time_ours(p, ws, args.quick))
            err = rel_err(out, triton_out)
            if err > 1e-2:
                raise SystemExit(f"batch {batch} x {kv_len}, {setting}: relative error {err:.3g} against the "
                                 "Triton kernel")
            row["cuda"][label(setting)] = us
        best = min(row["cuda"], key=row["cuda"].get)
        row["best"] = best
        print(f"{batch} x {kv_len}: triton {triton_us:.1f} us, flashinfer {fi_us:.1f} us, best CUDA {best} "
              f"{row['cuda'][best]:.1f} us; default {row['cuda'].get(DEFAULT, float('nan')):.1f} us",
              flush=True)
        rows.append(row)
    names = list(rows[0]["cuda"])
    ranked = sorted(names, key=lambda n: sum(r["cuda"][n] / r["cuda"][r["best"]] for r in rows))
    run = stamp(str(device))
    lines = [f"# Small-batch decode sweep, {run.date}, {run.machine}", "",
             "do_bench median us (L2 flushed); bf16, 32 q / 8 KV heads, d 128, page 16. Settings ranked by the "
             "mean ratio to each shape's best; 'vs FI' = FlashInfer / CUDA.", "",
             "| setting | " + " | ".join(f"{r['batch']}x{r['kv_len']}" for r in rows) + " | mean / best |",
             "|---|" + "---|" * (len(rows) + 1)]
    for baseline, key in (("triton", "triton_us"), ("flashinfer", "flashinfer_us")):
        lines.append(f"| {baseline} | " + " | ".join(f"{r[key]:.1f}" for r in rows) + " | |")
    for name in ranked:
        mean = sum(r["cuda"][name] / r["cuda"][r["best"]] for r in rows) / len(rows)
        cells = [f"{r['cuda'][name]:.1f} ({r['flashinfer_us'] / r['cuda'][name]:.2f}x)" for r in rows]
        lines.append(f"| cuda {name} | " + " | ".join(cells) + f" | {mean:.3f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        table = publish("sweep_small_decode", args.out, text, TITLE, key=["shape"], columns=COLUMNS,
                        rows=summary_rows(rows), run=run)
        (args.out / "sweep_small_decode_latest.json").write_text(json.dumps(rows, indent=1))
        print(f"results table: {table}")


COLUMNS = ["shape", "triton", "flashinfer", "cuda default", "best setting", "best cuda"]
TITLE = """# Small-batch decode sweep

Decode at batch 1 and 16 (bf16, 32 q / 8 KV heads, d 128, page 16; do_bench median us, L2 flushed), made by
`python3 -m benchmarks.sweep_small_decode`: the Triton kernel, FlashInfer's better backend, the CUDA small-batch
kernel with its default launch setting, and the best of the settings tried. One row per machine and shape, the
latest run of each; `sweep_small_decode_latest.md` ranks every setting of the latest run."""


def summary_rows(rows, default=None):
    """One results-table row per shape from the sweep's rows; ``default``: the default setting's label (DEFAULT)."""
    default = default or DEFAULT
    return [{"shape": f"{r['batch']}x{r['kv_len']}", "triton": round(r["triton_us"], 1),
             "flashinfer": round(r["flashinfer_us"], 1), "cuda default": round(r["cuda"].get(default, float("nan")), 1),
             "best setting": r["best"], "best cuda": round(r["cuda"][r["best"]], 1)} for r in rows]


if __name__ == "__main__":
    main()
