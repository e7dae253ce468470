"""Device time per call from CUPTI, through the PyTorch profiler: what the GPU spent on each timed call's kernels,
copies and sets, without the CUDA events' own cost and without the gaps in which the GPU waited for a slow
host (for small RMSNorm kernels on the H200, events read 4.5-6.0 us where CUPTI read 1.9-2.8 us:
benchmarks/results/reproducibility_nvidia_h200.md).

Attribution: each timed call runs inside an annotation of its own (``call_window(r)``), the harness's work
(L2 flush, sleep, poisoning, copies of checked outputs) inside harness annotations. A device activity belongs
to the call whose annotation contains the host-side launch (runtime or driver call) with the same CUPTI
correlation id; the call's device time is the union of its activities' intervals, which is their sum when
they run one after another, as on one stream. Annotation names carry a random token per timing, so a solution
cannot reuse them by accident.

The profiler's entry points and its events' accessors are bound at import, before a worker imports any
solution (bench/child.py imports the evaluator first): a solution that replaces ``torch.profiler`` or a
method of the profiler's event class at import does not change what is read here.
"""

from __future__ import annotations

import bisect
import dataclasses
import gc
import os
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch._C import _autograd as _autograd_c
from torch._C import _profiler as _profiler_c

_KINETO_EVENT = _autograd_c._KinetoEvent
_NAME = _KINETO_EVENT.name
_DEVICE_TYPE = _KINETO_EVENT.device_type
_START_NS = _KINETO_EVENT.start_ns
_DURATION_NS = _KINETO_EVENT.duration_ns
_CORRELATION = _KINETO_EVENT.correlation_id
_ACTIVITY_TYPE = getattr(_KINETO_EVENT, "activity_type", None)  # torch 2.11 (the GPU machine's) has none
_EVENTS = _autograd_c._ProfilerResult.events
_PREPARE, _ENABLE, _DISABLE = _autograd_c._prepare_profiler, _autograd_c._enable_profiler, \
    _autograd_c._disable_profiler
_CONFIG, _STATE, _EXPERIMENTAL = _profiler_c.ProfilerConfig, _profiler_c.ProfilerState, \
    _profiler_c._ExperimentalConfig
_ACTIVITY = _profiler_c.ProfilerActivity
_PROFILER_ENABLED = _autograd_c._profiler_enabled
# Our windows are user-scope record functions and the profile records that scope alone: with every scope, each
# PyTorch op of a timed call became a profiler event as well (its callbacks cost host time in the loop, and
# reading the events back cost more than the loop itself: 63 s of a 169 s run of the example dataset's RMSNorm
# and attention definitions on the H200, 2026-12-03). CUPTI's launch and device records do not depend on it.
_ENTER = torch.ops.profiler._record_function_enter_new
_EXIT = torch.ops.profiler._record_function_exit._RecordFunction
_SCOPES = {_profiler_c.RecordScope.USER_SCOPE}

PREFIX = "kernelarena::"
WORK = ("kernel", "memcpy", "memset")
_SYNC_NAMES = ("Context Sync", "Stream Sync", "Event Sync", "Stream Wait Event")


class Activity(NamedTuple):
    """One profiler event, as attribution needs it. ``kind``: "kernel", "memcpy", "memset" (device work),
    "launch" (a host-side runtime or driver call), "annotation", or "other". A named tuple: a profile of a
    PyTorch loop holds tens of thousands of events, and a frozen dataclass's construction was a third of the time
    of reading them back."""

    name: str
    kind: str
    start_ns: int
    end_ns: int
    correlation: int
    on_device: bool


@dataclass(frozen=True)
class CallActivity:
    """Device activity per call of one profile, with what could not be attributed."""

    intervals: List[List[Tuple[int, int]]]
    """Per call, the (start, end) ns of its device work."""
    unattributed: int
    """Device work launched neither inside a call nor inside the harness's annotations."""
    problem: Optional[str]
    """Why the per-call figures cannot be used, else None."""
    events: int = 0
    """Profiler events read back (each costs host time to read: the fewer, the cheaper the profile)."""

    def busy_us(self) -> List[float]:
        """Per call, microseconds the device spent on its work (union of the intervals)."""
        return [union_ns(spans) / 1e3 for spans in self.intervals]

    def sum_us(self) -> List[float]:
        """Per call, the sum of its activities' durations in microseconds."""
        return [sum(end - start for start, end in spans) / 1e3 for spans in self.intervals]


