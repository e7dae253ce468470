"""Which live calls tracing keeps. A policy sees each call's definition and variable-axis key."""

from __future__ import annotations

import abc
import random
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

AxesKey = Tuple[int, ...]


class TracingPolicy(abc.ABC):
    """Base of the policies. ``admit`` decides for one call (and counts it when admitted); ``saturated`` says
    that no later call with this key will be admitted, which lets the tracer skip such calls after a shape
    read; ``seed`` counts a workload the dataset already holds, so a restarted process does not record
    the same keys again."""

    @abc.abstractmethod
    def admit(self, definition: str, key: AxesKey) -> bool:
        """Whether to record this call."""

    def saturated(self, definition: str, key: AxesKey) -> bool:
        return False

    def seed(self, definition: str, key: AxesKey) -> None:
        pass


@dataclass
class FirstN(TracingPolicy):
    """The first ``n`` calls of each key (existing workloads of the dataset count toward ``n``)."""

    n: int = 1
    counts: Dict[Tuple[str, AxesKey], int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"FirstN(n={self.n}): n must be at least 1")

    def admit(self, definition: str, key: AxesKey) -> bool:
        slot = (definition, key)
        count = self.counts.get(slot, 0)
        if count >= self.n:
            return False
        self.counts[slot] = count + 1
        return True

    def saturated(self, definition: str, key: AxesKey) -> bool:
        return self.counts.get((definition, key), 0) >= self.n

    def seed(self, definition: str, key: AxesKey) -> None:
        slot = (definition, key)
        self.counts[slot] = self.counts.get(slot, 0) + 1


class EveryDistinctShape(FirstN):
    """One call per distinct set of variable-axis values, i.e. per distinct set of input shapes."""

    def __init__(self) -> None:
        super().__init__(n=1)


@dataclass
class Sampled(TracingPolicy):
    """Each call with probability ``rate`` (seeded, so a run is reproducible), at most ``max_per_key`` per key
    when given."""

    rate: float = 0.01
    seed_value: int = 0
    max_per_key: Optional[int] = None
    counts: Dict[Tuple[str, AxesKey], int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.rate <= 1.0:
            raise ValueError(f"Sampled(rate={self.rate}): rate must be in (0, 1]")
        self._random = random.Random(self.seed_value)

    def admit(self, definition: str, key: AxesKey) -> bool:
        if self.saturated(definition, key) or self._random.random() >= self.rate:
            return False
        slot = (definition, key)
        self.counts[slot] = self.counts.get(slot, 0) + 1
        return True

    def saturated(self, definition: str, key: AxesKey) -> bool:
        return self.max_per_key is not None and self.counts.get((definition, key), 0) >= self.max_per_key

    def seed(self, definition: str, key: AxesKey) -> None:
        slot = (definition, key)
        self.counts[slot] = self.counts.get(slot, 0) + 1


POLICIES = {"first_n": FirstN, "distinct_shapes": EveryDistinctShape, "sampled": Sampled}
"""Names accepted by enable_tracing(policy=...) and KERNELARENA_TRACE_POLICY."""
