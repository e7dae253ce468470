"""Speed of light: the least time one call can take on this device, from what the call must move and compute
and the device's measured ceilings (copy bandwidth; bf16 and fp32 matmul rates).

Ceilings are measured once per device (hardware name and torch version) and cached on disk under the cache
root, ``ceilings/``. A latency below ``IMPOSSIBLE_BELOW`` times the least time the fastest measured rates allow
is not believed: the solution's process misreported its timing, or worked outside the timed region.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from ..schema import Definition, SpeedOfLight, Workload, torch_dtype
from ..schema.constraints import ConstraintError, _eval, check_constraint
from .device_activity import profile_calls

IMPOSSIBLE_BELOW = 0.9
"""A latency under 0.9x the ceiling time fails: the slack covers measurement noise in the ceilings and in
one timing, not a real kernel beating a measured copy or matmul."""
_HALF = {"bfloat16", "float16", "float8_e4m3fn", "float8_e5m2"}
_FP8 = {"float8_e4m3fn", "float8_e5m2"}


class RooflineError(ValueError):
    """A definition's roofline expression cannot be evaluated for a workload."""


def _evaluate(definition: Definition, what: str, expression: str, axes: Dict[str, int]) -> float:
    try:
        value = _number(expression, axes)
    except (ConstraintError, ArithmeticError, TypeError) as e:
        raise RooflineError(f"definition {definition.name}: roofline.{what} {expression!r}: {e}") from e
    if not isinstance(value, (int, float)) or value < 0:
        raise RooflineError(f"definition {definition.name}: roofline.{what} {expression!r} gave {value!r}, "
                            "not a non-negative number")
    return float(value)


def _number(expression: str, axes: Dict[str, int]):
    # The constraints' interpreter evaluates arithmetic safely (a whitelist of nodes, never eval); its public
    # entry point returns a truth value, so the checked tree goes to its node walker directly.
    return _eval(check_constraint(expression).body, axes, expression)


def work_of(definition: Definition, workload: Workload) -> Tuple[float, float]:
    """(bytes, flops) of one call: the definition's roofline expressions over the workload's axes, else the
    sizes of all tensor inputs and outputs and no flops. Raises RooflineError naming a bad expression."""
    axes = {**definition.const_axes, **workload.axes}
    roofline = definition.roofline
    if roofline is not None and roofline.bytes is not None:
        moved = _evaluate(definition, "bytes", roofline.bytes, axes)
    else:
        moved = 0.0
        for which in ("inputs", "outputs"):
            specs = getattr(definition, which)
            for name, shape in definition.shapes(workload.axes, which).items():
                if shape is not None:
                    count = 1
                    for dim in shape:
                        count *= dim
                    moved += count * torch_dtype(specs[name].dtype).itemsize
    flops = 0.0
    if roofline is not None and roofline.flops is not None:
        flops = _evaluate(definition, "flops", roofline.flops, axes)
    return moved, flops


