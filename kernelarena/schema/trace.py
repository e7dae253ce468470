"""Trace: one evaluation of a solution on a workload. A workload entry is a Trace with neither."""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, Dict, Literal, Optional

from pydantic import ConfigDict, Field, field_validator, model_validator

from .base import NonEmptyString, NonNegativeInt, Record, SafeName
from .workload import Workload


class Status(str, Enum):
    PASSED = "PASSED"
    INCORRECT_SHAPE = "INCORRECT_SHAPE"
    INCORRECT_NUMERICAL = "INCORRECT_NUMERICAL"
    INCORRECT_DTYPE = "INCORRECT_DTYPE"
    RUNTIME_ERROR = "RUNTIME_ERROR"
    COMPILE_ERROR = "COMPILE_ERROR"
    TIMEOUT = "TIMEOUT"


class Correctness(Record):
    """Largest errors against the reference over all correctness rounds."""

    model_config = ConfigDict(ser_json_inf_nan="strings")
    max_relative_error: float = 0.0
    max_absolute_error: float = 0.0
    extra: Optional[Dict[str, Any]] = None
    """Free-form details; we record rounds, seeds and the tolerance applied."""

    @field_validator("max_relative_error", "max_absolute_error")
    @classmethod
    def _non_negative(cls, v: float) -> float:
        if not math.isnan(v) and v < 0:
            raise ValueError("must be non-negative or NaN")
        return v


class TimingStats(Record):
    """Distribution of one callable's latency (kernelarena; FlashInfer-Bench ignores it)."""

    median_ms: float = Field(ge=0)
    mean_ms: float = Field(ge=0)
    min_ms: float = Field(ge=0)
    max_ms: float = Field(ge=0)
    p25_ms: float = Field(ge=0)
    p75_ms: float = Field(ge=0)
    count: NonNegativeInt
    mode: NonEmptyString
    """How it was timed: "cupti-cold-l2" (CUPTI device time, L2 flushed), "cuda-events-cold-l2", "cuda-events-warm",
    "cuda-graph", "cpu-wall"."""
    host_overhead_us: Optional[float] = None
    """Host time of one call (Python + launch), paid in serving even when the device is idle."""
    plan_host_us: Optional[float] = None
    """Host time of the solution's plan step for one input set (median over the timed input sets), spent outside
    the timed region; None when it has no plan step."""
    fallback_reason: Optional[str] = None
    """Why the mode's first timer was not used (the cold mode falls back from CUPTI to CUDA events when the
    profiler gives no usable device activity); None when it was."""
    device_alone: Optional[bool] = None
    """False when the timed loop ran without the run's device lock (it waited bench/quiet.WAIT_S for it and went
    on): another process of the run may have used the GPU meanwhile. None where the run has no lock (the CPU)."""
    input_sets: Optional[int] = None
    """Input sets the timed loop rotated between calls (TimingConfig.copies_for); the solution's and the
    reference's timings of one workload rotate the same sets."""
    rest_us: Optional[float] = None
    """Microseconds the device idled after each timed call (a long call on a GPU, TimingConfig.rest: its clocks
    at their peak whatever ran before); None when the calls ran back to back."""


class SpeedOfLight(Record):
    """How close a latency came to what the device allows (kernelarena; FlashInfer-Bench ignores it)."""

    bytes: float = Field(ge=0)
    """Bytes one call moves (the definition's roofline, or its inputs plus outputs)."""
    flops: float = Field(default=0.0, ge=0)
    """Floating-point operations of one call."""
    ceiling_ms: float = Field(ge=0)
    """The least time one call can take at the device's measured copy bandwidth and matmul rate."""
    bound: Literal["memory", "compute"] = "memory"
    """Which ceiling sets ceiling_ms."""
    fraction: float = Field(ge=0)
    """ceiling_ms / latency_ms: 1.0 is the speed of light."""
    ceilings: Dict[str, float] = Field(default_factory=dict)
    """The device ceilings used (e.g. copy_bytes_per_s, bf16_flops_per_s), measured once per device."""


class Performance(Record):
    latency_ms: float = Field(default=0.0, ge=0)
    """Median latency of the solution."""
    reference_latency_ms: float = Field(default=0.0, ge=0)
    speedup_factor: float = Field(default=0.0, ge=0)
    """reference_latency_ms / latency_ms."""
    solution_timing: Optional[TimingStats] = None
    reference_timing: Optional[TimingStats] = None
    speed_of_light: Optional[SpeedOfLight] = None


class Environment(Record):
    hardware: NonEmptyString
    libs: Dict[str, str] = Field(default_factory=dict)
    sandbox: Optional[Dict[str, str]] = None
    """Protections the solution's process ran under, each "active..." or "unavailable: why" (kernelarena;
    FlashInfer-Bench ignores it): landlock (writes only to its scratch folder), seccomp (no internet sockets),
    process ("fresh": no other solution ran there)."""


class Evaluation(Record):
    """Outcome of one evaluation. PASSED carries correctness and performance; INCORRECT_NUMERICAL carries
    correctness only; the other statuses carry neither (the FlashInfer-Trace rule)."""

    status: Status
    environment: Environment
    timestamp: NonEmptyString
    log: str = ""
    correctness: Optional[Correctness] = None
    performance: Optional[Performance] = None

    @model_validator(mode="after")
    def _fields_match_status(self) -> "Evaluation":
        wants_correctness = self.status in (Status.PASSED, Status.INCORRECT_NUMERICAL)
        wants_performance = self.status == Status.PASSED
        if wants_correctness != (self.correctness is not None):
            raise ValueError(f"correctness must be {'present' if wants_correctness else 'absent'} "
                             f"when status is {self.status.value}")
        if wants_performance != (self.performance is not None):
            raise ValueError(f"performance must be {'present' if wants_performance else 'absent'} "
                             f"when status is {self.status.value}")
        return self


class Trace(Record):
    definition: SafeName
    workload: Workload
    solution: Optional[SafeName] = None
    evaluation: Optional[Evaluation] = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> "Trace":
        if (self.solution is None) != (self.evaluation is None):
            raise ValueError("a trace has both solution and evaluation, or neither (a workload entry)")
        return self

    @property
    def is_workload(self) -> bool:
        return self.solution is None

    @property
    def passed(self) -> bool:
        return self.evaluation is not None and self.evaluation.status == Status.PASSED
