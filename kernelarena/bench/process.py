"""A worker process and our end of its pipe: forked from a template process that imported torch and the harness
once (never a solution, never CUDA), started in an empty scratch folder, answering in JSON or payload bytes."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional, Tuple

from .. import env
from .config import RunConfig

MAX_MESSAGE = 1 << 34  # a payload larger than 16 GiB is a protocol violation, not something to read


class ChildDied(Exception):
    """The worker process ended (or closed its end) while we waited for it."""


class ChildTimeout(Exception):
    """The worker process did not answer in time."""


class ProtocolError(Exception):
    """The worker process sent something that is not a message of the protocol."""


class ChildProcess:
    """A worker process (bench/child.py), forked from a template process that has imported torch and the
    harness but never any solution, and our end of its pipe."""

    def __init__(self, role: str, device: str, config: RunConfig, root: Optional[Path], warm: Tuple[str, ...] = (),
                 lock: str = ""):
        self.role, self.device = role, device
        self.scratch = Path(tempfile.mkdtemp(prefix=f"kernelarena-{role}-"))
        fd, log = tempfile.mkstemp(prefix=f"kernelarena-{role}-{device.replace(':', '')}-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log)
        context = _template_context()
        self.conn, theirs = context.Pipe()
        from .child import run_child

        self.process = context.Process(target=run_child, daemon=True, name=f"kernelarena-{role}-{device}",
                                       args=(role, device, theirs, str(root) if root else "", str(self.scratch),
                                             str(self.log_path), config, dict(env.environment()), warm, lock))
        with _CLEAN_PATH:
            # The child takes our sys.path: without the implicit working-folder entry, nothing planted there is
            # imported; relative entries the user set (PYTHONPATH=.) are kept, resolved against our folder.
            saved = sys.path[:]
            sys.path[:] = [os.path.abspath(p) for p in saved if p != ""]
            try:
                self.process.start()
            finally:
                sys.path[:] = saved
        theirs.close()
        self.ready: Optional[dict] = None
        self.started = time.perf_counter()

    def alive(self) -> bool:
        return self.process.is_alive()

    def exit_code(self) -> Optional[int]:
        self.process.join(0)
        return self.process.exitcode

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10)

    def send(self, message: Any) -> None:
        try:
            self.conn.send(message)
        except OSError as e:
            raise ChildDied(str(e)) from e

    def receive(self, timeout: float) -> dict:
        """The next JSON message; ChildTimeout, ChildDied or ProtocolError otherwise."""
        data = self.receive_bytes(timeout)
        try:
            message = json.loads(data.decode())
        except (UnicodeDecodeError, ValueError) as e:
            raise ProtocolError(f"the {self.role} process sent a message outside the protocol ({len(data)} bytes "
                                "that are not JSON)") from e
        if not isinstance(message, dict):
            raise ProtocolError(f"the {self.role} process sent a message outside the protocol: {message!r:.200}")
        return message

    def receive_bytes(self, timeout: float) -> bytes:
        try:
            if not self.conn.poll(max(timeout, 0.0)):
                raise ChildTimeout()
            return self.conn.recv_bytes(MAX_MESSAGE)
        except (EOFError, ConnectionError, OSError) as e:
            raise ChildDied(str(e)) from e

    def wait_ready(self, timeout: float) -> dict:
        if self.ready is None:
            message = self.receive(timeout)
            if not message.get("ready"):
                raise ProtocolError(f"the {self.role} process did not start as expected: {message!r:.200}")
            self.ready = message
        return self.ready

    def log_tail(self, offset: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read()[-20000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def stop(self, graceful: bool = True) -> None:
        if self.alive() and graceful and self.role == "reference":
            try:
                self.conn.send(None)
                self.process.join(2)
            except OSError:
                pass
        self.kill()
        self.conn.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
        try:
            self.log_path.unlink()
        except OSError:
            pass


_CLEAN_PATH = threading.Lock()
_PRELOAD = ["torch", "kernelarena", "kernelarena.bench.evaluate", "kernelarena.bench.oracle",
            "kernelarena.bench.child", "kernelarena.bench.sandbox"]


def _template_context():
    """The multiprocessing context whose processes fork from one template process that imported _PRELOAD
    (torch, the harness) once: a worker costs a fork instead of a torch import, and starts with no solution's
    state. The template never initializes CUDA; each worker does so itself."""
    context = multiprocessing.get_context("forkserver")
    with _CLEAN_PATH:
        context.set_forkserver_preload(_PRELOAD)
        # The template is a new interpreter started in our working folder: it must not find modules there
        # (PYTHONSAFEPATH), and it must import what we import (our sys.path, which resolved any relative
        # PYTHONPATH entry when we started).
        environ = env.environment()  # Python's own variables, set for the template's start and put back
        saved = {k: environ.get(k) for k in ("PYTHONPATH", "PYTHONSAFEPATH")}
        environ["PYTHONSAFEPATH"] = "1"
        environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isabs(p))
        try:
            from multiprocessing import forkserver

            forkserver.ensure_running()
        finally:
            for key, value in saved.items():
                if value is None:
                    environ.pop(key, None)
                else:
                    environ[key] = value
    return context
