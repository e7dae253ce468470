"""Tracing: record the workloads of live apply calls into a dataset, for `kernelarena run` to benchmark."""

from .policy import EveryDistinctShape, FirstN, Sampled, TracingPolicy
from .tracer import Tracer, active_tracer, disable_tracing, enable_tracing, flush_tracing

__all__ = ["EveryDistinctShape", "FirstN", "Sampled", "Tracer", "TracingPolicy", "active_tracer",
           "disable_tracing", "enable_tracing", "flush_tracing"]
