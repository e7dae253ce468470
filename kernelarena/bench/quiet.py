"""A device-wide lock between the harness's processes on one GPU, so that a worker starting in the pool does not
put its work between a solution's timed calls.

Processes on one GPU without MPS share it by time slices: a spare worker creating its CUDA context or running
the harness warm-up (bench/evaluate.warm_up) while another process times a solution can stretch that solution's
calls. Timed loops hold the lock exclusively; start-ups hold it shared (they may overlap one another). The lock
is advisory and bounded: a process that waited ``timeout_s`` goes on without it and says so, so a solution that
takes the lock and keeps it delays its neighbours by at most that much and cannot stall the run or get anyone
else blamed (a failure is never another party's).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Iterator, Optional

_PATH: Optional[str] = None
_DEPTH = 0
WAIT_S = 5.0
"""How long a process waits for the lock before it goes on without it."""


def use(path: Optional[str]) -> None:
    """The lock file of this process's device (made by the parent, bench/worker.py); None: no lock."""
    global _PATH
    _PATH = path or None


def make(folder: str, device: str) -> str:
    """A new lock file for ``device`` in ``folder`` (the parent makes it before starting the device's workers)."""
    path = os.path.join(folder, f"kernelarena-{os.getpid()}-{device.replace(':', '')}.lock")
    with open(path, "a"):
        pass
    return path


@contextlib.contextmanager
def held(exclusive: bool, timeout_s: float = WAIT_S) -> Iterator[Optional[float]]:
    """Hold the device lock (exclusive for a timed loop, shared for a start-up) while the block runs. Yields the
    seconds waited for it, or None when there is no lock or it was not had within ``timeout_s`` (the block
    runs anyway). Inside a block of this process that holds it already, the hold is the outer one's (the
    warm-up's timed loop runs under its start-up's shared hold)."""
    global _DEPTH
    if _PATH is None or _DEPTH:
        _DEPTH += 1
        try:
            yield None if _PATH is None else 0.0
        finally:
            _DEPTH -= 1
        return
    try:
        fd = os.open(_PATH, os.O_RDONLY)  # read-only: flock needs no write access (the sandbox allows reads)
    except OSError:
        yield None
        return
    try:
        started = time.perf_counter()
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        waited: Optional[float] = None
        while True:
            try:
                fcntl.flock(fd, mode)
                waited = time.perf_counter() - started
                break
            except BlockingIOError:
                if time.perf_counter() - started >= timeout_s:
                    break
                time.sleep(0.002)
        _DEPTH += 1
        try:
            yield waited
        finally:
            _DEPTH -= 1
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
