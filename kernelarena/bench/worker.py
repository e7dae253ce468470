"""Isolation: each device gets a persistent worker process that evaluates solutions; the parent survives
its crashes and hangs, records them as traces, and starts a new worker."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..schema import Definition, Solution, Status, Trace, Workload
from .config import RunConfig

_FATAL_EXIT = 3


@dataclass
class WorkerResult:
    trace: Trace
    phases: Dict[str, float]


def _worker_main(conn, device: str, config: RunConfig, root: Optional[str], log_path: str) -> None:
    """Worker loop: receive (definition, solution, workloads), send one trace per workload."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the run and this worker
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    if device.startswith("cuda"):
        import torch

        torch.cuda.set_device(torch.device(device))
    else:
        # Triton decides interpreter mode when its functions are created, its own standard library included:
        # set it before anything imports triton in this process.
        os.environ.setdefault("TRITON_INTERPRET", "1")
    from .evaluate import Evaluator

    evaluator = Evaluator(device, config, Path(root) if root else None)
    conn.send("ready")
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        definition_json, solution_json, workload_jsons = message
        definition = Definition.model_validate_json(definition_json)
        solution = Solution.model_validate_json(solution_json)
        for workload_json in workload_jsons:
            workload = Workload.model_validate_json(workload_json)
            print(f"== {solution.name} on {workload.uuid}", flush=True)
            trace, fatal = evaluator.evaluate(definition, solution, workload)
            conn.send((trace.to_json(), evaluator.phases, fatal))
            if fatal:  # a CUDA error leaves the context unusable: start afresh
                os._exit(_FATAL_EXIT)


class Worker:
    """A worker process bound to one device. ``evaluate`` never raises for a solution's misbehaviour."""

    def __init__(self, device: str, config: RunConfig, root: Optional[Path]):
        self.device, self.config, self.root = device, config, root
        self.log_path = Path(tempfile.mkstemp(prefix=f"kernelarena-worker-{device.replace(':', '')}-",
                                              suffix=".log")[1])
        self.process = None
        self.conn = None
        self.startup_s = 0.0
        self.restarts = 0

    def start(self) -> None:
        started = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, daemon=True, name=f"kernelarena-{self.device}",
                                       args=(child, self.device, self.config,
                                             str(self.root) if self.root else None, str(self.log_path)))
        self.process.start()
        child.close()
        # Wait until the worker has imported torch and set up its device, so start-up is counted as such.
        if self.conn.poll(self.config.timeout_s):
            try:
                self.conn.recv()
            except (EOFError, OSError):
                pass  # it died at start: the first evaluation reports it with the worker's log
        self.startup_s += time.perf_counter() - started

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
        self.process = None

    def _restart(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.process = None
        self.restarts += 1
        self.start()

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read()[-20000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def evaluate(self, definition: Definition, solution: Solution, workloads: List[Workload],
                 on_result: Callable[[WorkerResult], None]) -> None:
        """Evaluate ``solution`` on each workload, calling ``on_result`` as each trace is ready. A workload that
        outlasts ``timeout_s`` becomes TIMEOUT, a dead worker RUNTIME_ERROR with its output; either way the
        worker is restarted and the remaining workloads go on."""
        from .evaluate import failure_trace

        pending = list(workloads)
        while pending:
            if self.process is None:
                self.start()
            elif not self.process.is_alive():
                self._restart()
            offset = self.log_path.stat().st_size
            try:
                self.conn.send((definition.to_json(), solution.to_json(), [w.to_json() for w in pending]))
            except OSError:  # the worker died before taking the task (at start-up, say)
                self.process.join(5)
                log = (f"worker process for {self.device} is not running (exit code {self.process.exitcode}).\n"
                       + self._log_since(0))
                on_result(WorkerResult(failure_trace(definition.name, pending.pop(0), solution.name,
                                                     Status.RUNTIME_ERROR, log, "cpu"), {}))
                self._restart()
                continue
            while pending:
                started = time.perf_counter()
                if not self.conn.poll(self.config.timeout_s):
                    log = (f"timed out after {self.config.timeout_s:.0f} s (build included); worker killed.\n"
                           + self._log_since(offset))
                    on_result(WorkerResult(failure_trace(definition.name, pending.pop(0), solution.name,
                                                         Status.TIMEOUT, log, self.device),
                                           {"timeout": time.perf_counter() - started}))
                    self._restart()
                    break
                try:
                    trace_json, phases, fatal = self.conn.recv()
                except (EOFError, ConnectionError, OSError):
                    self.process.join(5)
                    code = self.process.exitcode
                    log = f"worker process died (exit code {code}) while evaluating.\n" + self._log_since(offset)
                    on_result(WorkerResult(failure_trace(definition.name, pending.pop(0), solution.name,
                                                         Status.RUNTIME_ERROR, log, self.device),
                                           {"crash": time.perf_counter() - started}))
                    self._restart()
                    break
                on_result(WorkerResult(Trace.model_validate_json(trace_json), phases))
                pending.pop(0)
                offset = self.log_path.stat().st_size
                if fatal:
                    self.process.join(10)
                    self._restart()
                    break
