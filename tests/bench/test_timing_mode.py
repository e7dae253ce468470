"""The timing mode per definition: the run's explicit mode, else the definition's, else cold; host cost filled."""

import pytest

from kernelarena.bench import TimingConfig
from kernelarena.bench.timing import resolve_timing, time_calls
from kernelarena.schema import Definition


def _definition(**extra) -> Definition:
    return Definition.model_validate({
        "name": "copy", "op_type": "elementwise", "axes": {"n": {"type": "var"}},
        "inputs": {"x": {"shape": ["n"], "dtype": "float32"}}, "outputs": {"y": {"shape": ["n"], "dtype": "float32"}},
        "reference": "def run(x):\n    return x.clone()\n", **extra})


def test_run_mode_beats_definition_mode_beats_cold():
    assert resolve_timing(TimingConfig(), _definition()).mode == "cold"
    assert resolve_timing(TimingConfig(), _definition(timing="graph")).mode == "graph"
    assert resolve_timing(TimingConfig(mode="warm"), _definition(timing="graph")).mode == "warm"
    with pytest.raises(ValueError, match="timing mode 'hot' is not one of cold, events, warm, graph"):
        resolve_timing(TimingConfig(mode="hot"), _definition())


def test_definition_timing_is_validated_and_round_trips():
    with pytest.raises(ValueError, match="timing"):
        _definition(timing="lukewarm")
    definition = _definition(timing="graph", plan_inputs=["x"])
    assert Definition.model_validate_json(definition.to_json()) == definition
    assert "timing" not in _definition().to_json_dict() and "plan_inputs" not in _definition().to_json_dict()


def test_cpu_timing_fills_host_cost():
    stats, _ = time_calls(lambda i: (), 1, "cpu", TimingConfig(warmup=0, reps=3), lambda i: (), check=False)
    assert stats.mode == "cpu-wall" and stats.host_overhead_us == pytest.approx(stats.median_ms * 1e3)


def test_timed_calls_draw_the_same_random_numbers_in_every_run():
    """A call whose time depends on its random draws (a rejection sampler) must repeat from run to run: before each
    timed call the generators are seeded from the input copy, so copy i draws the same numbers every time."""
    import torch

    from kernelarena.bench.config import TimingConfig as Timing
    from kernelarena.bench.timing import time_calls

    def draws_of_one_run(state):
        drawn = []

        def call(i):
            drawn.append((i, torch.rand(1).item(), torch.randint(0, 1 << 30, (1,)).item()))
            return ()

        torch.manual_seed(state)  # whatever state the process is in before the loop
        time_calls(call, 3, "cpu", Timing(warmup=0, reps=9), lambda i: (), check=False)
        return drawn

    first, second = draws_of_one_run(1), draws_of_one_run(2)
    assert first == second
    by_copy = {}
    for i, *values in first:
        by_copy.setdefault(i, set()).add(tuple(values))
    assert sorted(by_copy) == [0, 1, 2] and all(len(v) == 1 for v in by_copy.values())
    assert len({v for values in by_copy.values() for v in values}) == 3  # the copies' draws differ


def test_input_sets_shrink_to_the_memory_budget_and_never_below_one():
    timing = TimingConfig(input_copies=4, input_copy_bytes=1000)
    assert [timing.copies_for(size) for size in (0, 250, 251, 400, 999, 1000, 10 ** 12)] == [4, 4, 3, 2, 1, 1, 1]
    assert TimingConfig(input_copies=2).copies_for(1) == 2  # never more than asked for
