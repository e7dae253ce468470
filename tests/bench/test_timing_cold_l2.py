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
