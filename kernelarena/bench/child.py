"""What a worker process runs (bench/worker.py starts it): ``run_child(ROLE, ...)``.

ROLE "solution" evaluates one solution (bench/evaluate.py) under the sandbox (bench/sandbox.py); ROLE
"reference" judges (bench/oracle.py) and never imports a solution. The parent's messages are trusted
(pickles); ours to it are JSON text, and payload files it copies unread, so that a solution that takes over
its process cannot make the parent run code.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Optional

from .. import env
from . import spent


def send(conn: Connection, message: dict) -> None:
    conn.send_bytes(json.dumps(message).encode())


def run_child(role: str, device: str, conn: Connection, root: str, scratch: str, log_path: str, config,
              environ: dict, warm: tuple = (), lock: str = "") -> None:
    """Set the process up (environment, log, working folder, sandbox, device) and serve the parent's requests."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the run and this worker
    # The template process kept the environment of its start; the parent's is the one that applies now.
    current = env.environment()
    current.clear()
    current.update(environ)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    # Start in the empty scratch folder with nothing importable from a working folder: a torch.py planted
    # anywhere is never found, and temporary files land in the scratch folder.
    os.chdir(scratch)
    os.environ["TMPDIR"] = scratch
    import tempfile

    tempfile.tempdir = None
    sys.path[:] = [p for p in sys.path if p not in ("", ".", scratch)]
    root = Path(root) if root else None
    protections = {}
    if role == "solution":
        from .sandbox import block_internet

        protections["seccomp"] = block_internet()  # before any thread starts, so that every thread inherits it
    if not device.startswith("cuda"):
        # Triton decides interpreter mode when its functions are created: set it before anything imports triton.
        os.environ.setdefault("TRITON_INTERPRET", "1")
    from . import quiet

    quiet.use(lock)
    if role == "reference":
        if device.startswith("cuda"):
            import torch

            # Its host work on a GPU is small (comparisons of outputs up to HOST_COMPARE_BYTES, messages). With
            # torch's default of a thread per core in each judging process, their pools crowded the CPU: in an
            # H200 run of the example dataset's RMSNorm and attention definitions the comparisons took 55.5 s,
            # about 1.6 ms per torch op, and 3.4 s with one thread (the run 119.1 s and 103.1 s; docs/evaluation.md).
            torch.set_num_threads(1)
        # Its first start measures the device's ceilings: alone on the device, as a timed loop is.
        with quiet.held(exclusive=device.startswith("cuda")):
            _open_context(device)
            from .oracle import Oracle

            oracle = Oracle(device, config, root)
        send(conn, {"ready": True, "environment": oracle.environment.to_json_dict()})
        serve_reference(conn, oracle)
        return
    evaluator, startup = _start_solution_worker(device, root, config, warm, protections)
    warmed = [module for module in warm if module in sys.modules]  # what the pool's choice of worker relied on
    send(conn, {"ready": True, "sandbox": protections, "startup": startup, "warmed": warmed})
    serve_solution(conn, evaluator)


