"""Tracing: apply calls become ordinary workload entries of a dataset."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

import kernelarena
from kernelarena.schema import RandomInput, SafetensorsInput
from kernelarena.store import TraceSet
from kernelarena.tracing import FirstN, Sampled, disable_tracing, enable_tracing, flush_tracing
from tests.apply.tiny_dataset import DEFINITION, HIDDEN, make_dataset, marking, trace


@kernelarena.apply(DEFINITION)
def scale_rows(x, w):
    return x * w


def call(*rows_list, **kw):
    for rows in rows_list:
        scale_rows(torch.full((rows, HIDDEN), float(rows)), torch.ones(HIDDEN), **kw)


def traced_axes(root):
    return sorted(w.axes["rows"] for w in TraceSet.load(root).workloads_for(DEFINITION))


@pytest.fixture
def root(tmp_path):
    make_dataset(tmp_path / "ds")
    return tmp_path / "ds"


def test_first_n_per_key_written_on_flush_as_loadable_workloads(root):
    tracer = enable_tracing(root, FirstN(2))
    call(4, 4, 4, 8, 8, 8, 8, 16)
    assert traced_axes(root) == []  # buffered until a flush
    assert flush_tracing() == 5
    dataset = TraceSet.load(root)  # strict: every record valid
    workloads = dataset.workloads_for(DEFINITION)
    assert sorted(w.axes["rows"] for w in workloads) == [4, 4, 8, 8, 16]
    assert all(isinstance(spec, RandomInput) for w in workloads for spec in w.inputs.values())
    assert len({w.uuid for w in workloads}) == 5
    assert tracer.close() == 0


def test_distinct_shapes_and_existing_workloads_are_not_recorded_again(tmp_path):
    make_dataset(tmp_path / "ds", workloads=[4])
    enable_tracing(tmp_path / "ds", "distinct_shapes")
    call(4, 8, 8, 4, 16)
    disable_tracing()
    assert traced_axes(tmp_path / "ds") == [4, 8, 16]


def test_sampled_policy_is_seeded_and_capped(root):
    enable_tracing(root, Sampled(rate=1.0, max_per_key=1))
    call(4, 4, 8)
    disable_tracing()
    assert traced_axes(root) == [4, 8]
    policy = Sampled(rate=0.25, seed_value=7)
    enable_tracing(root, policy)
    call(*[32] * 200)
    kept = disable_tracing()
    assert 20 <= kept <= 80 and kept == policy.counts[(DEFINITION, (32,))]


def test_inputs_saved_to_blob_once_per_distinct_tensor(root):
    enable_tracing(root, FirstN(3), save_inputs=True)
    call(4, 4, 8)  # the same x twice at 4 rows, the same weight every time
    disable_tracing()
    dataset = TraceSet.load(root)
    workloads = dataset.workloads_for(DEFINITION)
    specs = [w.inputs for w in workloads]
    assert all(isinstance(s["x"], SafetensorsInput) and isinstance(s["w"], SafetensorsInput) for s in specs)
    assert len({s["w"].path for s in specs}) == 1 and len({s["x"].path for s in specs}) == 2
    assert len(list((root / "blob").rglob("*.safetensors"))) == 3
    eight = next(s for w, s in zip(workloads, specs) if w.axes["rows"] == 8)
    assert torch.equal(load_file(str(root / eight["x"].path))["x"], torch.full((8, HIDDEN), 8.0))


def test_only_calls_that_fit_the_definition_are_recorded_and_keywords_count(root):
    enable_tracing(root)
    scale_rows(torch.ones(4, HIDDEN, dtype=torch.float64), torch.ones(HIDDEN, dtype=torch.float64))
    scale_rows(torch.ones(2, HIDDEN * 2), torch.ones(HIDDEN * 2))
    scale_rows(x=torch.ones(3, HIDDEN), w=torch.ones(HIDDEN))
    disable_tracing()
    assert traced_axes(root) == [3]


def test_tracing_beside_apply_records_and_still_routes(tmp_path):
    root = tmp_path / "ds"
    make_dataset(root, [marking("a", 1)], [trace("a", 4, 0.1)])
    kernelarena.enable_apply(root)
    site = scale_rows.apply_site
    assert site.fast  # apply alone: the decorated function reads the key cache itself
    enable_tracing(root)
    assert not site.fast  # tracing on: every call takes the observed path
    assert scale_rows(torch.ones(4, HIDDEN), torch.ones(HIDDEN))[0, 0] == 2
    disable_tracing()
    assert site.fast  # tracing off again: no trace of it left on the hot path
    assert traced_axes(root) == [4]


def test_environment_variable_traces_a_process_that_never_calls_us_and_flushes_at_exit(root, tmp_path):
    program = textwrap.dedent(f"""
        import torch, kernelarena

        @kernelarena.apply({DEFINITION!r})
        def scale_rows(x, w):
            return x * w

        for rows in (1, 2, 2, 3):
            scale_rows(torch.ones(rows, {HIDDEN}), torch.ones({HIDDEN}))
    """)
    env = {"KERNELARENA_TRACE": str(root), "KERNELARENA_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert traced_axes(root) == [1, 2, 3]


def test_traced_workloads_are_benchmarked_by_run_and_then_routed(tmp_path):
    from kernelarena.bench import RunConfig, TimingConfig, run

    root = tmp_path / "ds"
    make_dataset(root, [marking("exact", 0)])  # x * w + 0: correct against the reference
    enable_tracing(root, save_inputs=["x"])
    call(4, 8)
    disable_tracing()
    dataset = TraceSet.load(root)
    report = run(dataset, RunConfig(devices=("cpu",), timing=TimingConfig(warmup=1, reps=3), correctness_rounds=1))
    assert [t.evaluation.status.value for t in report.traces] == ["PASSED", "PASSED"]
    runtime = kernelarena.enable_apply(root)
    call(4, 8)
    assert runtime.routes(DEFINITION) == {(4,): "exact", (8,): "exact"}
