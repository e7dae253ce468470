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
