"""``kernelarena summary --json``: the dataset's summary and, per hardware and definition, each solution's score,
as plain data for CI and scripts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Dict

from ..store import TraceSet
from .leaderboard import build_leaderboards


def summary_data(dataset: TraceSet) -> Dict[str, Any]:
    """JSON-ready: counts per definition (as the summary table), per hardware each definition's solutions with
    passed/evaluated workloads, geometric-mean speedup and mean share of speed of light, best first; and the
    number of invalid records skipped."""
    definitions = []
    for row in dataset.summary():
        definitions.append({**asdict(row), "pass_rate": row.pass_rate})
    hardware = []
    for section in build_leaderboards(dataset):
        env = section.environment
        hardware.append({
            "hardware": section.hardware, "traces": env.traces, "first": env.first, "last": env.last,
            "libs": env.libs, "timing_modes": env.timing_modes,
            "definitions": {b.definition: [asdict(b.scores[s]) for s in b.solutions] for b in section.boards}})
    return {"dataset": str(dataset.root), "definitions": definitions, "hardware": hardware,
            "invalid_records": len(dataset.problems)}
