"""The dispatch table as a rich Table (for `kernelarena apply-table`)."""

from __future__ import annotations

from typing import Optional

from rich.table import Table

from .table import DispatchTable


def render_dispatch_table(table: DispatchTable, title: str, definition: Optional[str] = None) -> Table:
    """One row per (definition, key): the solution apply would choose, its latency and speedup over the
    reference, how many solutions qualify there, and the definition's policy for keys never benchmarked."""
    out = Table(title=title)
    for column in ("definition", "key", "chosen solution", "latency (ms)", "speedup", "candidates", "unseen keys"):
        out.add_column(column, justify="right" if column in ("latency (ms)", "speedup", "candidates") else "left")
    for row in table.rows():
        if definition is not None and row["definition"] != definition:
            continue
        chosen = row["solution"] is not None
        out.add_row(row["definition"], row["key"], row["solution"] or "- (fallback)",
                    f"{row['latency_ms']:.4g}" if chosen else "-", f"{row['speedup']:.2f}x" if chosen else "-",
                    str(row["candidates"]), row["unseen"])
    return out
