"""apply() end to end on a tiny dataset: outputs tell which solution ran (x * w + mark; the fallback adds 0)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import kernelarena
from kernelarena.apply import ApplyConfig, RoutingPolicy, current_runtime
from kernelarena.errors import DispatchError
from kernelarena.schema import Status

from .tiny_dataset import DEFINITION, HIDDEN, make_dataset, marking, scale_rows, scale_rows_into, solution, trace


def ran(rows: int, dtype=torch.float32, hidden: int = HIDDEN) -> float:
    """Mark of the implementation that ran for a call with ``rows`` rows: 0 fallback, else a solution's mark."""
    x, w = torch.ones(rows, hidden, dtype=dtype), torch.ones(hidden, dtype=dtype)
    return float(scale_rows(x, w)[0, 0]) - 1.0


@pytest.fixture
def two_solutions(tmp_path):
    """a (+1) wins at 16 rows, b (+2) at 4 rows; nothing benchmarked elsewhere."""
    root = tmp_path / "ds"
    make_dataset(root, [marking("a", 1), marking("b", 2)],
                 [trace("a", 4, 0.5), trace("b", 4, 0.2), trace("a", 16, 0.1), trace("b", 16, 0.3)])
    return root


def test_fallback_runs_without_a_dataset():
    assert current_runtime() is None
    assert ran(4) == 0
    x, w = torch.ones(2, HIDDEN), torch.ones(HIDDEN)
    assert kernelarena.apply(DEFINITION, args=(x, w), fallback=lambda x, w: x + w)[0, 0] == 2
    with pytest.raises(DispatchError, match="no fallback"):
        kernelarena.apply(DEFINITION, args=(x, w))


def test_routes_each_key_to_its_fastest_solution(two_solutions):
    runtime = kernelarena.enable_apply(two_solutions)
    assert (ran(4), ran(16)) == (2, 1)
    assert ran(5) == 0  # never benchmarked: fallback by default
    assert runtime.routes(DEFINITION) == {(4,): "b", (16,): "a", (5,): None}
    kernelarena.disable_apply()
    assert (ran(4), ran(16)) == (0, 0)


def test_function_mode_and_keywords_route_too(two_solutions):
    kernelarena.enable_apply(two_solutions)
    x, w = torch.ones(4, HIDDEN), torch.ones(HIDDEN)
    assert kernelarena.apply(DEFINITION, args=(x, w), fallback=lambda x, w: x * w)[0, 0] == 3
    assert kernelarena.apply(DEFINITION, kwargs={"x": x, "w": w})[0, 0] == 3
    assert scale_rows(x, w=w)[0, 0] == 3
    assert scale_rows(x=x, w=w)[0, 0] == 3


def test_keywords_that_are_not_the_definitions_go_to_the_fallback_as_given(two_solutions):
    @kernelarena.apply(DEFINITION)
    def other_names(inp, weight):
        return inp * weight

    kernelarena.enable_apply(two_solutions)
    x, w = torch.ones(4, HIDDEN), torch.ones(HIDDEN)
    assert other_names(inp=x, weight=w)[0, 0] == 1
    assert other_names(x, w)[0, 0] == 3


def test_calls_that_do_not_fit_the_definition_fall_back(two_solutions):
    kernelarena.enable_apply(two_solutions)
    assert ran(4, hidden=HIDDEN * 2) == 0  # const axis differs
    assert ran(4, dtype=torch.float64) == 0  # dtype differs
    assert ran(4) == 2
    runtime = current_runtime()
    with pytest.raises(RuntimeError):  # a weight of the wrong size: the fallback's own error, as without apply
        scale_rows(torch.ones(4, HIDDEN), torch.ones(HIDDEN + 1))
    assert not runtime.excluded and ran(4) == 2  # and the kernel is not blamed for the caller's mistake


def test_error_limits_and_failed_or_newer_traces(tmp_path):
    root = tmp_path / "ds"
    make_dataset(root, [marking("a", 1), marking("b", 2), marking("c", 3)], [
        trace("a", 4, 0.5), trace("b", 4, 0.1, abs_error=0.5),
        trace("c", 4, 0.05), trace("c", 4, 1.0, status=Status.RUNTIME_ERROR, timestamp="2026-11-25T00:00:00Z"),
    ])
    kernelarena.enable_apply(root)
    assert ran(4) == 2  # c's newest trace failed; b is fastest with no limit
    kernelarena.disable_apply()
    kernelarena.enable_apply(root, ApplyConfig(default=RoutingPolicy(max_abs_error=0.1)))
    assert ran(4) == 1


def test_min_speedup_keeps_slow_solutions_out(tmp_path):
    root = tmp_path / "ds"
    make_dataset(root, [marking("a", 1)], [trace("a", 4, 2.0)])  # speedup 0.5
    kernelarena.enable_apply(root, ApplyConfig(default=RoutingPolicy(min_speedup=1.0)))
    assert ran(4) == 0


def test_unseen_key_policies_and_per_definition_override(two_solutions):
    kernelarena.enable_apply(two_solutions, ApplyConfig(default=RoutingPolicy(unseen="nearest")))
    assert (ran(3), ran(5), ran(12), ran(1000)) == (2, 2, 1, 1)
    kernelarena.disable_apply()
    named = ApplyConfig(overrides={DEFINITION: RoutingPolicy(unseen="solution", unseen_solution="a")})
    kernelarena.enable_apply(two_solutions, named)
    assert (ran(5), ran(4)) == (1, 2)
    kernelarena.disable_apply()
    off = ApplyConfig(overrides={DEFINITION: RoutingPolicy(enabled=False)})
    kernelarena.enable_apply(two_solutions, off)
    assert ran(4) == 0


