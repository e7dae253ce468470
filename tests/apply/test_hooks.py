"""apply's hook points: the floors above register, apply calls them, a failing hook never breaks apply."""

from __future__ import annotations

import logging

from kernelarena.apply import api, disable_apply, enable_apply, hooks

from .tiny_dataset import make_dataset


def test_change_hooks_see_each_enable_and_disable(tmp_path):
    dataset = make_dataset(tmp_path / "d")
    seen = []
    hook = hooks.on_change(seen.append)
    assert hooks.on_change(hook) is hook  # registering twice keeps one
    try:
        runtime = enable_apply(dataset)
        disable_apply(runtime)
    finally:
        hooks.remove(hook)
    assert seen == [runtime, None]


def test_a_failing_hook_is_logged_and_the_others_still_run(tmp_path, caplog):
    dataset = make_dataset(tmp_path / "d")
    seen = []

    def broken(runtime):
        raise RuntimeError("hook bug")

    hooks.on_change(broken)
    hooks.on_change(seen.append)
    try:
        with caplog.at_level(logging.ERROR, logger="kernelarena.apply"):
            with enable_apply(dataset) as runtime:
                pass
    finally:
        hooks.remove(broken)
        hooks.remove(seen.append)
    assert seen == [runtime, None]
    assert "hook bug" in caplog.text


def test_startup_hooks_run_once_with_the_environment(monkeypatch):
    seen = []
    hook = hooks.on_startup(lambda environ: seen.append(environ.get("KERNELARENA_HOOK_TEST")))
    monkeypatch.setenv("KERNELARENA_HOOK_TEST", "yes")
    monkeypatch.setattr(api, "_environment_read", False)
    try:
        api.read_environment()
        api.read_environment()
    finally:
        hooks.remove(hook)
    assert seen == ["yes"]


def test_router_choose_names_the_first_candidate_that_builds(tmp_path):
    from .tiny_dataset import marking, trace

    dataset = make_dataset(tmp_path / "d", solutions=[marking("fast", 1.0), marking("slow", 2.0)],
                           traces=[trace("fast", 4, 0.1), trace("slow", 4, 0.5)])
    with enable_apply(dataset) as runtime:
        router = runtime.router("scale_rows_h8")
        solution, runnable, how = router.choose((4,), "cpu")
        assert (solution, how) == ("fast", "exact") and runnable is not None
        runtime.exclude("fast", "test")
        assert router.choose((4,), "cpu")[0] == "slow"
        assert router.choose((64,), "cpu")[:2] == (None, None)


def test_a_solution_treated_as_the_fallback_runs_the_callers_fallback(tmp_path):
    import torch

    from .tiny_dataset import marking, scale_rows, trace

    dataset = make_dataset(tmp_path / "d", solutions=[marking("fast", 1.0)], traces=[trace("fast", 4, 0.1)])
    x, w = torch.ones(4, 8), torch.full((8,), 2.0)
    with enable_apply(dataset) as runtime:
        assert torch.equal(scale_rows(x, w), x * w + 1.0)  # routed to "fast"
        runtime.treat_as_fallback(["fast"])
        assert torch.equal(scale_rows(x, w), x * w)  # the decorated function's own body
        assert runtime.routes("scale_rows_h8") == {(4,): None}
