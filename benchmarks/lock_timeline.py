"""Where a GPU run's device lock (kernelarena/bench/quiet.py) spent its time: held by a timed loop alone, held
shared (correctness rounds, reference outputs, comparisons, warm-ups, start-ups), or free, sampled from the
kernel's table of file locks (/proc/locks) by a thread of the benchmark, outside the run: nothing in the run
changes or reports anything for it.

Free time is the device doing nothing for the run (every device use of the harness takes the lock): what a
faster run must fill. Used by benchmarks/isolation_walltime.py (``--lock-timeline``).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

STATES = ("no lock file", "free", "shared", "exclusive")


def lock_key(path: Path) -> str:
    """How /proc/locks names the file at ``path``: major:minor of its device in hex, then its inode."""
    st = os.stat(path)
    return f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"


def holders(table: str, key: str) -> Tuple[int, int]:
    """(exclusive holders, shared holders) of the flock on the file ``key`` names, from the text of /proc/locks.
    Lines of waiters ("->") are not holds."""
    exclusive = shared = 0
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[5] != key:  # a waiter's line has "->" there
            continue
        if fields[3] == "WRITE":
            exclusive += 1
        elif fields[3] == "READ":
            shared += 1
    return exclusive, shared


class LockTimeline:
    """A thread that samples the lock file ``path`` every ``interval_s`` until ``stop()``, and adds the time between
    samples to the state seen: "no lock file" (before the run made it, after it removed it), "free", "shared",
    "exclusive"."""

    def __init__(self, path: Path, interval_s: float = 0.002):
        self.path, self.interval_s = Path(path), interval_s
        self.seconds: Dict[str, float] = dict.fromkeys(STATES, 0.0)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="lock-timeline", daemon=True)

    def start(self) -> "LockTimeline":
        self._thread.start()
        return self

    def stop(self) -> Dict[str, float]:
        self._stopping.set()
        self._thread.join()
        return dict(self.seconds)

    def state(self, key: Optional[str]) -> str:
        if key is None:
            return "no lock file"
        try:
            with open("/proc/locks") as f:
                exclusive, shared = holders(f.read(), key)
        except OSError:
            return "no lock file"
        return "exclusive" if exclusive else "shared" if shared else "free"

    def _sample(self) -> None:
        key, last = None, time.perf_counter()
        while not self._stopping.is_set():
            if key is None or not self.path.exists():
                try:
                    key = lock_key(self.path)
                except OSError:
                    key = None
            seen = self.state(key)
            now = time.perf_counter()
            self.seconds[seen] += now - last
            last = now
            time.sleep(self.interval_s)


def summary(seconds: Dict[str, float]) -> str:
    """"device lock: exclusive X s, shared only Y s, free Z s, no lock file W s (of T s sampled)"."""
    total = sum(seconds.values())
    parts = ", ".join(f"{state if state != 'shared' else 'shared only'} {seconds.get(state, 0.0):.1f} s"
                      for state in reversed(STATES))
    return f"device lock: {parts} (of {total:.1f} s sampled)"