def test_a_named_unseen_solution_must_exist(two_solutions):
    config = ApplyConfig(default=RoutingPolicy(unseen="solution", unseen_solution="nope"))
    with pytest.raises(ValueError, match="nope"):
        kernelarena.enable_apply(two_solutions, config)
    with pytest.raises(ValueError, match="unseen_solution"):
        RoutingPolicy(unseen="solution")


def test_a_raising_solution_is_logged_once_excluded_and_the_call_falls_back(tmp_path, caplog):
    root = tmp_path / "ds"
    make_dataset(root, [solution("broken", "raise RuntimeError('kernel bug')"), marking("slow", 5)],
                 [trace("broken", 4, 0.1), trace("slow", 4, 0.9), trace("broken", 16, 0.1)])
    runtime = kernelarena.enable_apply(root)
    with caplog.at_level(logging.ERROR, logger="kernelarena.apply"):
        assert ran(16) == 0  # the failing call itself gets the fallback's answer
        assert ran(4) == 5  # then the next candidate takes over where there is one
        assert ran(16) == 0
        assert ran(4) == 5
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "broken" in errors[0].getMessage() and "kernel bug" in caplog.text
    assert runtime.excluded == {"broken"}


def test_a_solution_that_fails_to_build_is_logged_once_and_excluded(tmp_path, caplog):
    root = tmp_path / "ds"
    make_dataset(root, [solution("syntax", "return x *"), marking("ok", 1)],
                 [trace("syntax", 4, 0.1), trace("ok", 4, 0.5), trace("syntax", 16, 0.1)])
    with caplog.at_level(logging.WARNING, logger="kernelarena.apply"):
        runtime = kernelarena.enable_apply(root, warmup=True)
        assert (ran(4), ran(16), ran(16)) == (1, 0, 0)
    assert runtime.excluded == {"syntax"}
    assert len([r for r in caplog.records if "syntax" in r.getMessage()]) == 1


def test_destination_passing_solution_called_value_returning(tmp_path):
    root = tmp_path / "ds"
    make_dataset(root, [marking("dps", 7, dps=True)], [trace("dps", 4, 0.1)])
    kernelarena.enable_apply(root)
    x, w = torch.full((4, HIDDEN), 2.0), torch.ones(HIDDEN)
    out = scale_rows(x, w)
    assert out.shape == (4, HIDDEN) and out.dtype == torch.float32 and torch.all(out == 9)


def test_value_returning_solution_called_destination_passing(two_solutions):
    kernelarena.enable_apply(two_solutions)
    x, w, y = torch.ones(4, HIDDEN), torch.ones(HIDDEN), torch.zeros(4, HIDDEN)
    assert scale_rows_into(x, w, y) is None
    assert torch.all(y == 3)
    y.zero_()
    scale_rows_into(torch.ones(5, HIDDEN), w, torch.zeros(5, HIDDEN))  # unseen: its own fallback, DPS
    assert kernelarena.apply(DEFINITION, args=(x, w, y)) is None and torch.all(y == 3)


def test_destination_passing_both_sides(tmp_path):
    root = tmp_path / "ds"
    make_dataset(root, [marking("dps", 7, dps=True)], [trace("dps", 4, 0.1)])
    kernelarena.enable_apply(root)
    y = torch.zeros(4, HIDDEN)
    scale_rows_into(torch.ones(4, HIDDEN), torch.ones(HIDDEN), y)
    assert torch.all(y == 8)


def test_context_manager_and_nesting(two_solutions, tmp_path):
    other = tmp_path / "other"
    make_dataset(other, [marking("c", 3)], [trace("c", 4, 0.1)])
    with kernelarena.enable_apply(two_solutions):
        assert ran(4) == 2
        with kernelarena.enable_apply(other):
            assert ran(4) == 3
        assert ran(4) == 2
    assert ran(4) == 0 and current_runtime() is None


def test_decorating_after_enable_routes_too(two_solutions):
    kernelarena.enable_apply(two_solutions)

    @kernelarena.apply(DEFINITION)
    def late(x, w):
        return x * w

    assert late(torch.ones(4, HIDDEN), torch.ones(HIDDEN))[0, 0] == 3


def test_key_cache_stays_bounded(two_solutions):
    runtime = kernelarena.enable_apply(two_solutions, ApplyConfig(max_cached_keys=3))
    for rows in range(1, 20):
        ran(rows)
    assert len(runtime.router(DEFINITION).value_entries) <= 3 and len(runtime.routes(DEFINITION)) <= 3
    assert ran(4) == 2


def test_environment_variable_enables_apply_in_a_process_that_never_calls_us(two_solutions, tmp_path):
    program = textwrap.dedent(f"""
        import torch, kernelarena

        @kernelarena.apply({DEFINITION!r})
        def scale_rows(x, w):
            return x * w

        print(float(scale_rows(torch.ones(4, {HIDDEN}), torch.ones({HIDDEN}))[0, 0]))
    """)
    env = {"KERNELARENA_APPLY": str(two_solutions), "KERNELARENA_CACHE_DIR": str(tmp_path / "cache"),
           "PATH": "/usr/bin:/bin"}
    if "PYTHONPATH" in os.environ:  # where the package comes from a path, not an install (the GPU machine)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    routed = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120)
    assert routed.returncode == 0, routed.stderr
    assert routed.stdout.strip() == "3.0"
    env["KERNELARENA_APPLY"] = str(tmp_path / "missing")
    survived = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120)
    assert survived.returncode == 0 and survived.stdout.strip() == "1.0"
    assert "cannot enable" in survived.stderr
