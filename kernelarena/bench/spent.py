"""Where a worker process's time went, by step, for the run's closing line (``time spent: ...``).

Each process of a run (the reference process, a solution's process) adds the seconds of its steps here; what it
sends with an answer is what accumulated since its last answer (``take``). The parent only shows these figures
(a solution's process may report anything: they decide nothing).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import defaultdict
from typing import Any, Dict, Iterator, List

_SPENT: Dict[str, float] = defaultdict(float)
_NESTED: List[float] = []
"""Per ``timed`` block open now, innermost last: the seconds its nested steps took (they are theirs, not its)."""


def add(step: str, seconds: float) -> None:
    """Add ``seconds`` to ``step`` (and take them from the ``timed`` block around, whose they are not)."""
    _SPENT[step] += seconds
    if _NESTED:
        _NESTED[-1] += seconds


@contextlib.contextmanager
def timed(step: str) -> Iterator[None]:
    """Add the block's wall seconds to ``step``, less those of steps inside it (``timed`` blocks, ``add``)."""
    started = time.perf_counter()
    _NESTED.append(0.0)
    try:
        yield
    finally:
        inner = _NESTED.pop()
        add(step, time.perf_counter() - started - inner)
        if _NESTED:  # the whole block, nested steps included, is the enclosing block's nested time
            _NESTED[-1] += inner


def take() -> Dict[str, float]:
    """The seconds per step since the last ``take``, and start again from zero."""
    steps = dict(_SPENT)
    _SPENT.clear()
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
