"""The device lock between the harness's processes (bench/quiet.py): timed loops exclude start-ups, start-ups
share, and a holder that never lets go delays the others by the timeout only."""

import multiprocessing
import time

import torch

from kernelarena.bench import quiet, spent


def _hold(path, exclusive, seconds, ready):
    quiet.use(path)
    with quiet.held(exclusive=exclusive) as waited:
        assert waited is not None
        ready.set()
        time.sleep(seconds)


def _holder(path, exclusive, seconds):
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    process = context.Process(target=_hold, args=(path, exclusive, seconds, ready))
    process.start()
    assert ready.wait(60)
    return process


def test_timed_loops_exclude_start_ups_and_start_ups_share(tmp_path):
    path = quiet.make(str(tmp_path), "cuda:0")
    quiet.use(path)
    try:
        sharer = _holder(path, False, 3.0)  # a worker starting up
        with quiet.held(exclusive=False, timeout_s=0.5) as waited:
            assert waited is not None and waited < 0.5  # another start-up goes alongside
        with quiet.held(exclusive=True, timeout_s=0.3) as waited:
            assert waited is None  # a timed loop does not start inside it; after the timeout it goes on without
        sharer.join()
        with quiet.held(exclusive=True, timeout_s=0.5) as waited:
            assert waited is not None
            with quiet.held(exclusive=True, timeout_s=0.1) as inner:  # nested: the outer hold is the hold
                assert inner == 0.0

        timed = _holder(path, True, 1.0)  # a timed loop elsewhere: a start-up waits for its end
        started = time.perf_counter()
        spent.take()
        with quiet.held(exclusive=False, timeout_s=10) as waited:
            assert waited is not None and 0.3 < time.perf_counter() - started < 9
        timed.join()
        # The wait is reported as a shared hold's, apart from timed loops' waits for the device alone.
        waits = spent.take()
        assert waits.get("device lock wait (shared)", 0) > 0.3 and "device lock wait" not in waits
    finally:
        quiet.use(None)


def test_without_a_lock_file_nothing_waits():
    quiet.use(None)
    with quiet.held(exclusive=True) as waited:
        assert waited is None


def _stream(path, holds, seconds, ready):
    quiet.use(path)
    for i in range(holds):
        with quiet.held(exclusive=False, timeout_s=30) as waited:
            assert waited is not None
            ready.set()
            time.sleep(seconds)


def test_a_stream_of_start_ups_does_not_hold_a_timed_loop_off(tmp_path):
    """Start-ups overlapping one another would keep a shared hold for as long as they keep coming; the gate lets
    the timed loop in once the holds taken before it asked have ended."""
    path = quiet.make(str(tmp_path), "cuda:0")
    context = multiprocessing.get_context("spawn")
    streams = []
    for offset in (0.0, 0.25):  # two workers taking the shared lock in turns, overlapping: 5 s of shared holds
        ready = context.Event()
        process = context.Process(target=_stream, args=(path, 10, 0.5, ready))
        process.start()
        assert ready.wait(60)
        time.sleep(offset)
        streams.append(process)
    quiet.use(path)
    try:
        with quiet.held(exclusive=True, timeout_s=4.0) as waited:
            assert waited is not None and waited < 2.0, waited
    finally:
        quiet.use(None)
        for process in streams:
            process.join(60)
            assert process.exitcode == 0


def _lock_refuses(path, mode) -> bool:
    """Whether a try to take the device lock in ``mode`` from a fresh descriptor fails now."""
    import fcntl
    import os

    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _lock_is_shared_by_someone(path) -> bool:
    """Whether a holder has the device lock now (an exclusive try fails)."""
    import fcntl

    return _lock_refuses(path, fcntl.LOCK_EX)


def _lock_is_exclusive(path) -> bool:
    """Whether a holder has the device lock exclusively now (a shared try fails)."""
    import fcntl

    return _lock_refuses(path, fcntl.LOCK_SH)


def test_every_step_that_uses_the_device_outside_timed_loops_holds_the_lock(tmp_path, monkeypatch):
    """A lane's device work outside the lock runs inside the other lane's timed loop: on the H200 a Triton decode
    kernel of 14 us read 17 us in one run and 14 us in the next, measured while the other lane made its timing
    inputs (4 GB of K/V) without the lock. Inputs for timing, the plan step, the checked outputs' host copies, and
    the reference process's comparisons on the device all hold it shared (comparisons of outputs kept on the host
    need not: tests/bench/test_worker.py checks both kinds on a GPU)."""
    from kernelarena.bench import RunConfig, evaluate, oracle
    from kernelarena.bench.evaluate import SolutionEvaluator
    from kernelarena.build import build_solution
    from tests.bench.cheats import make_dataset

    ds = make_dataset(tmp_path / "ds", rows=4)
    definition, (workload,) = ds.definitions["scale_add"], ds.workloads_for("scale_add")
    path = quiet.make(str(tmp_path), "cuda:0")
    seen = []
    for module in (evaluate, oracle):
        original = module.materialize_inputs

        def spy(*args, _original=original, _module=module.__name__, **kwargs):
            seen.append((_module, _lock_is_shared_by_someone(path)))
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, "materialize_inputs", spy)
    compare = oracle.compare_with

    def compare_spy(spec, definition, outputs, expected, *args, **kwargs):
        # Reference outputs kept on the host (oracle.HOST_COMPARE_BYTES; every output on the CPU) are compared
        # there, holding nothing: only a comparison that uses the device must hold the lock.
        on_device = any(isinstance(t, torch.Tensor) and t.device.type != "cpu" for t in expected)
        seen.append(("compare", _lock_is_shared_by_someone(path) or not on_device))
        return compare(spec, definition, outputs, expected, *args, **kwargs)

    monkeypatch.setattr(oracle, "compare_with", compare_spy)
    quiet.use(path)
    try:
        config = RunConfig(time_reference=True)
        judge = oracle.Oracle("cpu", config, ds.root)
        judge.prepare(definition, workload)
        evaluator = SolutionEvaluator("cpu", config, ds.root)
        runnable = build_solution(ds.solutions["honest"], device="cpu")
        rounds = evaluate.save_payload(evaluator.correctness_rounds(definition, workload, runnable),
                                       tmp_path / "rounds.pt")
        assert judge.check_rounds(definition, workload, rounds, "honest") is None
        timing = evaluate.save_payload(evaluator.timing(definition, workload, runnable), tmp_path / "timing.pt")
        trace = judge.verdict(definition, "honest", workload, timing, judge.environment)
        assert trace.evaluation.status.value == "PASSED"
    finally:
        quiet.use(None)
    assert seen and [what for what, held in seen if not held] == []


