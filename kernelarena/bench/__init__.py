"""Benchmarking: inputs, correctness, timing, isolated workers, and the run loop that writes Traces."""

from .config import RunConfig, TimingConfig
from .runner import RunReport, run

__all__ = ["RunConfig", "RunReport", "TimingConfig", "run"]
