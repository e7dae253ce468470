"""Which backend ``backend="auto"`` picks: a small table read off the benchmark (benchmarks/bench_rmsnorm.py).

Rows: (operator, hidden size, largest batch, backend), looked up with the nearest measured hidden size and
the first row whose batch bound covers the call. The numbers behind it are in docs/rmsnorm.md and
benchmarks/results/rmsnorm_*.md. Backends missing on a machine are skipped in PREFERENCE order.
"""

from __future__ import annotations

# Measured on an H100 80GB HBM3, backends timed in turn with the host ahead
# (benchmarks/results/rmsnorm_2026-11-24_h100_run6.*; docs/rmsnorm.md): Triton is fastest up to 8192-16384
# rows (up to 17% ahead at 1-1024 rows) and TileLang from there (within 1% of the others), except the fused op
# at 32 x 4096, where TileLang leads by 15%.
AUTO_TABLE: tuple[tuple[str, int, int, str], ...] = (
    ("rmsnorm", 4096, 16384, "triton"),
    ("rmsnorm", 4096, 1 << 62, "tilelang"),
    ("rmsnorm", 8192, 8192, "triton"),
    ("rmsnorm", 8192, 1 << 62, "tilelang"),
    ("fused_add_rmsnorm", 4096, 16, "triton"),
    ("fused_add_rmsnorm", 4096, 512, "tilelang"),
    ("fused_add_rmsnorm", 4096, 8192, "triton"),
    ("fused_add_rmsnorm", 4096, 1 << 62, "tilelang"),
    ("fused_add_rmsnorm", 8192, 8192, "triton"),
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