def test_comparisons_on_the_device_hold_the_lock_shared_or_exclusively_as_set(tmp_path, monkeypatch):
    """A judging process's comparison against reference outputs kept on a device holds the device lock shared,
    or exclusively with KERNELARENA_EXCLUSIVE_COMPARISONS=1; against outputs kept on the host it holds nothing.
    (Kept outputs on the "meta" device stand for a GPU's: the hold depends only on where they are.)"""
    from kernelarena.bench import RunConfig, oracle
    from tests.bench.cheats import make_dataset

    ds = make_dataset(tmp_path / "ds", rows=4)
    definition, (workload,) = ds.definitions["scale_add"], ds.workloads_for("scale_add")
    judge = oracle.Oracle("cpu", RunConfig(time_reference=False), ds.root)
    path = quiet.make(str(tmp_path), "cuda:0")
    quiet.use(path)
    held = {}
    try:
        for where in ("meta", "cpu"):
            judge._expected[(definition.name, workload.uuid)] = {(0, False): ({}, (torch.empty(4, device=where),))}
            for setting in ("0", "1"):
                monkeypatch.setenv("KERNELARENA_EXCLUSIVE_COMPARISONS", setting)
                with judge._comparing(definition, workload):
                    held[(where, setting)] = (_lock_is_shared_by_someone(path), _lock_is_exclusive(path))
    finally:
        quiet.use(None)
    assert held == {("meta", "0"): (True, False), ("meta", "1"): (True, True),
                    ("cpu", "0"): (False, False), ("cpu", "1"): (False, False)}


def test_outputs_reach_the_host_under_the_lock_and_their_host_pages_are_touched_before_it(tmp_path, monkeypatch):
    """A solution's process copies its outputs to the host (correctness rounds, checked timed calls) holding the
    device lock shared, as every device step outside a timed loop; the host pages of those copies are faulted in
    before, without the lock: the faults are host work, and under the lock they kept the other lane's timed loop
    waiting while the device idled."""
    from kernelarena.bench import RunConfig, evaluate
    from kernelarena.bench.evaluate import SolutionEvaluator
    from kernelarena.build import build_solution
    from tests.bench.cheats import make_dataset

    ds = make_dataset(tmp_path / "ds", rows=4)
    definition, (workload,) = ds.definitions["scale_add"], ds.workloads_for("scale_add")
    path = quiet.make(str(tmp_path), "cuda:0")
    seen = []
    for name in ("_host_pages", "_host_copies"):
        original = getattr(evaluate, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            seen.append((_name, _lock_is_shared_by_someone(path)))
            return _original(*args, **kwargs)

        monkeypatch.setattr(evaluate, name, spy)
    quiet.use(path)
    try:
        evaluator = SolutionEvaluator("cpu", RunConfig(), ds.root)
        runnable = build_solution(ds.solutions["honest"], device="cpu")
        rounds = evaluator.correctness_rounds(definition, workload, runnable)["rounds"]
        checked = evaluator.timing(definition, workload, runnable)["checked"]
    finally:
        quiet.use(None)
    assert len(rounds) == RunConfig().correctness_rounds and checked
    assert all(isinstance(t, torch.Tensor) and t.device.type == "cpu" for entry in rounds + checked
               for t in entry["outputs"])
    assert {name for name, _ in seen} == {"_host_pages", "_host_copies"}
    assert [name for name, held in seen if held != (name == "_host_copies")] == []


def test_host_pages_are_empty_host_tensors_of_the_outputs_shapes_that_the_copies_fill(monkeypatch):
    """(A "meta" tensor stands for a device output: only its shape, dtype and device matter here.)"""
    from kernelarena.bench.evaluate import _host_copies, _host_pages

    out = torch.arange(12, dtype=torch.float32).reshape(3, 4).to(torch.bfloat16)
    pages = _host_pages([out.to("meta"), 7, out])
    assert pages[1] is None and pages[2] is None  # not a tensor; already on the host
    assert pages[0].device.type == "cpu" and pages[0].shape == out.shape and pages[0].dtype == out.dtype
    copies = _host_copies([out, 7, out], pages)
    assert copies[0] is pages[0] and torch.equal(copies[0], out) and copies[1] == 7
    assert torch.equal(copies[2], out) and copies[2].data_ptr() != out.data_ptr()
    monkeypatch.setenv("KERNELARENA_HOST_PAGES_FIRST", "0")
    assert _host_pages([out.to("meta")]) == [None]