def classify(name: str, activity_type: Optional[str], on_device: bool) -> str:
    """The kind of a profiler event from its activity type (kineto's names: "kernel", "gpu_memcpy",
    "gpu_memset", "cuda_runtime", "cuda_driver", "cuda_sync", "gpu_user_annotation", ...), or from its name where
    torch does not give the type: CUPTI names copies "Memcpy ..." and sets "Memset ...", synchronizations
    "... Sync", and host-side calls start with "cuda" (runtime) or "cu" (driver)."""
    if name.startswith(PREFIX):
        return "annotation"
    if activity_type is not None:
        kind = activity_type.lower()
        if kind in ("kernel", "concurrent_kernel"):
            return "kernel"
        if kind.endswith("memcpy") or kind.endswith("memset"):
            return kind[-6:]
        if kind in ("cuda_runtime", "cuda_driver"):
            return "launch"
        return "other"
    if on_device:
        if name.startswith("Memcpy"):
            return "memcpy"
        if name.startswith("Memset"):
            return "memset"
        return "other" if name in _SYNC_NAMES or name.endswith(" Sync") else "kernel"
    return "launch" if name.startswith("cu") else "other"


def read_events(result) -> List[Activity]:
    """The profiler result's events as Activities, read through the accessors bound at import. Kinds are
    classified once per (name, activity type, side): a timed loop repeats the same few names."""
    out = []
    kinds: Dict[Tuple[str, Optional[str], bool], str] = {}
    on_cuda: Dict[object, bool] = {}
    for event in _EVENTS(result):
        name = _NAME(event)
        device_type = _DEVICE_TYPE(event)
        on_device = on_cuda.get(device_type)
        if on_device is None:
            on_device = on_cuda[device_type] = str(device_type).endswith("CUDA")
        activity = str(_ACTIVITY_TYPE(event)) if _ACTIVITY_TYPE is not None else None
        key = (name, activity, on_device)
        kind = kinds.get(key)
        if kind is None:
            kind = kinds[key] = classify(name, activity, on_device)
        start = _START_NS(event)
        out.append(Activity(name, kind, start, start + _DURATION_NS(event), _CORRELATION(event), on_device))
    return out


def union_ns(spans: Iterable[Tuple[int, int]]) -> int:
    """Nanoseconds covered by the union of (start, end) intervals."""
    total, reach = 0, None
    for start, end in sorted(spans):
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


class ActivityProfile:
    """One CUPTI profile of a timed loop. ``start()`` then, per call, ``with profile.call(r)``, around the
    harness's own device work ``with profile.harness()``; ``stop()`` returns the CallActivity of ``calls``
    calls. start() raises (RuntimeError, or TypeError from a torch whose profiler API differs) when the profiler
    cannot start."""

    def __init__(self, calls: int):
        self.calls = calls
        self.token = os.urandom(6).hex()
        self.harness_windows = 0
        self.running = False

    def start(self, device_activity: bool = True) -> None:
        # Kineto runs one profile per process: starting ours inside a user's would succeed, and stopping ours
        # would stop theirs (seen on the H200, torch 2.11: their profile's exit raised "Can't disable Kineto
        # profiler when it's not running"). Leave theirs alone; the caller times with events and says why.
        if _PROFILER_ENABLED():
            raise RuntimeError("another profiler is already running in this process")
        config = _CONFIG(_STATE.KINETO, False, False, False, False, False, _EXPERIMENTAL())
        activities = {_ACTIVITY.CPU, _ACTIVITY.CUDA} if device_activity else {_ACTIVITY.CPU}
        _PREPARE(config, activities)
        _ENABLE(config, activities, _SCOPES)
        self.running = True

    def call(self, index: int) -> "_Window":
        return _Window(f"{PREFIX}call::{self.token}::{index}")

    def harness(self) -> "_Window":
        self.harness_windows += 1
        return _Window(f"{PREFIX}harness::{self.token}::{self.harness_windows}")

    def abandon(self) -> None:
        """Stop the profiler without reading it, on the way out of a failed loop (the loop's error is the one
        reported)."""
        if self.running:
            self.running = False
            _DISABLE()

    def stop(self) -> CallActivity:
        """Stop the profiler (the caller has synchronized the device) and attribute its events."""
        self.running = False
        # Tens of thousands of new objects: without the collector's passes over the process's whole heap, which
        # they would trigger (seen here: one pass made attributing 16000 events 7x slower).
        collecting = gc.isenabled()
        gc.disable()
        try:
            events = read_events(_DISABLE())
            return dataclasses.replace(attribute(events, self.token, self.calls), events=len(events))
        finally:
            if collecting:
                gc.enable()


