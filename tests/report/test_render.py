import re

import pytest

from kernelarena.errors import DatasetError, KernelArenaError
from kernelarena.report.charts import plotly_js
from kernelarena.report.render import render_report
from kernelarena.store import TraceSet
from tests.report.report_dataset import GPU, RMSNORM, report_dataset


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("render") / "dataset"
    report_dataset(root)
    return root


def test_markdown_has_a_table_per_hardware_and_definition(dataset_root):
    text = render_report(TraceSet.load(dataset_root), "md")
    gpu = text[text.index(f"## {GPU}"):]
    lines = gpu[gpu.index(f"### {RMSNORM}"):].splitlines()
    assert lines[2] == "| workload | kernelarena_triton | pytorch | flashinfer |"
    assert lines[4] == ("| batch_size=1 | **5.00 µs, 2.00x, 10% SoL** | 10.0 µs, 1.00x, 5.0% SoL | "
                        "RUNTIME_ERROR: RuntimeError: CUDA error: misaligned address |")
    assert lines[5].endswith("| INCORRECT_NUMERICAL: max abs error 0.5, max rel error 0.25 |")
    assert lines[6] == "| batch_size=1024 | **20.0 µs, 4.00x, 85% SoL** | 80.0 µs, 1.00x, 21% SoL | - |"
    assert lines[7] == "| geometric mean | 4.00x (3/3 passed, 45% SoL) | 1.00x (3/3 passed, 10% SoL) | - (0/2 passed) |"
    assert "torch 2.13.0, 2.12.0" in gpu


def test_html_is_one_page_with_plotly_inlined_and_a_chart_per_view(dataset_root):
    page = render_report(TraceSet.load(dataset_root), "html", title="Test <report>")
    assert page.count("<script>") == 1 + 3 + 2 + 2  # plotly.js, GPU rmsnorm (with speed of light), 2 CPU boards
    assert "<title>Test &lt;report&gt;</title>" in page
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page), "the page must load nothing"
    assert page.count("class='cell failed'") == 3 and "misaligned address" in page
    assert page.count("Plotly.newPlot") == 7 and page.count(plotly_js()[:500]) == 1


def test_bad_requests_name_what_is_wrong(dataset_root, tmp_path):
    ds = TraceSet.load(dataset_root)
    with pytest.raises(KernelArenaError, match="unknown report format 'pdf'"):
        render_report(ds, "pdf")
    with pytest.raises(DatasetError, match="trace file does not exist"):
        render_report(ds, "md", [tmp_path / "absent.jsonl"])
    with pytest.raises(KeyError, match="no definition 'nope'"):
        render_report(ds, "md", definitions=["nope"])


def test_trace_files_outside_the_dataset_are_added_and_bad_lines_noted(dataset_root, tmp_path):
    ds = TraceSet.load(dataset_root)
    traces = [t for group in ds.traces.values() for t in group if t.evaluation.environment.hardware == GPU]
    extra = tmp_path / "gpu_traces.jsonl"
    moved = [t.model_copy(update={"evaluation": t.evaluation.model_copy(update={
        "environment": t.evaluation.environment.model_copy(update={"hardware": "NVIDIA B200"})})}) for t in traces]
    extra.write_text("".join(t.to_json() + "\n" for t in moved) + '{"definition": "nope"}\n')
    text = render_report(TraceSet.load(dataset_root), "md", [extra])
    assert "## NVIDIA B200" in text and f"## {GPU}" in text
    assert "> 1 invalid records skipped" in text and f"{extra}:10" in text


def test_the_committed_h100_traces_still_make_the_committed_report(monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # the report names the dataset as it was given
    ds = TraceSet.load("examples/dataset")
    text = render_report(ds, "md", ["benchmarks/results/run_example_h100_traces.jsonl"],
                         title="kernelarena: example dataset on an H100 (2026-11-24)")
    assert not ds.problems and text.count("### ") == 6 and "124 traces" in text
    committed = Path("benchmarks/results/report_example_h100.md").read_text()
    # From the first hardware section on: the header counts every definition, including ones added since.
    assert text[text.index("\n## "):] == committed[committed.index("\n## "):], \
        "regenerate the committed report: see docs/report.md"
