"""ColdL2Timer on the CPU: every function timed, per call, and a slower function measured slower."""

import time

import pytest

from kernelarena.bench.timing import ColdL2Timer


def test_cpu_times_each_function_per_call():
    calls = {"fast": 0, "slow": 0}

    def fast(_):
        calls["fast"] += 1

    def slow(_):
        calls["slow"] += 1
        time.sleep(0.002)

    times = ColdL2Timer("cpu").median_us_each({"fast": fast, "slow": slow}, [0, 1, 2])
    assert list(times) == ["fast", "slow"]
    assert calls == {"fast": 3, "slow": 3}  # each set once
    assert times["slow"] >= 2000 > times["fast"]  # per call, in microseconds


def test_median_us_is_the_single_function_case():
    assert ColdL2Timer("cpu").median_us(lambda _: time.sleep(0.001), [None]) >= 1000


def test_empty_input_is_refused():
    with pytest.raises(ValueError, match="at least one function and one input set"):
        ColdL2Timer("cpu").median_us_each({"f": lambda _: None}, [])


def test_balanced_orders_give_each_implementation_every_predecessor_and_place_alike():
    """Timed in turn, each implementation runs right after each other one equally often, and in each place equally
    often: rotating one order (the timer's way before) left each implementation the same predecessor."""
    from collections import Counter

    from kernelarena.bench.timing import balanced_orders

    assert balanced_orders(1) == [[0]]
    for n in range(2, 8):
        orders = balanced_orders(n)
        assert len(orders) == (n if n % 2 == 0 else 2 * n)
        assert all(sorted(order) == list(range(n)) for order in orders)
        follows = Counter((a, b) for order in orders for a, b in zip(order, order[1:]))
        assert set(follows) == {(a, b) for a in range(n) for b in range(n) if a != b}, n
        assert len(set(follows.values())) == 1, (n, follows)
        places = Counter((k, place) for order in orders for place, k in enumerate(order))
        assert len(places) == n * n and len(set(places.values())) == 1, n
