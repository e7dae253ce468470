"""The Markdown report (CI logs, pull requests, scripts): the HTML report's tables without the charts."""

from __future__ import annotations

from typing import List, Optional

from ..store import TraceSet
from .charts import short_name
from .formatting import format_latency, format_share, format_speedup
from .leaderboard import Cell, DefinitionBoard, EnvironmentSummary, build_leaderboards


def render_markdown(dataset: TraceSet, title: Optional[str] = None, definitions: Optional[List[str]] = None,
                    notes: Optional[List[str]] = None) -> str:
    """Per hardware: the environment, then per definition a table of workloads x solutions (the newest trace of
    each) with a geometric-mean row. KeyError names an unknown definition."""
    sections = build_leaderboards(dataset, definitions)
    lines = [f"# {title or 'kernelarena report'}", "",
             f"Dataset `{dataset.root}`: {len(dataset.definitions)} definitions, {len(dataset.solutions)} solutions, "
             f"{sum(s.environment.traces for s in sections)} traces. Cells: latency, speedup over the reference, "
             "share of speed of light (SoL) where recorded; **bold** is the fastest passing solution.", ""]
    lines += [f"> {note}" for note in notes or []]
    if not sections:
        lines.append("No evaluated traces.")
    for section in sections:
        lines += [f"## {section.hardware}", "", _environment(section.environment), ""]
        for board in section.boards:
            lines += [f"### {board.definition}", ""]
            lines += _table(board) + [""]
    return "\n".join(lines).rstrip() + "\n"


def _environment(env: EnvironmentSummary) -> str:
    libs = "; ".join(f"{lib} " + ", ".join(versions) for lib, versions in env.libs.items())
    modes = ", ".join(env.timing_modes) or "-"
    return f"{env.traces} traces, {env.first} to {env.last}; timing {modes}; {libs}"


def _table(board: DefinitionBoard) -> List[str]:
    names = [short_name(s, board.definition) for s in board.solutions]
    lines = ["| workload | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for w in board.workloads:
        best = board.best_on(w.uuid)
        cells = [_cell(board.cell(s, w.uuid), s == best) for s in board.solutions]
        lines.append(f"| {w.label} | " + " | ".join(cells) + " |")
    scores = []
    for s in board.solutions:
        score = board.scores[s]
        speedup = format_speedup(score.geomean_speedup, "x")
        sol = f", {format_share(score.mean_sol_fraction)} SoL" if score.mean_sol_fraction is not None else ""
        scores.append(f"{speedup} ({score.passed}/{score.evaluated} passed{sol})")
    lines.append("| geometric mean | " + " | ".join(scores) + " |")
    return lines


def _cell(cell: Optional[Cell], best: bool) -> str:
    if cell is None:
        return "-"
    if not cell.passed:
        return f"{cell.status}: {cell.reason}".replace("|", "\\|")
    text = f"{format_latency(cell.latency_ms)}, {format_speedup(cell.speedup, 'x')}"
    if cell.sol_fraction is not None:
        text += f", {format_share(cell.sol_fraction)} SoL"
    return f"**{text}**" if best else text