# ---------------------------------------------------------------- ceilings
def _best_rate(fn, work: float, device: str, repeats: int) -> float:
    """Work per second of ``fn`` at its best of ``repeats`` calls (after one warm-up call). On a GPU the calls
    are timed as solutions are by default, by their CUPTI device time: timed by CUDA events instead, a copy that
    fits in L2 would carry the events' own ~2.5 us, its rate would read low, and a solution timed without that
    cost could fail the speed-of-light check for real work."""
    fn()
    if device.startswith("cuda"):
        try:
            activity = profile_calls(lambda _: fn(), repeats)
        except Exception:  # the profiler cannot start here (no CUPTI, another profile): the events below
            activity = None
        if activity is not None and activity.problem is None:
            return work / max(min(activity.busy_us()) / 1e6, 1e-9)
    best = float("inf")
    for _ in range(repeats):
        if device.startswith("cuda"):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            best = min(best, start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
    return work / max(best, 1e-9)


def _copy_rate(size: int, device: str) -> float:
    """Bytes read plus written per second by a copy of ``size`` bytes."""
    src = torch.empty(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    return _best_rate(lambda: dst.copy_(src), 2.0 * size, device, 5)


def measure_ceilings(device: str) -> Dict[str, float]:
    """Copy bandwidth (a buffer far larger than the caches, and one that fits in them) and bf16 / fp32 matmul
    rates, measured with torch on ``device``. About 1 s on the CPU, less on a GPU."""
    gpu = device.startswith("cuda")
    big, small = (1 << 30, 8 << 20) if gpu else (32 << 20, 256 << 10)
    ceilings = {}
    threads = torch.get_num_threads()
    for key, size in (("copy_bytes_per_s", big), ("cached_copy_bytes_per_s", small)):
        ceilings[key] = _copy_rate(size, device)
    if not gpu:
        # A copy split over a thread pool waits for busy cores to wake its threads (20 ms per copy measured on
        # a loaded 2-core machine, 0.1 ms on one thread), and one thread reaches less of the memory's bandwidth
        # than a solution's multithreaded kernel does (a GEMM read its weights at 19 GB/s where one thread's
        # copy had measured less, on the CI machine): the faster of one thread and all of them, per buffer.
        torch.set_num_threads(1)
        try:
            for key, size in (("copy_bytes_per_s", big), ("cached_copy_bytes_per_s", small)):
                ceilings[key] = max(ceilings[key], _copy_rate(size, device))
        finally:
            torch.set_num_threads(threads)
    for key, dtype, n in (("bf16_flops_per_s", torch.bfloat16, 8192 if gpu else 256),
                          ("fp32_flops_per_s", torch.float32, 4096 if gpu else 384)):
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        ceilings[key] = _best_rate(lambda: torch.mm(a, b), 2.0 * n ** 3, device, 5)
    if gpu:
        torch.cuda.empty_cache()
    return ceilings


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120]


def _ceilings_path(device: str, hardware: str, cache_root: Optional[Path]) -> Path:
    from ..build.toolchain import default_cache_root

    folder = (cache_root or default_cache_root()) / "ceilings"
    # "-cupti": GPU ceilings timed as solutions are since the CUPTI timer; older files (events) are redone.
    tag = "-cupti" if device.startswith("cuda") else ""
    return folder / f"{_slug(hardware)}-torch{_slug(torch.__version__)}{tag}.json"


def save_ceilings(device: str, hardware: str, ceilings: Dict[str, float], cache_root: Optional[Path] = None) -> None:
    """Cache ``ceilings`` as ``device_ceilings`` reads them (written whole, then renamed into place)."""
    path = _ceilings_path(device, hardware, cache_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp{id(ceilings)}")
    temporary.write_text(json.dumps(ceilings, indent=1))
    temporary.replace(path)


def device_ceilings(device: str, hardware: str, cache_root: Optional[Path] = None) -> Dict[str, float]:
    """The ceilings of ``device`` (named ``hardware``), measured on first use and cached on disk."""
    path = _ceilings_path(device, hardware, cache_root)
    try:
        cached = json.loads(path.read_text())
        if all(isinstance(cached.get(k), (int, float)) and cached[k] > 0 for k in
               ("copy_bytes_per_s", "cached_copy_bytes_per_s", "bf16_flops_per_s", "fp32_flops_per_s")):
            return cached
    except (OSError, ValueError):
        pass
    ceilings = measure_ceilings(device)
    save_ceilings(device, hardware, ceilings, cache_root)
    return ceilings


# ---------------------------------------------------------------- speed of light
def _matmul_rate(definition: Definition, ceilings: Dict[str, float]) -> float:
    dtypes = {spec.dtype.value for spec in definition.inputs.values()}
    return ceilings["bf16_flops_per_s"] if dtypes & _HALF else ceilings["fp32_flops_per_s"]


def speed_of_light(definition: Definition, workload: Workload, latency_ms: float,
                   ceilings: Dict[str, float]) -> SpeedOfLight:
    """How close ``latency_ms`` is to the least time at the measured DRAM copy bandwidth and the matmul rate of
    the inputs' precision (bf16 when any input is half precision or narrower, else fp32)."""
    moved, flops = work_of(definition, workload)
    memory_ms = 1e3 * moved / ceilings["copy_bytes_per_s"]
    compute_ms = 1e3 * flops / _matmul_rate(definition, ceilings)
    ceiling_ms = max(memory_ms, compute_ms)
    return SpeedOfLight(bytes=moved, flops=flops, ceiling_ms=ceiling_ms,
                        bound="compute" if compute_ms > memory_ms else "memory",
                        fraction=ceiling_ms / latency_ms if latency_ms > 0 else float("inf"),
                        ceilings=dict(ceilings))


def impossible_speed(definition: Definition, workload: Workload, latency_ms: float,
                     ceilings: Dict[str, float]) -> Optional[str]:
    """Why ``latency_ms`` cannot be real, or None. The bound is generous: the fastest copy measured (data in
    cache included) and the fastest matmul rate (doubled for fp8 inputs), times IMPOSSIBLE_BELOW."""
    moved, flops = work_of(definition, workload)
    copy = max(ceilings["copy_bytes_per_s"], ceilings["cached_copy_bytes_per_s"])
    rate = max(ceilings["bf16_flops_per_s"], ceilings["fp32_flops_per_s"])
    if {spec.dtype.value for spec in definition.inputs.values()} & _FP8:
        rate *= 2
    least_ms = max(1e3 * moved / copy, 1e3 * flops / rate)
    if latency_ms >= IMPOSSIBLE_BELOW * least_ms:
        return None
    return (f"latency {latency_ms:.6g} ms is below the speed of light: moving {moved:.4g} bytes takes at least "
            f"{1e3 * moved / copy:.4g} ms at the fastest copy measured on this device ({copy / 1e9:.1f} GB/s), "
            f"and {flops:.4g} flops at least {1e3 * flops / rate:.4g} ms at {rate / 1e12:.2f} TFLOP/s; latencies "
            f"under {IMPOSSIBLE_BELOW}x that are not believed (the timing was misreported, or the work was done "
            "outside the timed call)")
