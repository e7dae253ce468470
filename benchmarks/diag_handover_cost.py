"""Where the isolated run's per-evaluation host costs go, piece by piece, on this machine: the CUPTI profile's stop
and read-back (by events per call and reps), saving and loading a payload in /tmp and in /dev/shm, the
comparison of outputs arriving on the host against references on the device, and the same comparisons and a
single read of a device value while another process keeps the GPU busy (as the other lanes' solutions do in a
run: is a wait for the device a wait for this process's turn?). Prints one table; writes
``diag_handover_cost_latest.md`` under --out. A diagnostic for issue #14's wall time, not a timing of kernels.

    python3 -m benchmarks.diag_handover_cost --out "$OUT"
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, List, Tuple

import torch

from benchmarks.common import add_out_argument, emit, stamp
from kernelarena.bench import device_activity as da
from kernelarena.bench.correctness import compare_outputs
from kernelarena.bench.evaluate import _no_checksums
from kernelarena.bench.oracle import unpack
from kernelarena.schema import Definition


def _median_s(fn: Callable[[], object], times: int = 3) -> float:
    spent = []
    for _ in range(times):
        t0 = time.perf_counter()
        fn()
        spent.append(time.perf_counter() - t0)
    return statistics.median(spent)


def profile_costs(device: str) -> List[Tuple[str, str]]:
    """Stop and read-back seconds of a timed-loop-like profile: reps x (flush, sleep, call of k kernels)."""
    rows = []
    x = torch.randn(1 << 20, device=device)
    flush = torch.empty(100 << 20, dtype=torch.uint8, device=device)
    warm = da.ActivityProfile(1)  # the first profile in a process pays CUPTI's start: paid here, as in warm_up
    warm.start()
    with warm.call(0):
        x.mul_(1.0)
    torch.cuda.synchronize()
    warm.stop()
    for reps, kernels in ((100, 1), (100, 4), (20, 50), (20, 400)):
        profile = da.ActivityProfile(reps)
        profile.start()
        for r in range(reps):
            with profile.harness():
                flush.zero_()
                torch.cuda._sleep(1000)
            with profile.call(r):
                for _ in range(kernels):
                    x.mul_(1.0)
        torch.cuda.synchronize()
        profile.running = False
        collecting = gc.isenabled()
        gc.disable()  # as ActivityProfile.stop does
        t0 = time.perf_counter()
        result = da._DISABLE()
        t1 = time.perf_counter()
        events = da.read_events(result)
        t2 = time.perf_counter()
        activity = da.attribute(events, profile.token, reps)
        t3 = time.perf_counter()
        if collecting:
            gc.enable()
        rows.append((f"profile {reps} reps x {kernels} kernels ({len(events)} events)",
                     f"stop {1e3 * (t1 - t0):.1f} ms, read {1e3 * (t2 - t1):.1f} ms, attribute "
                     f"{1e3 * (t3 - t2):.1f} ms{'' if activity.problem is None else ' PROBLEM ' + activity.problem}"))
    return rows


def payload_costs(device: str) -> List[Tuple[str, str]]:
    """torch.save / torch.load of a prefill-sized payload (3 rounds of 8192 x 32 x 128 bf16) in two folders."""
    rows = []
    outputs = [torch.randn(8192, 32, 128).to(torch.bfloat16) for _ in range(3)]
    payload = {"rounds": [{"seed": i, "outputs": [o]} for i, o in enumerate(outputs)]}
    size = sum(o.numel() * o.element_size() for o in outputs)
    for folder in ("/tmp", "/dev/shm"):
        if not os.path.isdir(folder):
            rows.append((f"payload in {folder}", "no such folder"))
            continue
        usage = shutil.disk_usage(folder)
        where = tempfile.mkdtemp(dir=folder)
        path = os.path.join(where, "payload.pt")
        try:
            save_s = _median_s(lambda: torch.save(payload, path))
            with _no_checksums():  # as a solution's process saves a payload (bench/evaluate.save_payload)
                bare_s = _median_s(lambda: torch.save(payload, path))
            copy_s = _median_s(lambda: shutil.copyfile(path, path + ".copy"))
            load_s = _median_s(lambda: torch.load(path + ".copy", map_location="cpu", weights_only=True))
            mapped_s = _median_s(lambda: unpack(path + ".copy"))  # the reference process's loader
            rows.append((f"payload {size / 1e6:.0f} MB in {folder} ({usage.free / 2**30:.1f} GiB free)",
                         f"save {1e3 * save_s:.0f} ms (no checksums {1e3 * bare_s:.0f} ms), copy {1e3 * copy_s:.0f} "
                         f"ms, load {1e3 * load_s:.0f} ms (mapped {1e3 * mapped_s:.1f} ms)"))
        except OSError as e:
            rows.append((f"payload in {folder} ({usage.free / 2**30:.2f} GiB free)", f"failed: {e}"))
        finally:
            shutil.rmtree(where, ignore_errors=True)
    return rows


def comparison_costs(device: str) -> List[Tuple[str, str]]:
    """compare_outputs of one prefill-sized output arriving on the host, against a reference on the device."""
    definition = Definition.model_validate({
        "name": "diag", "op_type": "elementwise", "axes": {"n": {"type": "var"}},
        "inputs": {"x": {"shape": ["n"], "dtype": "bfloat16"}},
        "outputs": {"y": {"shape": ["n"], "dtype": "bfloat16"}},
        "reference": "def run(x):\n    return x\n"})
    rows = []
    for n in (1 << 16, 8192 * 32 * 128):
        ref = torch.randn(n, device=device).to(torch.bfloat16)
        host = ref.cpu()
        pinned = host.pin_memory() if device.startswith("cuda") else host
        compare_outputs(definition, [host], [ref])
        torch.cuda.synchronize()
        rows.append((f"compare {n * 2 / 1e6:.1f} MB bf16",
                     f"host copy {1e3 * _median_s(lambda: compare_outputs(definition, [host], [ref])):.1f} ms, "
                     f"pinned {1e3 * _median_s(lambda: compare_outputs(definition, [pinned], [ref])):.1f} ms, "
                     f"on device {1e3 * _median_s(lambda: compare_outputs(definition, [ref.clone()], [ref])):.1f} "
                     f"ms, h2d alone {1e3 * _median_s(lambda: host.to(device)):.1f} ms"))
    return rows


BUSY = """
import sys, time, torch
a = torch.randn(4096, 4096, device=sys.argv[2], dtype=torch.bfloat16)
end = time.perf_counter() + float(sys.argv[1])
print("ready", flush=True)
while time.perf_counter() < end:
    for _ in range(50):
        a @ a  # about 0.2 ms each on an H200: a queue the GPU is never without
    if a.is_cuda:
        torch.cuda.synchronize()
