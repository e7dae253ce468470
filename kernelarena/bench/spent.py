"""Where a worker process's time went, by step, for the run's closing line (``time spent: ...``).

Each process of a run (the reference process, a solution's process) adds the seconds of its steps here; what it
sends with an answer is what accumulated since its last answer (``take``). Figures are per thread. The parent
only shows these figures (a solution's process may report anything: they decide nothing).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import defaultdict
from typing import Any, Dict, Iterator, List


class _Thread(threading.local):
    """Each thread's own figures (the parent's lanes are threads)."""

    def __init__(self):
        self.spent: Dict[str, float] = defaultdict(float)
        self.nested: List[float] = []
        """Per ``timed`` block open now, innermost last: the seconds its nested steps took (theirs, not its)."""


_THREAD = _Thread()


def add(step: str, seconds: float) -> None:
    """Add ``seconds`` to ``step`` (and take them from the ``timed`` block around, whose they are not)."""
    _THREAD.spent[step] += seconds
    if _THREAD.nested:
        _THREAD.nested[-1] += seconds


@contextlib.contextmanager
def timed(step: str) -> Iterator[None]:
    """Add the block's wall seconds to ``step``, less those of steps inside it (``timed`` blocks, ``add``)."""
    started = time.perf_counter()
    nested = _THREAD.nested
    nested.append(0.0)
    try:
        yield
    finally:
        inner = nested.pop()
        add(step, time.perf_counter() - started - inner)
        if nested:  # the whole block, nested steps included, is the enclosing block's nested time
            nested[-1] += inner


def take() -> Dict[str, float]:
    """This thread's seconds per step since its last ``take``; it starts again from zero."""
    steps = dict(_THREAD.spent)
    _THREAD.spent.clear()
    return steps


def reported(value: Any, limit: float) -> Dict[str, float]:
    """A ``take`` result received from another process, kept only where it reads as one: at most 16 short step
    names with finite seconds from 0 up, summing to at most ``limit`` (the parent's own measure of the span they
    fall in); else nothing."""
    if not isinstance(value, dict) or len(value) > 16:
        return {}
    steps = {name: float(seconds) for name, seconds in value.items()
             if isinstance(name, str) and len(name) <= 40 and isinstance(seconds, (int, float))
             and not isinstance(seconds, bool) and math.isfinite(seconds) and seconds >= 0}
    return steps if len(steps) == len(value) and sum(steps.values()) <= limit * 1.01 + 1e-3 else {}