def _open_context(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.set_device(torch.device(device))
        torch.empty(1, device=device)  # the CUDA context, made while the worker waits in the pool


def _start_solution_worker(device: str, root, config, warm: tuple, protections: dict):
    """Everything a solution worker does before it is taken from the pool, each step timed (the run's summary
    shows where starts go): the CUDA context, warm imports, the harness warm-up, then the sandbox. On a GPU the
    context and the warm-up (the steps that use the device) hold the device lock shared, so they never fall
    inside another process's timed loop (bench/quiet.py). Returns the evaluator and the seconds per step."""
    import time

    from . import quiet
    from .evaluate import SolutionEvaluator, warm_up
    from .sandbox import restrict_writes, writable_dirs

    startup: dict = {}
    started = mark = time.perf_counter()

    def step(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        startup[name], mark = now - mark, now

    gpu = device.startswith("cuda")
    if gpu:
        with quiet.held(exclusive=False):
            _open_context(device)
        step("context")
    evaluator = SolutionEvaluator(device, config, root)
    for module in warm:  # imports the solutions need, done while this worker waits in the pool
        try:
            importlib.import_module(module)
        except Exception as e:  # the solution that needs it will report the failure itself
            print(f"warm import of {module} failed: {type(e).__name__}: {e}", flush=True)
    step("imports")
    try:  # the harness's first-evaluation costs, paid here instead of in the first solution's phases
        with quiet.held(exclusive=False) if gpu else contextlib.nullcontext():
            warm_up(device, config)
    except Exception:  # the worker still serves: a real evaluation reports whatever is wrong, as its own
        print("harness warm-up failed:\n" + traceback.format_exc(), flush=True)
    step("warm_up")
    protections["landlock"] = restrict_writes(writable_dirs(Path.cwd())) if config.sandbox else \
        "unavailable: turned off for this run"
    protections["process"] = "fresh"
    step("sandbox")
    startup["total"] = time.perf_counter() - started
    return evaluator, startup


def requests(conn: Connection):
    """The parent's requests, until it closes the pipe or sends None."""
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        yield request


def serve_reference(conn: Connection, oracle) -> None:
    """Answer the parent's requests; each answer carries where this process's time went since the last one
    (bench/spent.py), its start excluded."""
    from ..schema import Definition, Environment, TimingStats, Workload
    from .oracle import DefinitionFailure

    def reply(answer: dict) -> None:
        send(conn, {**answer, "spent": spent.take()})

    spent.take()
    profile = _Profile.start()
    for request in requests(conn):
        profile.enable()
        with spent.timed("request parse"):
            kind, definition = request[0], Definition.model_validate_json(request[1])
        failed = True
        try:
            if kind == "prepare":  # ("prepare", definition, workload[, time the reference here])
                oracle.prepare(definition, Workload.model_validate_json(request[2]),
                               time_reference=request[3] if len(request) > 3 else True)
                reply({"ok": True})
            elif kind == "time":  # ("time", definition, workload): a reference timer's one request
                stats = oracle.reference_timing(definition, Workload.model_validate_json(request[2]))
                reply({"timing": stats.to_json()})
            elif kind == "check":
                failure = oracle.check_rounds(definition, Workload.model_validate_json(request[2]), request[3],
                                              request[4])
                if failure is None:
                    reply({"ok": True})
                else:
                    status, log, comparison = failure
                    reply({"failure": {"status": status.value, "log": log,
                                       "max_absolute_error": comparison.max_absolute_error,
                                       "max_relative_error": comparison.max_relative_error}})
            elif kind == "verdict":  # (..., environment[, the reference timer's timing of the reference])
                _, _, solution, workload, data, environment, *timed = request
                reference = TimingStats.model_validate_json(timed[0]) if timed and timed[0] else None
                trace = oracle.verdict(definition, solution, Workload.model_validate_json(workload), data,
                                       Environment.model_validate_json(environment), reference)
                reply({"trace": trace.to_json()})
            failed = False
        except DefinitionFailure as e:
            reply({"definition_error": str(e)})
        except Exception:  # a payload that breaks the comparison: the solution's results, not the definition
            reply({"malformed": traceback.format_exc()[-4000:]})
        # A timing's inputs are not needed again (the next workload's differ): what it cached goes back at once.
        release_cache(oracle.device, failed or kind == "time")
        profile.disable()
    profile.save()


class _Profile:
    """cProfile of a reference process's requests with KERNELARENA_PROFILE_DIR set (else each method does nothing):
    written to ``reference-<pid>.prof`` there every SAVE_EVERY requests and when the parent closes the pipe, so a
    process stopped by a signal keeps most of it. A diagnostic of where a run's time goes, not a measurement."""

    SAVE_EVERY = 25

    def __init__(self, profiler=None, path: Optional[Path] = None):
        self.profiler, self.path, self.requests = profiler, path, 0

    @classmethod
    def start(cls) -> "_Profile":
        folder = env.profile_dir()
        if folder is None:
            return cls()
        import cProfile

        folder.mkdir(parents=True, exist_ok=True)
        return cls(cProfile.Profile(), folder / f"reference-{os.getpid()}.prof")

    def enable(self) -> None:
        if self.profiler is not None:
            self.profiler.enable()

    def disable(self) -> None:
        if self.profiler is not None:
            self.profiler.disable()
            self.requests += 1
            if self.requests % self.SAVE_EVERY == 0:
                self.save()

    def save(self) -> None:
        if self.profiler is not None:
            self.profiler.dump_stats(str(self.path))


def release_cache(device: str, failed: bool) -> bool:
    """Give the device memory this process holds unused back to the driver, for the solutions' processes:
    with ``failed`` (after a failure: an out-of-memory reference leaves nothing behind for the next one; after a
    reference timing), or when more than
    RELEASE_ABOVE_BYTES is cached unused. Not after every request: the next one would allocate it all again
    (the comparisons' float64 copies of a large prefill output are gigabytes). Whether it released."""
    if not device.startswith("cuda"):
        return False
    import torch

    unused = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if not failed and unused <= RELEASE_ABOVE_BYTES:
        return False
    with spent.timed("cache release"):
        torch.cuda.empty_cache()
    return True


RELEASE_ABOVE_BYTES = 4 << 30


def hand_over(conn: Connection, kind: str, payload: dict) -> None:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts: what the evaluator hands over) to a file in this
    worker's scratch folder, its working folder, and tell the parent its name: the parent copies it for the
    reference process (bench/worker.py). Through the pipes, the parent relaying, a run of the example dataset's
    RMSNorm and attention definitions spent 27 s of 149 s sending payloads on the H200 (2026-12-03)."""
    from .evaluate import save_payload

    name = f"payload-{kind}.pt"
    with spent.timed("payload write"):
        save_payload(payload, name)  # straight to the file in this folder: no copy in memory first
    send(conn, {"payload": kind, "file": name, "spent": spent.take()})


def serve_solution(conn: Connection, evaluator) -> None:
    from ..schema import Definition, Solution, Workload
    from .evaluate import SolutionFailure

    runnable, build_error, compiled = None, None, False
    for request in requests(conn):
        _, definition_json, solution_json, workload_json = request
        definition = Definition.model_validate_json(definition_json)
        solution = Solution.model_validate_json(solution_json)
        workload = Workload.model_validate_json(workload_json)
        print(f"== {solution.name} on {workload.uuid}", flush=True)
        try:
            send(conn, {"phase": "build"})
            if runnable is None and build_error is None:
                try:
                    runnable = evaluator.build(solution)
                    compiled = not runnable.from_cache
                except SolutionFailure as f:
                    build_error = f
            if build_error is not None:
                raise build_error
            # A build compiled here counts once: the solution's later workloads in this process reuse it.
            send(conn, {"phase": "correctness", "compiled": compiled})
            compiled = False
            spent.take()  # the build's, and what came before: the parent times those phases itself
            rounds = evaluator.correctness_rounds(definition, workload, runnable)
            hand_over(conn, "rounds", rounds)
            if conn.recv() != "time":
                continue
            send(conn, {"phase": "timing"})
            timing = evaluator.timing(definition, workload, runnable)
            hand_over(conn, "timing", timing)
        except SolutionFailure as f:
            send(conn, {"failure": {"status": f.status.value, "log": f.log, "fatal": f.fatal}})
            if f.fatal:  # a CUDA error leaves the context unusable
                os._exit(3)