"""


def contended_costs(device: str, busy_s: float = 20.0) -> List[Tuple[str, str]]:
    """A single read of a device value and compare_outputs of a mapped payload's output (as the reference
    process gets it), alone and while another process keeps the GPU busy with matmuls."""
    definition = Definition.model_validate({
        "name": "diag", "op_type": "elementwise", "axes": {"n": {"type": "var"}},
        "inputs": {"x": {"shape": ["n"], "dtype": "bfloat16"}},
        "outputs": {"y": {"shape": ["n"], "dtype": "bfloat16"}},
        "reference": "def run(x):\n    return x\n"})
    where = tempfile.mkdtemp()
    cases = {}
    try:
        for n in (2048, 8192 * 32 * 128):
            ref = torch.randn(n, device=device).to(torch.bfloat16)
            path = os.path.join(where, f"payload-{n}.pt")
            with _no_checksums():
                torch.save({"rounds": [{"outputs": [ref.cpu()]}]}, path)
            cases[n] = (ref, path)
        x = torch.ones(16, device=device)

        def measure() -> dict:
            out = {"read": _median_s(lambda: x.sum().item(), 21)}
            for n, (ref, path) in cases.items():
                out[n] = _median_s(lambda: compare_outputs(
                    definition, unpack(path)["rounds"][0]["outputs"], [ref]), 7)
            return out

        measure()  # warm: kernels loaded, pages cached
        alone = measure()
        busy = subprocess.Popen([sys.executable, "-c", BUSY, str(busy_s), device], stdout=subprocess.PIPE, text=True)
        try:
            busy.stdout.readline()  # "ready": its context is made and its queue about to start
            time.sleep(1.0)
            crowded = measure()
        finally:
            busy.kill()
            busy.wait()
    finally:
        shutil.rmtree(where, ignore_errors=True)
    rows = [("one read of a device value (x.sum().item())",
             f"alone {1e3 * alone['read']:.2f} ms, another process busy {1e3 * crowded['read']:.2f} ms")]
    for n in cases:
        rows.append((f"compare a mapped payload's {n * 2 / 1e6:.3f} MB bf16 output with the reference on the device",
                     f"alone {1e3 * alone[n]:.1f} ms, another process busy {1e3 * crowded[n]:.1f} ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_out_argument(parser)
    args = parser.parse_args()
    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    rows = payload_costs(device)
    if device.startswith("cuda"):
        rows += comparison_costs(device) + contended_costs(device) + profile_costs(device)
    s = stamp(device)
    lines = [f"# Hand-over and profile costs ({s.machine}, {s.date})", "", "| what | seconds |", "|---|---|"]
    lines += [f"| {what} | {figures} |" for what, figures in rows]
    emit(lines, args.out, "diag_handover_cost_latest.md")


if __name__ == "__main__":
    main()
