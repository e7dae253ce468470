"""Plotly charts of a leaderboard: latency and share of speed of light against workload size, geometric-mean
speedup per solution. Each chart is an HTML fragment; the page inlines plotly.js once (``plotly_js``)."""

from __future__ import annotations

from typing import Dict, List

from ..errors import KernelArenaError
from .formatting import format_latency, format_speedup
from .leaderboard import DefinitionBoard

try:
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.colors import qualitative
    from plotly.offline import get_plotlyjs
except ImportError:  # the HTML report is an extra; Markdown and JSON do not need plotly
    go = None

_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
_LAYOUT = dict(template="plotly_white", height=360, margin=dict(l=60, r=20, t=48, b=50),
               font=dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=12),
               legend=dict(orientation="h", yanchor="top", y=-0.22, x=0, font=dict(size=11)))


def require_plotly() -> None:
    """KernelArenaError saying how to install plotly when it is missing."""
    if go is None:
        raise KernelArenaError("the HTML report needs plotly: pip install 'kernelarena[report]' "
                               "(or use --format md)")


def plotly_js() -> str:
    """The plotly.js bundle, to inline once per page so the page needs no network."""
    require_plotly()
    return get_plotlyjs()


def short_name(solution: str, definition: str) -> str:
    """A solution's name without its definition's name (which every column of a board shares)."""
    short = solution.replace(definition, "").strip("_-") if definition in solution else solution
    return short.replace("__", "_") or solution


def solution_colors(board: DefinitionBoard) -> Dict[str, str]:
    """One color per solution, the same in every chart of the board."""
    palette = qualitative.Plotly + qualitative.D3
    return {s: palette[i % len(palette)] for i, s in enumerate(board.solutions)}


def board_charts(board: DefinitionBoard, chart_id: str) -> List[str]:
    """HTML fragments (each a div with its script) for the board's charts, without plotly.js."""
    require_plotly()
    colors = solution_colors(board)
    figures = [("latency", _latency_figure(board, colors))]
    if board.has_speed_of_light:
        figures.append(("sol", _sol_figure(board, colors)))
    figures.append(("geomean", _geomean_figure(board, colors)))
    return [pio.to_html(fig, include_plotlyjs=False, full_html=False, config=_CONFIG, div_id=f"{chart_id}-{kind}",
                        default_width="100%")
            for kind, fig in figures]


def _series(board: DefinitionBoard, colors: Dict[str, str], value, hover_value: str):
    for solution in board.solutions:
        points = [(w, c) for w in board.workloads
                  if (c := board.cell(solution, w.uuid)) is not None and c.passed and value(c) is not None]
        if not points:
            continue
        yield go.Scatter(
            x=[w.size for w, _ in points], y=[value(c) for _, c in points], mode="lines+markers",
            name=short_name(solution, board.definition), line=dict(color=colors[solution], width=2),
            marker=dict(size=7),
            customdata=[[w.label, format_latency(c.latency_ms), format_speedup(c.speedup)] for w, c in points],
            hovertemplate=f"<b>{solution}</b><br>%{{customdata[0]}}<br>{hover_value}<br>"
                          "latency %{customdata[1]}, speedup %{customdata[2]}<extra></extra>")


def _latency_figure(board: DefinitionBoard, colors: Dict[str, str]):
    slowest = max((c.latency_ms for c in board.cells.values() if c.passed), default=0.0)
    # One unit per chart, the one its slowest solution reads best in (CPU runs reach seconds).
    unit, per_ms = ("µs", 1e3) if slowest < 10 else ("ms", 1.0) if slowest < 10_000 else ("s", 1e-3)
    fig = go.Figure(list(_series(board, colors, lambda c: c.latency_ms * per_ms, f"%{{y:.3g}} {unit}")))
    fig.update_layout(title=dict(text="Latency (lower is better)", font=dict(size=14)), **_LAYOUT)
    _size_axis(fig, board)
    fig.update_yaxes(type="log", title=f"latency ({unit})")
    return fig


def _sol_figure(board: DefinitionBoard, colors: Dict[str, str]):
    fig = go.Figure(list(_series(board, colors, lambda c: c.sol_fraction, "%{y:.1%} of speed of light")))
    fig.update_layout(title=dict(text="Share of speed of light (higher is better)", font=dict(size=14)), **_LAYOUT)
    _size_axis(fig, board)
    top = max((c.sol_fraction for c in board.cells.values() if c.sol_fraction is not None), default=1.0)
    fig.update_yaxes(title="ceiling / latency", tickformat=".0%", range=[0, max(1.0, top) * 1.05])
    return fig


def _size_axis(fig, board: DefinitionBoard) -> None:
    """A log x axis with a tick at each workload's size (few enough to label), in bytes units when sizes are
    bytes."""
    fig.update_xaxes(type="log", title=board.size_label)
    sizes = sorted({w.size for w in board.workloads if w.size > 0})
    if 0 < len(sizes) <= 12:
        in_bytes = board.size_label.startswith("bytes")
        fig.update_xaxes(tickvals=sizes, ticktext=[_bytes(v) if in_bytes else f"{v:g}" for v in sizes])


def _bytes(value: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:g} B"


def _geomean_figure(board: DefinitionBoard, colors: Dict[str, str]):
    scored = [s for s in board.solutions if board.scores[s].geomean_speedup is not None][::-1]
    scores = [board.scores[s] for s in scored]
    fig = go.Figure(go.Bar(
        x=[s.geomean_speedup for s in scores], y=[short_name(s, board.definition) for s in scored], orientation="h",
        marker_color=[colors[s] for s in scored],
        text=[f"{format_speedup(s.geomean_speedup)}  ({s.passed}/{s.evaluated} passed)" for s in scores],
        textposition="auto", width=0.6, hovertemplate="%{y}: %{x:.2f}×<extra></extra>"))
    fig.add_vline(x=1.0, line=dict(color="#888", dash="dash"), annotation_text="reference",
                  annotation_position="top")
    layout = {**_LAYOUT, "height": max(220, 100 + 34 * len(scored)), "showlegend": False,
              "margin": dict(l=10, r=20, t=48, b=40)}
    fig.update_layout(title=dict(text="Geometric-mean speedup (passed workloads)",
                                 font=dict(size=14)), **layout)
    top = max((s.geomean_speedup for s in scores), default=1.0)
    fig.update_xaxes(title="speedup (×)", range=[0, max(1.0, top) * 1.08])
    fig.update_yaxes(automargin=True)
    return fig
