"""The dataset on disk: FlashInfer-Trace layout, loading with problem reports, atomic writes. Knows only schema."""

from .layout import Layout
from .traceset import DefinitionSummary, TraceSet

__all__ = ["DefinitionSummary", "Layout", "TraceSet"]