class _Window:
    """An annotation in the profile: a user-scope record function around the block."""

    __slots__ = ("name", "record")

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> None:
        self.record = _ENTER(self.name, None)

    def __exit__(self, *exc) -> None:
        _EXIT(self.record)


def attribute(events: Sequence[Activity], token: str, calls: int) -> CallActivity:
    """Per call, the intervals of the device work launched inside its annotation (see the module docstring).
    ``problem`` is set when an annotation is missing or recorded more than once, when a call has no device
    work, or when device work was launched outside every annotation (launches the profiler did not record, or
    work started outside the timed calls): the caller then falls back to another timer."""
    calls_prefix, harness_prefix = f"{PREFIX}call::{token}::", f"{PREFIX}harness::{token}::"
    windows: List[Tuple[int, int, int]] = []  # (start, end, call index or -1 for the harness)
    seen: Dict[str, int] = {}
    for e in events:
        if e.on_device or e.kind != "annotation":
            continue
        if e.name.startswith(calls_prefix) or e.name.startswith(harness_prefix):
            seen[e.name] = seen.get(e.name, 0) + 1
            index = int(e.name[len(calls_prefix):]) if e.name.startswith(calls_prefix) else -1
            windows.append((e.start_ns, e.end_ns, index))
    twice = sorted(name for name, count in seen.items() if count > 1)
    missing = [r for r in range(calls) if f"{calls_prefix}{r}" not in seen]
    intervals: List[List[Tuple[int, int]]] = [[] for _ in range(calls)]
    if twice or missing:
        what = f"annotation {twice[0]} recorded {seen[twice[0]]} times" if twice else \
            f"{len(missing)} of {calls} calls' annotations missing from the profile"
        return CallActivity(intervals, 0, what)
    windows.sort()
    starts = [w[0] for w in windows]
    owner: Dict[int, int] = {}  # correlation id of a launch -> call index (-1: the harness)
    for e in events:
        if e.on_device or e.kind != "launch":
            continue
        index = _window_of(windows, starts, e.start_ns)
        if index is not None:
            owner[e.correlation] = index
    unattributed = 0
    for e in events:
        if not e.on_device or e.kind not in WORK:
            continue
        index = owner.get(e.correlation)
        if index is None:
            unattributed += 1
        elif index >= 0:
            intervals[index].append((e.start_ns, e.end_ns))
    idle = [r for r in range(calls) if not intervals[r]]
    problem = None
    if unattributed:
        problem = f"{unattributed} device activities were launched outside the timed calls and the harness"
    elif idle:
        problem = f"{len(idle)} of {calls} timed calls had no device activity in the profile"
    return CallActivity(intervals, unattributed, problem)


def _window_of(windows: Sequence[Tuple[int, int, int]], starts: Sequence[int], at_ns: int) -> Optional[int]:
    # Windows do not overlap (calls and harness work alternate on one thread): the last one starting at or
    # before at_ns is the only candidate.
    i = bisect.bisect_right(starts, at_ns) - 1
    if i >= 0 and windows[i][0] <= at_ns <= windows[i][1]:
        return windows[i][2]
    return None


def profile_calls(call: Callable[[int], object], calls: int, before: Optional[Callable[[], object]] = None,
                  synchronize: Callable[[], object] = torch.cuda.synchronize) -> CallActivity:
    """The device activity of ``call(0) ... call(calls - 1)``, each after ``before()`` (an L2 flush, say) whose
    own device work is left out. Raises as ActivityProfile.start when the profiler cannot start."""
    profile = ActivityProfile(calls)
    profile.start()
    try:
        for r in range(calls):
            if before is not None:
                with profile.harness():
                    before()
            with profile.call(r):
                call(r)
        synchronize()
    except BaseException:
        profile.abandon()
        raise
    return profile.stop()
