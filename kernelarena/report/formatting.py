"""Number formats shared by the HTML and Markdown reports."""

from __future__ import annotations

from typing import Optional


def format_latency(latency_ms: Optional[float]) -> str:
    """Microseconds below 10 ms, milliseconds below 1 s, then seconds; three significant digits or more."""
    if latency_ms is None:
        return "-"
    if latency_ms >= 1000.0:
        return f"{latency_ms / 1e3:.1f} s"
    if latency_ms >= 10.0:
        return f"{latency_ms:.1f} ms"
    us = latency_ms * 1e3
    return f"{us:.2f} µs" if us < 10 else f"{us:.1f} µs" if us < 100 else f"{us:.0f} µs"


def format_share(fraction: Optional[float]) -> str:
    """A share of the speed of light as a percentage."""
    return "-" if fraction is None else f"{fraction:.0%}" if fraction >= 0.1 else f"{fraction:.1%}"


def format_speedup(speedup: Optional[float], sign: str = "×") -> str:
    """Two decimals, or two significant digits for the tiny speedups of slow CPU runs (never a bare 0.00)."""
    if speedup is None:
        return "-"
    return f"{speedup:.2f}{sign}" if speedup >= 0.1 else f"{speedup:.2g}{sign}"
