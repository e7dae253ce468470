"""Which backend ``backend="auto"`` picks: a small table read off the benchmark (benchmarks/bench_rmsnorm.py).

Rows: (operator, hidden size, largest batch, backend), looked up with the nearest measured hidden size and
the first row whose batch bound covers the call. The numbers behind it are in docs/rmsnorm.md and
benchmarks/results/rmsnorm_*.md. Backends missing on a machine are skipped in PREFERENCE order.
"""

from __future__ import annotations

# Measured on an H100 80GB HBM3 (benchmarks/results/rmsnorm_2026-11-24_h100_run3_direct.*; docs/rmsnorm.md):
# TileLang is fastest or within 1% of it at every benchmarked shape of both ops except rmsnorm at a single
# 4096-wide row (Triton 4.3 vs 5.2 us) and 8192-wide rows up to 1024 (Triton 2-4% faster), where Triton's
# direct launch wins. Without tilelang installed (or for a hidden size it refuses) PREFERENCE takes over:
# CUDA, whose extension launch costs the host less than Triton's launcher.
AUTO_TABLE: tuple[tuple[str, int, int, str], ...] = (
    ("rmsnorm", 4096, 1, "triton"),
    ("rmsnorm", 4096, 1 << 62, "tilelang"),
    ("rmsnorm", 8192, 1024, "triton"),
    ("rmsnorm", 8192, 1 << 62, "tilelang"),
    ("fused_add_rmsnorm", 4096, 1 << 62, "tilelang"),
    ("fused_add_rmsnorm", 8192, 1 << 62, "tilelang"),
)

# Order tried when the table's choice is not available (no compiler, package not installed, shape refused).
PREFERENCE = ("cuda", "triton", "tilelang", "torch")


def measured_choice(op: str, rows: int, hidden: int) -> str:
    """The table's backend for ``op`` on a [rows, hidden] problem on a CUDA device."""
    entries = [e for e in AUTO_TABLE if e[0] == op]
    nearest = min({e[1] for e in entries}, key=lambda h: (abs(h - hidden), h))
    for _, table_hidden, max_rows, backend in entries:
        if table_hidden == nearest and rows <= max_rows:
            return backend
    return PREFERENCE[0]
