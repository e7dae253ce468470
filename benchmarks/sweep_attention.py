"""Tuning sweep for the paged-attention kernel: config variants side by side with FlashInfer, per case.

bench_attention.py makes the headline table with the default configs; this script times variants of the
kernel config and of the item schedule (static round robin or a shared counter) on chosen cases, so a
default can be picked from data. Same problems, same timer (do_bench median, L2 flushed each call).

    python3 -m benchmarks.sweep_attention                       # decode and prefill variants, table to $OUT
    python3 -m benchmarks.sweep_attention --only decode --cases 1x1024,1x4096
    python3 -m benchmarks.sweep_attention --profile 1x1024      # plan once, run 20 times (for ncu)
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict

import torch

from benchmarks import bench_attention as ba
from kernelarena.kernels.attention import KernelConfig
from kernelarena.kernels.attention.paged_kernel import PagedAttentionLauncher

# name: (config, schedule)   config = (block_m, block_n, warps, stages, ctas_per_sm, min_chunk, split);
# schedule: PagedAttentionLauncher.schedule (0 chosen at run time, 1 static, 2 shared counter).
DECODE_VARIANTS = {
    "default": (None, 0),
    "static": (None, 1),
    "counter": (None, 2),
    "bn128_c3": (KernelConfig(16, 128, 4, 2, 3, 256, 2), 0),
    "bn128_s3": (KernelConfig(16, 128, 4, 3, 2, 256, 2), 0),
    "bn128_mc512": (KernelConfig(16, 128, 4, 2, 2, 512, 2), 0),
    "bn128_mc128": (KernelConfig(16, 128, 4, 2, 2, 128, 2), 0),
    "bn128_sf1": (KernelConfig(16, 128, 4, 2, 2, 256, 1), 0),
    "bn128_w8": (KernelConfig(16, 128, 8, 2, 1, 256, 2), 0),
    # 3-4 stages without the split factor (bn128_s3 has 2), beside the default's 2 stages (H200, session 19).
    "bn128_s3_sf1": (KernelConfig(16, 128, 4, 3, 2, 256, 1), 0),
    "bn128_s4_sf1": (KernelConfig(16, 128, 4, 4, 2, 256, 1), 0),
    "bn64_c3": (KernelConfig(16, 64, 4, 3, 3, 128, 4), 0),
    "bn64_mc512": (KernelConfig(16, 64, 4, 3, 3, 512, 2), 0),
    # 5+ stages: Triton then keeps two K/V blocks in flight (async_wait num=3 instead of 0 in the TTGIR).
    "bn64_s5_c3": (KernelConfig(16, 64, 4, 5, 3, 256, 1), 0),
    "bn64_s5_c2": (KernelConfig(16, 64, 4, 5, 2, 256, 1), 0),
    "bn64_s5_mc128": (KernelConfig(16, 64, 4, 5, 3, 128, 1), 0),
    "bn128_s5_c1": (KernelConfig(16, 128, 4, 5, 1, 256, 1), 0),
    "bn32_s6_c4": (KernelConfig(16, 32, 4, 6, 4, 128, 1), 0),
    "bn128_s6_c1": (KernelConfig(16, 128, 4, 6, 1, 256, 1), 0),
    "bn128_s5_c1_mc512": (KernelConfig(16, 128, 4, 5, 1, 512, 1), 0),
    "bn128_s5_c1_sf2": (KernelConfig(16, 128, 4, 5, 1, 256, 2), 0),
    "bn64_s6_c2": (KernelConfig(16, 64, 4, 6, 2, 256, 1), 0),
    # Small batches (fewer (request, KV head) pairs than SMs), after ncu put the 5-stage 128-token default
    # behind 3-stage and 64-token variants at 1 x 1024 (benchmarks/results/ncu_small_kernels_2026-11-24_h100.md).
    "sb_bn128_s2": (KernelConfig(16, 128, 4, 2, 1, 256, 1), 0),
    "sb_bn128_s3": (KernelConfig(16, 128, 4, 3, 1, 256, 1), 0),
    "sb_bn64_s3_mc128": (KernelConfig(16, 64, 4, 3, 1, 128, 1), 0),
    "sb_bn64_s5_mc128": (KernelConfig(16, 64, 4, 5, 1, 128, 1), 0),
    "sb_bn64_s4_c2_mc128": (KernelConfig(16, 64, 4, 4, 2, 128, 1), 0),
    "sb_bn32_s4_mc128": (KernelConfig(16, 32, 4, 4, 1, 128, 1), 0),
    "sb_bn64_s3_mc256": (KernelConfig(16, 64, 4, 3, 1, 256, 1), 0),
}
PREFILL_VARIANTS = {
    "default": (None, 0),
    "128x64_w4_s4": (KernelConfig(128, 64, 4, 4, 2, 512, 1), 0),
    "128x64_w4_s5": (KernelConfig(128, 64, 4, 5, 1, 512, 1), 0),
    "128x64_w8_s5": (KernelConfig(128, 64, 8, 5, 1, 512, 1), 0),
    "128x128_w8_s5": (KernelConfig(128, 128, 8, 5, 1, 512, 1), 0),
    "64x64_w4_s5": (KernelConfig(64, 64, 4, 5, 2, 512, 1), 0),
    "128x64_w8_s6": (KernelConfig(128, 64, 8, 6, 1, 512, 1), 0),
    "128x64_w8_s7": (KernelConfig(128, 64, 8, 7, 1, 512, 1), 0),
    "128x32_w8_s6": (KernelConfig(128, 32, 8, 6, 1, 512, 1), 0),
    "64x64_w4_s6_c3": (KernelConfig(64, 64, 4, 6, 3, 512, 1), 0),
}
DECODE_CASES = "1x1024,1x4096,16x1024,16x8192,64x1024,64x4096,128x1024,256x8192"
PREFILL_CASES = "4x1024x4096,16x512x4096"


def with_schedule(schedule, fn):
    PagedAttentionLauncher.schedule = schedule
    try:
        return fn()
    finally:
        PagedAttentionLauncher.schedule = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("decode", "prefill"))
    parser.add_argument("--cases", help=f"decode BxKV list (default {DECODE_CASES})")
    parser.add_argument("--prefill-cases", default=PREFILL_CASES, help="BxQOxKV list")
    parser.add_argument("--variants", help="comma-separated variant names (default: all)")
    parser.add_argument("--profile", help="decode case BxKV: plan once and run 20 times with the default (ncu)")
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    args = parser.parse_args()
    device = torch.device("cuda")
    cases = [tuple(map(int, c.split("x"))) for c in (args.profile or args.cases or DECODE_CASES).split(",")]
    pcases = [tuple(map(int, c.split("x"))) for c in args.prefill_cases.split(",")]
    max_tokens = max([b * n for b, n in cases] + [b * n for b, _, n in pcases])
    cache = torch.empty(max_tokens // ba.PAGE, 2, ba.PAGE, ba.HKV, ba.D, dtype=torch.bfloat16,
                        device=device).normal_()
    ws = torch.empty(256 << 20, dtype=torch.uint8, device=device)
    fi_ws = torch.empty(256 << 20, dtype=torch.uint8, device=device)
    if args.profile:
        p = ba.Problem(cache, *cases[0][:1], 1, cases[0][1], seed=1)
        _, run, _ = ba.ours_decode(p, ws)
        for _ in range(20):
            run()
        torch.cuda.synchronize()
        return
    wanted = set(args.variants.split(",")) if args.variants else None
    rows = []
    if args.only != "prefill":
        for batch, kv_len in cases:
            p = ba.Problem(cache, batch, 1, kv_len, seed=batch * 7 + kv_len)
            fi_us = min(ba.measure(lambda: ba.flashinfer_decode(p, fi_ws, tc), False, 1)[0] for tc in (False, True))
            ref = None
            for name, (config, schedule) in DECODE_VARIANTS.items():
                if wanted and name not in wanted:
                    continue
                us, _, out = with_schedule(schedule,
                                           lambda: ba.measure(lambda: ba.ours_decode(p, ws, config), False, 1))
                ref = out.clone() if ref is None else ref
                err = ba.rel_err(out, ref)
                rows.append({"kind": "decode", "case": f"{batch}x{kv_len}", "variant": name, "us": us, "fi_us": fi_us,
                             "tbs": p.kv_bytes() / us / 1e6, "err_vs_first": err,
                             "config": asdict(config) if config else None, "schedule": schedule,
                             **ba.kernel_resources()})
                print(f"decode {batch}x{kv_len:<5d} {name:10s} {us:8.1f} us  FI {fi_us:8.1f}  x{fi_us / us:.2f}  "
                      f"{p.kv_bytes() / us / 1e6:.2f} TB/s  err {err:.1e}  {ba.kernel_resources()}", flush=True)
    if args.only != "decode":
        for batch, qo_len, kv_len in pcases:
            p = ba.Problem(cache, batch, qo_len, kv_len, seed=batch + qo_len)
            fi_us = min(ba.measure(lambda: ba.flashinfer_prefill(p, fi_ws, b), False, 1)[0] for b in ("fa2", "fa3"))
            for name, (config, schedule) in PREFILL_VARIANTS.items():
                if wanted and name not in wanted:
                    continue
                us, _, _ = with_schedule(schedule, lambda: ba.measure(lambda: ba.ours_prefill(p, ws, config), False, 1))
                tf = p.causal_flops() / us / 1e6
                rows.append({"kind": "prefill", "case": f"{batch}x{qo_len}x{kv_len}", "variant": name, "us": us,
                             "fi_us": fi_us, "tflops": tf, "config": asdict(config) if config else None,
                             **ba.kernel_resources()})
                print(f"prefill {batch}x{qo_len}x{kv_len} {name:14s} {us:8.1f} us  FI {fi_us:8.1f}  x{fi_us / us:.2f}  "
                      f"{tf:.0f} TFLOP/s  {ba.kernel_resources()}", flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "attention_sweep.json"), "w") as f:
        json.dump({"device": torch.cuda.get_device_name(device), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
