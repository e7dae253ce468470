"""A device-wide lock between the harness's processes on one GPU, so that a worker starting in the pool does not
put its work between a solution's timed calls.

Processes on one GPU without MPS share it by time slices: a spare worker creating its CUDA context or running
the harness warm-up (bench/evaluate.warm_up) while another process times a solution can stretch that solution's
calls. Timed loops hold the lock exclusively; start-ups hold it shared (they may overlap one another). The lock
is advisory and bounded: a process that waited its timeout goes on without it, so a solution that takes the
lock and keeps it delays its neighbours by at most that much and cannot stall the run or get anyone else
blamed (a failure is never another party's). ``KERNELARENA_DEVICE_LOCK=0`` turns it off (for comparing).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from typing import Iterator, Optional

from . import spent

_PATH: Optional[str] = None
_DEPTH = 0
WAIT_S = 30.0
"""How long a timed loop waits for the device before it goes on without the lock (and its trace says so). Longer
than any timed loop of the harness holds it (bench/timing.TIMED_LOOP_S, 1.5 s by default, rests included, more for a
call slower than TIMED_LOOP_S / FEWEST_REPS): at 2 s, a lane waiting behind the other lane's 2.5 s loop of a
PyTorch prefill reference timed its own loop alongside it."""
START_WAIT_S = 30.0
"""How long a worker's start-up waits (in the pool, while others work) before it goes on without the lock."""


def use(path: Optional[str]) -> None:
    """The lock file of this process's device (made by the parent, bench/worker.py); None: no lock."""
    global _PATH
    _PATH = path or None


def make(folder: str, device: str) -> str:
    """A new lock file for ``device`` in ``folder`` (the parent makes it before starting the device's workers)."""
    path = os.path.join(folder, f"kernelarena-{os.getpid()}-{device.replace(':', '')}.lock")
    for name in (path, path + ".gate"):
        with open(name, "a"):
            pass
    return path


def _take(fd: int, mode: int, deadline: float) -> bool:
    """flock ``fd`` in ``mode`` by ``deadline`` (perf_counter seconds); whether it was had."""
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.perf_counter() >= deadline:
                return False
            time.sleep(0.002)


def _finish_device_work() -> None:
    """Wait for the GPU work queued inside the hold: kernels are asynchronous, so work a block launched would
    otherwise run on after the lock is let go, inside the next holder's timed loop."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        try:
            torch.cuda.synchronize()
        except Exception:  # noqa: BLE001 - a CUDA error here belongs to the block's own work, which reports it
            pass  # (raised from this finally, it would replace the block's exception and could blame another party)


def alone(waited: Optional[float]) -> Optional[bool]:
    """What a hold that yielded ``waited`` says of the block: True when it had the device lock, False when it
    went on without it, None when this process has no lock to take (the CPU, the lock off)."""
    return None if _PATH is None else waited is not None


def remove(path: str) -> None:
    """Delete the lock files ``make`` made."""
    for name in (path, path + ".gate"):
        with contextlib.suppress(OSError):
            os.unlink(name)


@contextlib.contextmanager
def held(exclusive: bool, timeout_s: Optional[float] = None) -> Iterator[Optional[float]]:
    """Hold the device lock (exclusive for a timed loop, shared for a start-up) while the block runs. Yields the
    seconds waited for it, or None when there is no lock or it was not had within ``timeout_s`` (default: WAIT_S
    for a timed loop, START_WAIT_S for a start-up; the block runs anyway). Inside a block of this process that
    holds it already, the hold is the outer one's (the warm-up's timed loop runs under its start-up's hold).

    A timed loop goes first: every taker passes a gate (a second lock file) that a timed loop keeps from the
    moment it asks until it holds the device, so start-ups arriving meanwhile wait behind it instead of
    keeping the shared lock taken one after another (flock favours neither side, so a stream of starting
    workers could hold a timed loop off until its timeout)."""
    global _DEPTH
    if _PATH is None or _DEPTH:
        _DEPTH += 1
        try:
            yield None if _PATH is None else 0.0
        finally:
            _DEPTH -= 1
        return
    started = time.perf_counter()
    deadline = started + (timeout_s if timeout_s is not None else WAIT_S if exclusive else START_WAIT_S)
    fds = []
    try:
        try:  # read-only: flock needs no write access (the sandbox allows reads)
            fds = [os.open(_PATH + ".gate", os.O_RDONLY), os.open(_PATH, os.O_RDONLY)]
        except OSError:
            yield None
            return
        gate, device = fds
        had = _take(gate, fcntl.LOCK_EX, deadline) and \
            _take(device, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, deadline)
        # Apart by kind: a timed loop's wait for the device alone, and a shared hold's wait behind another lane's
        # timed loop (where the isolated run's waits go decides what would shorten it).
        spent.add("device lock wait" if exclusive else "device lock wait (shared)", time.perf_counter() - started)
        os.close(fds.pop(0))  # the gate, held only while asking
        _DEPTH += 1
        try:
            yield time.perf_counter() - started if had else None
        finally:
            _DEPTH -= 1
            if had:
                _finish_device_work()
    finally:
        for fd in fds:
            os.close(fd)  # closing the last descriptor releases the lock
