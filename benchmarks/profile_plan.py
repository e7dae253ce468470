"""Host time of the attention wrappers' plan() (issue #6: <= 50 us on the H100 machine), and where it goes.

Cases are bench_attention.py's: decode batch 1, 16, 64, 128, 256 x KV 1024..8192 and causal prefill 4 x 1024,
16 x 512 over KV 4096; 32 query / 8 KV heads, head_dim 128, page 16; indptr and last_page_len are CPU int32
tensors, kv_indices a device int32 tensor, as in the benchmark. Each figure is a median over --reps calls
(the lowest of 5 medians of reps/5 calls each, to keep other work on a shared machine out of it):

    plan()      the wrapper's plan, end to end
    plan_work   the planner plan() used, alone, with the arguments plan() passed it: native_plan's C
                (when available; the header line says which) or scheduler.plan_work
    numpy       scheduler.plan_work (numpy) alone, with the arguments plan() passes it with the native
                planner off (KERNELARENA_NATIVE_PLAN=0 makes plan() itself use it)
    prepare     PagedAttentionLauncher.prepare alone, with the arguments plan() passed it
    copy        the schedule's host-to-device copy (and its event record on a GPU): staging.StagedCopy.commit
    copy_torch  the same copy through torch's copy_ and Event.record, for comparison
    rest        plan() minus plan_work, prepare and copy: argument checks, conversions, config, buffers
    small       plan() end to end where the runner takes the CUDA small-batch decode kernel instead
                (small_decode.py; GPU only); the columns before it are the Triton path's, measured with
                that kernel switched off

On a CPU the runner plans as on an H100 (132 SMs, the GPU tile sizes), so the schedules have the benchmark's
shape; only the timings are this CPU's.

    python3 -m benchmarks.profile_plan --device cpu
    python3 -m benchmarks.profile_plan --out $OUT   # cuda when available; also writes $OUT/profile_plan_cuda.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from benchmarks.bench_attention import DECODE_BATCHES, DECODE_LENS, HKV, HQ, PAGE, PREFILL_CASES, D  # same cases
from benchmarks.common import add_out_argument, markdown_table, publish, stamp
from kernelarena.kernels.attention import (
    BatchDecodeWithPagedKVCacheWrapper,
    BatchPrefillWithPagedKVCacheWrapper,
    build_page_table,
    native_plan,
    small_decode,
)
from kernelarena.kernels.attention import runner as runner_module
from kernelarena.kernels.attention.staging import StagedCopy

H100_SMS = 132


def median_us(fn, reps: int, rounds: int = 5) -> float:
    """Median wall time of one call over ``reps`` calls; the lowest of ``rounds`` such medians, so that
    other work on the machine (the CPU machine is shared) shows up as little as possible. Each round starts
    with the device idle: plan() waits for the schedule copy of two plans before, which otherwise queues
    behind thousands of copies that the "copy" columns enqueued."""
    best = float("inf")
    for _ in range(rounds):
        if torch.cuda.is_available():  # no queue left by the previous measurement's copies to wait behind
            torch.cuda.synchronize()
        samples = []
        for _ in range(reps // rounds):
            start = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - start)
        best = min(best, statistics.median(samples))
    return best / 1e3


def captured_call(owner, name: str, call):
    """Run ``call`` once with ``owner.name`` wrapped; returns (function, args, kwargs) of its last call."""
    original, seen = getattr(owner, name), []

    def spy(*args, **kwargs):
        seen.append((args, kwargs))
        return original(*args, **kwargs)

    own = name in vars(owner)  # the module's or instance's own attribute, else a class's method
    setattr(owner, name, spy)
    try:
        call()
    finally:
        if own:
            setattr(owner, name, original)
        else:
            delattr(owner, name)  # the instance attribute hid the class's method
    return original, *seen[-1]


def numpy_call(plan):
    """(scheduler.plan_work, args, kwargs) as plan() calls it with the native planner off."""
    switch = native_plan.enabled
    native_plan.enabled = False
    try:
        return captured_call(runner_module, "plan_work", plan)
    finally:
        native_plan.enabled = switch


def profile_case(wrapper, plan, reps: int) -> dict:
    runner = wrapper._runner
    plan()
    row = {"plan": median_us(plan, reps)}
    native = runner._native if native_plan.enabled else None
    fn, args, kwargs = numpy_call(plan) if native is None else captured_call(type(native), "__call__", plan)
    row["plan_work"] = median_us(lambda: fn(*args, **kwargs), reps)
    fn, args, kwargs = captured_call(runner._launcher, "prepare", plan)
    row["prepare"] = median_us(lambda: fn(*args, **kwargs), reps)
    summary = runner.summary
    row["copy"] = median_us(lambda: runner._staged.commit(summary.words), reps)
    # The same copy through torch's copy_ and Event.record (what StagedCopy avoids on a GPU).
    StagedCopy.use_runtime = False
    try:
        torch_copy = StagedCopy(runner._work)
    finally:
        StagedCopy.use_runtime = True
    torch_copy.begin()
    row["copy_torch"] = median_us(lambda: torch_copy.commit(summary.words), reps)
    row["rest"] = row["plan"] - row["plan_work"] - row["prepare"] - row["copy"]
    fn, args, kwargs = numpy_call(plan)
    row["numpy"] = median_us(lambda: fn(*args, **kwargs), reps)
    row["entries"], row["split"] = summary.num_entries, summary.num_groups > 0
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reps", type=int, default=2000)
    add_out_argument(parser)
    args = parser.parse_args()
    device = torch.device(args.device)
    ws = torch.empty(128 << 20, dtype=torch.uint8, device=device)
    num_sms = None if device.type == "cuda" else H100_SMS

    def wrapper_for(cls):
        wrapper = cls(ws, "NHD", num_sms=num_sms)
        wrapper._runner.on_gpu = True  # choose_config's GPU tile sizes, also on a CPU
        return wrapper

    rows = []
    for batch in DECODE_BATCHES:
        for kv_len in DECODE_LENS:
            table = build_page_table([kv_len] * batch, PAGE, shuffle=True, device=device)
            indptr, last = table.kv_indptr.cpu(), table.kv_last_page_len.cpu()
            w = wrapper_for(BatchDecodeWithPagedKVCacheWrapper)
            plan = lambda: w.plan(indptr, table.kv_indices, last, HQ, HKV, D, PAGE)  # noqa: E731
            small_decode.enabled = False  # the breakdown is the Triton path's (work list, launcher)
            try:
                row = profile_case(w, plan, args.reps)
            finally:
                small_decode.enabled = True
            row["small"] = float("nan")
            if device.type == "cuda":  # where the runner takes the CUDA small-batch kernel: its plan() alone
                small = wrapper_for(BatchDecodeWithPagedKVCacheWrapper)
                small_plan = lambda: small.plan(indptr, table.kv_indices, last, HQ, HKV, D, PAGE)  # noqa: E731
                small_plan()
                if small._runner._small is not None:
                    row["small"] = median_us(small_plan, args.reps)
            rows.append((f"decode {batch} x {kv_len}", row))
    for batch, qo_len, kv_len in PREFILL_CASES:
        table = build_page_table([kv_len] * batch, PAGE, shuffle=True, device=device)
        indptr, last = table.kv_indptr.cpu(), table.kv_last_page_len.cpu()
        qo = torch.arange(batch + 1, dtype=torch.int32) * qo_len
        w = wrapper_for(BatchPrefillWithPagedKVCacheWrapper)
        plan = lambda: w.plan(qo, indptr, table.kv_indices, last, HQ, HKV, D, PAGE, causal=True)  # noqa: E731
        row = profile_case(w, plan, args.reps)
        row["small"] = float("nan")
        rows.append((f"prefill {batch} x {qo_len} / {kv_len}", row))

    run = stamp(str(device))
    planner = "native (C)" if native_plan.available() else f"numpy: native {native_plan.unavailable_reason()}"
    cols = ("plan", "plan_work", "numpy", "prepare", "copy", "rest", "copy_torch", "small")
    table_rows = [{"case": name, **{c: round(row[c], 1) for c in cols}, "entries": row["entries"],
                   "split": row["split"]} for name, row in rows]
    text = (f"plan() host time, us (best of 5 medians of {args.reps // 5} calls); {device} ({run.machine}), "
            f"{run.date}, torch {torch.__version__}; plan_work: {planner}\n\n"
            + markdown_table(["case", *cols, "entries", "split"], table_rows))
    print(text)
    if args.out:
        table = publish(f"profile_plan_{device.type}", args.out, text, TITLE, key=["case"],
                        columns=["case", "plan", "plan_work", "small"], rows=table_rows, run=run)
        (args.out / f"profile_plan_{device.type}_latest.json").write_text(json.dumps(
            {"device": str(device), "machine": run.machine, "date": run.date, "planner": planner,
             "rows": dict(rows)}, indent=1))
        print(f"results table: {table}")


TITLE = """# Attention plan() host time

Microseconds of host time per plan() call for the attention benchmark's cases (`python3 -m benchmarks.profile_plan`):
"plan" is the whole call, "plan_work" the work-list builder inside it, "small" the plan() of the CUDA small-batch
decode path where the runner takes it (nan elsewhere). One row per machine and case, the latest run of each; the
`_latest.md` file beside this one holds the full breakdown (prepare, copy, rest, numpy planner)."""

if __name__ == "__main__":
    main()
