"""The HTML report: one self-contained page (plotly.js inlined, no network needed to view it) with, per hardware,
the environment of its traces and per definition a leaderboard table and charts."""

from __future__ import annotations

import datetime
import re
from html import escape
from typing import List, Optional

from ..store import TraceSet
from .charts import board_charts, plotly_js, require_plotly, short_name
from .formatting import format_latency, format_share, format_speedup
from .leaderboard import Cell, DefinitionBoard, EnvironmentSummary, HardwareSection, build_leaderboards

_STYLE = """
:root { --fg:#1d2433; --muted:#5b6475; --line:#dde2ea; --best:#e3f4e8; --bad:#b42318; --bg:#ffffff; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg);
       margin: 0 auto; max-width: 1400px; padding: 24px 32px 64px; line-height: 1.4; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 22px; margin: 40px 0 8px; border-bottom: 2px solid var(--line);
padding-bottom: 6px; } h3 { font-size: 18px; margin: 32px 0 4px; }
.muted { color: var(--muted); } .small { font-size: 12px; }
nav ul { columns: 2; margin: 8px 0 0; padding-left: 20px; } nav li { margin: 2px 0; }
table { border-collapse: collapse; margin: 12px 0; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 5px 8px; vertical-align: top; text-align: left; }
th { background: #f5f7fa; font-weight: 600; }
table.board td.cell { text-align: right; white-space: nowrap; min-width: 92px; }
table.board td.best { background: var(--best); font-weight: 600; }
table.board td.failed { background: #fdf0ef; color: var(--bad); text-align: left; white-space: normal; max-width: 240px;
                        overflow-wrap: anywhere; }
table.board tfoot td { background: #f5f7fa; }
.latency { font-size: 14px; } .sub { display: block; color: var(--muted); font-size: 11px; font-weight: 400; }
/* A fixed column count per row of charts: each chart draws at its cell's width while the page is parsed,
   before the charts after it exist, so the grid must not reflow when they arrive. */
.charts { display: grid; grid-template-columns: repeat(var(--charts), minmax(0, 1fr)); gap: 12px; }
@media (max-width: 900px) { .charts { grid-template-columns: minmax(0, 1fr); } }
.chart { border: 1px solid var(--line); border-radius: 6px; padding: 4px; min-height: 240px; min-width: 0;
         overflow: hidden; }
.note { background: #fff8e6; border: 1px solid #f1d48a; border-radius: 6px; padding: 8px 12px; margin: 12px 0; }
.env td:first-child { font-weight: 600; } .several { color: var(--bad); }
"""


def render_html(dataset: TraceSet, title: Optional[str] = None, definitions: Optional[List[str]] = None,
                notes: Optional[List[str]] = None) -> str:
    """The whole page as a string. KeyError names an unknown definition; KernelArenaError if plotly is missing."""
    require_plotly()
    sections = build_leaderboards(dataset, definitions)
    title = title or f"kernelarena report: {dataset.root.name if dataset.root else 'dataset'}"
    traces = sum(s.environment.traces for s in sections)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<h1>{escape(title)}</h1>",
             f"<p class='muted'>Dataset <code>{escape(str(dataset.root))}</code>: {len(dataset.definitions)} "
             f"definitions, {len(dataset.solutions)} solutions, {traces} traces on {len(sections)} hardware. "
             f"Generated {now} by <code>kernelarena report</code>.</p>",
             "<p class='muted small'>Each cell is the newest trace of a solution on a workload: median latency, "
             "speedup over the definition's reference timed in the same run, and the share of the speed of light "
             "(the least time the device's measured bandwidth and matmul rate allow) where the trace records it. "
             "The fastest passing solution of each workload is highlighted.</p>"]
    parts += [f"<div class='note'>{escape(n)}</div>" for n in notes or []]
    if not sections:
        parts.append("<div class='note'>No evaluated traces: run <code>kernelarena run DATASET</code> first, or "
                     "pass trace files with <code>--traces</code>.</div>")
    parts.append(_contents(sections))
    for index, section in enumerate(sections):
        parts.append(_section(section, index))
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>\n<title>{escape(title)}</title>\n"
            f"<style>{_STYLE}</style>\n<script>{plotly_js()}</script>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _anchor(*names: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(names)).strip("-").lower()


