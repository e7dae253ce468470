"""DispatchTable: for each definition and key (its variable-axis values), solutions ranked fastest first.

Built once, when apply is enabled, from the traces of a dataset made on one hardware (this machine's unless
the config names another: a CPU run must not displace GPU results). A key is the tuple of a workload's
variable-axis values in the definition's axis order. Only the newest trace of each (solution, workload)
counts, so re-running a fixed solution replaces its old result. A solution ranks at a key when every one of
its traces there PASSED within the error limits of the definition's RoutingPolicy; its score is the mean
latency over the key's workloads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import fmean
from typing import Dict, Iterable, List, Optional, Tuple

from ..bench.environment import local_hardware
from ..schema import Definition, Trace
from ..store import TraceSet
from .config import ANY_HARDWARE, ApplyConfig, RoutingPolicy

AxesKey = Tuple[int, ...]
_MAX_REMEMBERED_KEYS = 4096


@dataclass(frozen=True)
class Choice:
    """One ranked solution at one key."""

    solution: str
    latency_ms: float
    """Mean latency over the key's workloads."""
    speedup: float
    """Mean speedup over the reference at this key."""
    workloads: int


@dataclass(frozen=True)
class Route:
    """What the table says for one key: candidates fastest first, and how they were found."""

    candidates: Tuple[str, ...]
    how: str
    """"exact", "nearest <key>", "named", "fallback" (unseen key, fallback policy) or "disabled"."""


class DefinitionTable:
    """The ranking of one definition's solutions per key, and its policy for unseen keys."""

    def __init__(self, definition: Definition, policy: RoutingPolicy, ranked: Dict[AxesKey, Tuple[Choice, ...]]):
        self.definition = definition
        self.policy = policy
        self.ranked = ranked
        self._routes: Dict[AxesKey, Route] = {}

    def lookup(self, key: AxesKey) -> Route:
        """Candidates for ``key`` (variable-axis values in definition order), following the unseen-key policy
        when no trace covers it."""
        # A pure function of the key (the ranking and policy are fixed once built), asked once per planned
        # attention batch: remembered per key (a nearest-key search scans every ranked key), bounded like apply's
        # own key caches since a page count changes every few steps.
        route = self._routes.get(key)
        if route is None:
            if len(self._routes) >= _MAX_REMEMBERED_KEYS:
                self._routes.clear()
            route = self._routes[key] = self._lookup(key)
        return route

    def _lookup(self, key: AxesKey) -> Route:
        if not self.policy.enabled:
            return Route((), "disabled")
        exact = self.ranked.get(key)
        if exact:
            return Route(tuple(c.solution for c in exact), "exact")
        if self.policy.unseen == "solution":
            return Route((self.policy.unseen_solution,), "named")
        if self.policy.unseen == "nearest":
            near = self.nearest_key(key)
            if near is not None:
                return Route(tuple(c.solution for c in self.ranked[near]), f"nearest {near}")
        return Route((), "fallback")

    def nearest_key(self, key: AxesKey) -> Optional[AxesKey]:
        """The benchmarked key closest to ``key``: smallest sum of |log2(1+a) - log2(1+b)| over the axes
        (sizes matter by ratio, not difference); a tie goes to the larger key, since a kernel tuned for more
        work usually handles less correctly and reasonably fast."""
        if not self.ranked:
            return None

        def distance(other: AxesKey) -> float:
            return sum(abs(math.log2(1 + a) - math.log2(1 + b)) for a, b in zip(key, other))

        return min(self.ranked, key=lambda other: (distance(other), tuple(-v for v in other)))

    def solutions(self) -> List[str]:
        """Every solution the table can choose (for warm-up), fastest-somewhere first."""
        names = [c.solution for choices in self.ranked.values() for c in choices]
        if self.policy.enabled and self.policy.unseen == "solution":
            names.append(self.policy.unseen_solution)
        return list(dict.fromkeys(names))


