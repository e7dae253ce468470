"""How apply() chooses among solutions: one frozen object, created by the caller and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal, Mapping, Optional

UnseenKeyPolicy = Literal["fallback", "nearest", "solution"]
ANY_HARDWARE = "any"
"""``ApplyConfig.hardware`` value that counts the traces of every hardware."""


@dataclass(frozen=True)
class RoutingPolicy:
    """Routing rules for one definition.

    ``max_abs_error`` / ``max_rel_error``: a PASSED trace counts only when its recorded errors are within
    these (None: any PASSED trace counts). ``min_speedup``: ignore solutions slower than this multiple of
    the reference at a key (None: no floor). ``unseen``: what a key that no trace covers gets —
    "fallback" (the caller's function), "nearest" (the ranking of the closest benchmarked key) or
    "solution" (the solution named by ``unseen_solution``). ``enabled=False`` leaves the definition on
    its fallback.
    """

    max_abs_error: Optional[float] = None
    max_rel_error: Optional[float] = None
    min_speedup: Optional[float] = None
    unseen: UnseenKeyPolicy = "fallback"
    unseen_solution: Optional[str] = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.unseen not in ("fallback", "nearest", "solution"):
            raise ValueError(f"unseen={self.unseen!r}: expected 'fallback', 'nearest' or 'solution'")
        if (self.unseen == "solution") != (self.unseen_solution is not None):
            raise ValueError("unseen='solution' needs unseen_solution=<solution name>, and only it takes one")
        for name in ("max_abs_error", "max_rel_error", "min_speedup"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"{name}={value!r}: must be a non-negative number or None")


@dataclass(frozen=True)
class ApplyConfig:
    """Everything enable_apply() needs to know besides the dataset.

    ``default`` applies to every definition without an entry in ``overrides`` (definition name ->
    RoutingPolicy). ``warmup``: build every solution the table can choose when apply is enabled, instead
    of on first use. ``device``: where solutions are built to run ("cpu", "cuda"); None reads it from the
    first call's tensors. ``max_cached_keys``: distinct argument shapes remembered per definition (a bound
    on memory for axes that change every step, such as a KV-page count); the cache is cleared when full.
    ``hardware``: whose traces count (a trace's ``environment.hardware``, e.g. "NVIDIA H100 80GB HBM3");
    None: this machine's (of ``device``, else the first GPU, else the CPU); ANY_HARDWARE: every trace.
    """

    default: RoutingPolicy = field(default_factory=RoutingPolicy)
    overrides: Mapping[str, RoutingPolicy] = field(default_factory=dict)
    warmup: bool = False
    device: Optional[str] = None
    max_cached_keys: int = 4096
    hardware: Optional[str] = None

    def __post_init__(self) -> None:
        # Freeze the mapping too, so a config shared between runtimes cannot change under one of them.
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))
        if self.max_cached_keys < 1:
            raise ValueError(f"max_cached_keys={self.max_cached_keys}: must be at least 1")

    def policy_for(self, definition: str) -> RoutingPolicy:
        """The policy of ``definition``: its override, else the default."""
        return self.overrides.get(definition, self.default)

    def with_options(self, **changes) -> "ApplyConfig":
        """A copy with some fields changed (e.g. ``warmup=True``)."""
        return replace(self, **changes)
