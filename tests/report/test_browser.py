"""The HTML report in a real browser (headless Chromium): no console errors, no network, charts drawn."""

import io
import os

import numpy as np
import pytest

from kernelarena.report.charts import plotly_js
from kernelarena.report.render import render_report, write_report
from tests.report.browser import find_chromium, view_page
from tests.report.report_dataset import report_dataset

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def chromium():
    path = find_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium: scripts/install.sh installs Debian's package")
        pytest.skip("no chromium on PATH (scripts/install.sh installs it)")
    return path


def colored_pixels(image, box) -> int:
    """Pixels in ``box`` of a clearly saturated color: data series and bars, not the gray axes, grid and text.
    One marker of a single-point series is about 40."""
    crop = image.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"])))
    pixels = np.asarray(crop.convert("RGB"), dtype=np.int16)
    return int(((pixels.max(axis=2) - pixels.min(axis=2)) > 60).sum())


def test_report_renders_without_errors_and_every_chart_shows_data(chromium, tmp_path):
    page = write_report(render_report(report_dataset(tmp_path / "dataset"), "html"), tmp_path / "report.html")
    view = view_page(page, chromium=chromium)
    assert view.errors == []
    assert view.requests == [page.resolve().as_uri()], "the page must need no network"
    assert len(view.charts) == 7  # GPU rmsnorm: latency, speed of light, geomean; 2 CPU boards: latency, geomean
    image = Image.open(io.BytesIO(view.screenshot))
    assert image.size == (view.width, view.height)
    for chart in view.charts:
        box = chart["box"]
        assert len(chart["plot"]) == 1, chart["id"]
        plot = chart["plot"][0]
        assert plot["width"] > 200 and plot["height"] > 100, chart
        assert box["x"] <= plot["x"] and plot["x"] + plot["width"] <= box["x"] + box["width"] + 1, \
            f"{chart['id']}: the plotting area spills out of its chart box"
        assert colored_pixels(image, plot) > 20, f"{chart['id']}: no data drawn"


def test_the_checks_catch_script_errors_and_empty_charts(chromium, tmp_path):
    import plotly.graph_objects as go

    empty = go.Figure().update_layout(xaxis_title="x", yaxis_title="y").to_html(include_plotlyjs=False,
                                                                              full_html=False, div_id="empty")
    page = tmp_path / "broken.html"
    page.write_text(f"<html><head><script>{plotly_js()}</script></head><body>{empty}"
                    "<script>console.error('drawn wrong'); undefinedFunction();</script></body></html>")
    view = view_page(page, chromium=chromium)
    assert any("drawn wrong" in e for e in view.errors) and any("undefinedFunction" in e for e in view.errors)
    image = Image.open(io.BytesIO(view.screenshot))
    assert colored_pixels(image, view.charts[0]["plot"][0]) == 0
