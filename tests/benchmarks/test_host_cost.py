"""benchmarks/host_cost.py: calls back to back, several functions timed in turn."""

from __future__ import annotations

import time

from benchmarks.host_cost import back_to_back_each


def test_back_to_back_each_times_in_turn_and_leaves_out_what_raises():
    order = []

    def make(name, seconds):
        def fn():
            order.append(name)
            time.sleep(seconds)
        return fn

    def broken():
        raise RuntimeError("no kernel")

    errors = {}
    result = back_to_back_each({"slow": make("slow", 2e-3), "fast": make("fast", 0), "broken": broken},
                               calls=3, rounds=2, warmup=1, errors=errors)
    assert set(result) == {"slow", "fast"} and errors == {"broken": "RuntimeError: no kernel"}
    # Warm-up (one call each), then each round runs every function's calls before the next round starts, the
    # rounds in balanced orders: the second round starts with the function the first ended with.
    assert order == ["slow", "fast"] + ["slow"] * 3 + ["fast"] * 3 + ["fast"] * 3 + ["slow"] * 3
    assert result["slow"].host_us > 1500 > result["fast"].host_us
    assert all(r.wall_us >= r.host_us for r in result.values())