def _contents(sections: List[HardwareSection]) -> str:
    items = []
    for section in sections:
        links = "".join(f"<li><a href='#{_anchor(section.hardware, b.definition)}'>{escape(b.definition)}</a></li>"
                        for b in section.boards)
        items.append(f"<h4><a href='#{_anchor(section.hardware)}'>{escape(section.hardware)}</a></h4><ul>{links}</ul>")
    return f"<nav>{''.join(items)}</nav>" if items else ""


def _section(section: HardwareSection, index: int) -> str:
    parts = [f"<section class='hardware'><h2 id='{_anchor(section.hardware)}'>{escape(section.hardware)}</h2>",
             _environment(section.environment)]
    for number, board in enumerate(section.boards):
        parts.append(_board(section.hardware, board, f"chart-{index}-{number}"))
    parts.append("</section>")
    return "\n".join(parts)


def _environment(env: EnvironmentSummary) -> str:
    rows = [("traces", escape(str(env.traces))), ("evaluated", escape(f"{env.first} to {env.last}")),
            ("timing", escape(", ".join(f"{m} ({n})" for m, n in env.timing_modes.items()) or "-"))]
    for lib, versions in env.libs.items():
        if len(versions) > 1:  # mixed versions make the traces hard to compare: say so
            text = ", ".join(f"{v} ({n} traces)" for v, n in versions.items())
            rows.append((lib, f"<span class='several'>{escape(text)}</span>"))
        else:
            rows.append((lib, escape(next(iter(versions)))))
    body = "".join(f"<tr><td>{escape(k)}</td><td>{v}</td></tr>" for k, v in rows)
    return f"<table class='env'><caption class='muted small'>Environment of these traces</caption>{body}</table>"


def _board(hardware: str, board: DefinitionBoard, chart_id: str) -> str:
    parts = [f"<section class='board'><h3 id='{_anchor(hardware, board.definition)}'>{escape(board.definition)} "
             f"<span class='muted small'>({escape(board.op_type)})</span></h3>"]
    if board.description:
        parts.append(f"<p class='muted'>{escape(board.description)}</p>")
    charts = board_charts(board, chart_id)
    chart_cells = "".join(f"<div class='chart'>{c}</div>" for c in charts)
    parts.append(f"<div class='charts' style='--charts: {len(charts)}'>" + chart_cells + "</div>")
    if not board.has_speed_of_light:
        parts.append("<p class='muted small'>No speed of light in these traces (the run had no measured device "
                     "ceilings), so the share column and chart are left out.</p>")
    parts.append(_table(board))
    parts.append("</section>")
    return "\n".join(parts)


def _table(board: DefinitionBoard) -> str:
    head = "".join(f"<th title='{escape(s)}'>{escape(short_name(s, board.definition))}</th>" for s in board.solutions)
    rows = []
    for w in board.workloads:
        best = board.best_on(w.uuid)
        cells = "".join(_cell_html(board.cell(s, w.uuid), s == best) for s in board.solutions)
        rows.append(f"<tr><td title='{escape(w.uuid)}'>{escape(w.label)}</td>{cells}</tr>")
    foot = "".join(_score_html(board, s) for s in board.solutions)
    return (f"<table class='board'><thead><tr><th>workload</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
            f"<tfoot><tr><td>geometric mean</td>{foot}</tr></tfoot></table>")


def _cell_html(cell: Optional[Cell], best: bool) -> str:
    if cell is None:
        return "<td class='cell muted' title='not evaluated'>—</td>"
    runs = f"; newest of {cell.runs} runs" if cell.runs > 1 else ""
    if not cell.passed:
        return (f"<td class='cell failed' title='{escape(cell.timestamp + runs)}'><b>{escape(cell.status)}</b>"
                f"<span class='sub'>{escape(cell.reason)}</span></td>")
    sol = f" · {format_share(cell.sol_fraction)} SoL" if cell.sol_fraction is not None else ""
    sub = format_speedup(cell.speedup) + sol
    return (f"<td class='cell{' best' if best else ''}' title='{escape(cell.timestamp + runs)}'>"
            f"<span class='latency'>{format_latency(cell.latency_ms)}</span><span class='sub'>{sub}</span></td>")


def _score_html(board: DefinitionBoard, solution: str) -> str:
    score = board.scores[solution]
    speedup = format_speedup(score.geomean_speedup)
    sol = f" · {format_share(score.mean_sol_fraction)} SoL" if score.mean_sol_fraction is not None else ""
    return (f"<td class='cell'><span class='latency'>{speedup}</span>"
            f"<span class='sub'>{score.passed}/{score.evaluated} passed{sol}</span></td>")