class DispatchTable:
    """Per-definition tables built from a TraceSet. ``DispatchTable.build(traceset, config)``."""

    def __init__(self, tables: Dict[str, DefinitionTable], hardware: Optional[str] = None):
        self.tables = tables
        self.hardware = hardware
        """The hardware whose traces were ranked (None: every hardware)."""

    @classmethod
    def build(cls, traceset: TraceSet, config: ApplyConfig = ApplyConfig()) -> "DispatchTable":
        """Rank the solutions of every definition of ``traceset``.

        Only traces made on ``config.hardware`` count (None: this machine's; ANY_HARDWARE: all). Raises
        ValueError when a policy names an unseen-key solution that the dataset lacks for that definition.
        """
        hardware = resolve_hardware(config)
        tables = {}
        for name, definition in traceset.definitions.items():
            policy = config.policy_for(name)
            if policy.unseen == "solution":
                named = traceset.solutions.get(policy.unseen_solution)
                if named is None or named.definition != name:
                    raise ValueError(f"definition {name!r}: unseen-key solution {policy.unseen_solution!r} is "
                                     f"not a solution of it in {traceset.root}")
            own = {s.name for s in traceset.solutions_for(name)}
            traces = [t for t in traceset.traces.get(name, []) if t.solution in own
                      and (hardware is None or t.evaluation.environment.hardware == hardware)]
            tables[name] = DefinitionTable(definition, policy, rank(definition, traces, policy))
        return cls(tables, hardware)

    def get(self, definition: str) -> Optional[DefinitionTable]:
        return self.tables.get(definition)

    def rows(self) -> List[dict]:
        """One row per (definition, key) — and one per definition without any — for printing."""
        rows = []
        for name in sorted(self.tables):
            table = self.tables[name]
            unseen = table.policy.unseen + (f" {table.policy.unseen_solution}" if table.policy.unseen_solution else "")
            if not table.policy.enabled:
                unseen = "disabled"
            if not table.ranked:
                rows.append({"definition": name, "key": "-", "solution": None, "latency_ms": None,
                             "speedup": None, "candidates": 0, "unseen": unseen})
            for key in sorted(table.ranked):
                best = table.ranked[key][0]
                rows.append({"definition": name,
                             "key": ", ".join(f"{a}={v}" for a, v in zip(table.definition.var_axes, key)),
                             "solution": best.solution, "latency_ms": best.latency_ms, "speedup": best.speedup,
                             "candidates": len(table.ranked[key]), "unseen": unseen})
        return rows


def resolve_hardware(config: ApplyConfig) -> Optional[str]:
    """The hardware whose traces ``config`` selects; None for every hardware."""
    if config.hardware == ANY_HARDWARE:
        return None
    if config.hardware is not None:
        return config.hardware
    return local_hardware(config.device or "")


def rank(definition: Definition, traces: Iterable[Trace], policy: RoutingPolicy) -> Dict[AxesKey, Tuple[Choice, ...]]:
    """Rank solutions per key from ``traces`` (evaluated traces of ``definition``)."""
    newest: Dict[Tuple[str, str], Trace] = {}
    for trace in traces:  # file order is append order: a later line of equal timestamp is newer
        slot = (trace.solution, trace.workload.uuid)
        old = newest.get(slot)
        if old is None or trace.evaluation.timestamp >= old.evaluation.timestamp:
            newest[slot] = trace
    by_key: Dict[AxesKey, Dict[str, List[Trace]]] = {}
    for (solution, _), trace in newest.items():
        axes = trace.workload.axes
        if any(a not in axes for a in definition.var_axes):
            continue
        key = tuple(int(axes[a]) for a in definition.var_axes)
        by_key.setdefault(key, {}).setdefault(solution, []).append(trace)
    ranked = {}
    for key, per_solution in by_key.items():
        choices = []
        for solution, group in per_solution.items():
            if not all(_acceptable(t, policy) for t in group):
                continue
            speedup = fmean(t.evaluation.performance.speedup_factor for t in group)
            if policy.min_speedup is not None and speedup < policy.min_speedup:
                continue
            choices.append(Choice(solution, fmean(t.evaluation.performance.latency_ms for t in group),
                                  speedup, len(group)))
        if choices:
            ranked[key] = tuple(sorted(choices, key=lambda c: (c.latency_ms, c.solution)))
    return ranked


def _acceptable(trace: Trace, policy: RoutingPolicy) -> bool:
    if not trace.passed:
        return False
    c = trace.evaluation.correctness
    if policy.max_abs_error is not None and not c.max_absolute_error <= policy.max_abs_error:
        return False
    if policy.max_rel_error is not None and not c.max_relative_error <= policy.max_rel_error:
        return False
    return True
