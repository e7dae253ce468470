"""Host cost of a library call, back to back: what a serving loop pays per call when it does not wait.

``back_to_back_us(fn)`` calls ``fn()`` ``calls`` times in a row on the same inputs, with no sleep queued
ahead on the GPU and no synchronization between calls, and returns per-call microseconds:

    host   time until the last call returned (the host's cost per call, as long as the GPU keeps up)
    wall   time until the GPU finished the last call (what a caller waiting for the result sees)

Each is the median over ``rounds`` rounds. When the kernel is shorter than the host's cost, wall ~ host:
the GPU idles between launches and the call is host-bound. Used by bench_rmsnorm.py and bench_attention.py.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Dict, NamedTuple, Optional

import torch

from kernelarena.bench.timing import balanced_orders


class BackToBack(NamedTuple):
    host_us: float
    wall_us: float


def _sync() -> Callable[[], object]:
    return torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)


def _one_round(fn: Callable[[], object], calls: int, sync: Callable[[], object]) -> tuple[float, float]:
    """Host and wall microseconds per call of ``calls`` calls of ``fn`` back to back."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    issued = time.perf_counter()
    sync()
    done = time.perf_counter()
    return (issued - start) / calls * 1e6, (done - start) / calls * 1e6


def _medians(rounds: list) -> BackToBack:
    return BackToBack(statistics.median(r[0] for r in rounds), statistics.median(r[1] for r in rounds))


def back_to_back_us(fn: Callable[[], object], calls: int = 500, rounds: int = 5, warmup: int = 20) -> BackToBack:
    """Median host and wall microseconds per call of ``fn`` called ``calls`` times back to back."""
    sync = _sync()
    for _ in range(warmup):
        fn()
    sync()
    return _medians([_one_round(fn, calls, sync) for _ in range(rounds)])


def back_to_back_each(fns: Dict[str, Callable[[], object]], calls: int = 500, rounds: int = 5,
                      warmup: int = 20, errors: Optional[Dict[str, str]] = None) -> Dict[str, BackToBack]:
    """``back_to_back_us`` for several functions, timed in turn within each round (name -> medians), so that a
    drift of the host's speed or the GPU's clock over the run falls on all of them alike; the rounds take the
    orders of ``balanced_orders``, so that no function always follows the same one. A function that raises
    in its warm-up is left out of the result (``errors`` gets its name and the exception); the others keep their
    rounds."""
    sync = _sync()
    live = {}
    for name, fn in fns.items():
        try:
            for _ in range(warmup):
                fn()
            sync()
            live[name] = fn
        except Exception as exc:  # one function failing must not lose the others' rounds
            if errors is not None:
                errors[name] = f"{type(exc).__name__}: {exc}"
    measured: Dict[str, list] = {name: [] for name in live}
    names, orders = list(live), balanced_orders(len(live)) or [[]]  # each function after each other one alike
    for r in range(rounds):
        for k in orders[r % len(orders)]:
            measured[names[k]].append(_one_round(live[names[k]], calls, sync))
    return {name: _medians(r) for name, r in measured.items()}
