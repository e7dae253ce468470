import json

import pytest

from tests.report.report_dataset import GPU, RMSNORM, report_dataset
from tests.test_cli import kernelarena


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "dataset"
    report_dataset(root)
    return root


def test_report_writes_html_or_prints_markdown(dataset_root, tmp_path):
    result = kernelarena("report", dataset_root, "-o", tmp_path / "out" / "report.html")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrote" in result.stdout and (tmp_path / "out" / "report.html").read_text().startswith("<!DOCTYPE html>")
    result = kernelarena("report", dataset_root, "--format", "md", "--definition", RMSNORM)
    assert result.returncode == 0 and f"## {GPU}" in result.stdout and "### gqa_paged" not in result.stdout


def test_report_errors_name_the_option_or_file(dataset_root, tmp_path):
    result = kernelarena("report", dataset_root)
    assert result.returncode == 2 and "--output" in result.stdout + result.stderr
    result = kernelarena("report", dataset_root, "--format", "md", "--traces", tmp_path / "absent.jsonl")
    assert result.returncode == 2 and "absent.jsonl" in result.stdout and "does not exist" in result.stdout
    result = kernelarena("report", dataset_root, "--format", "md", "--definition", "nope")
    assert result.returncode == 2 and "no definition 'nope'" in result.stdout


def test_summary_json_has_counts_and_scores_per_hardware(dataset_root):
    result = kernelarena("summary", dataset_root, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    row = next(d for d in data["definitions"] if d["definition"] == RMSNORM)
    assert (row["traces"], row["passed"], row["best_solution"]) == (10, 8, "rmsnorm_h4096_kernelarena_triton")
    gpu = next(h for h in data["hardware"] if h["hardware"] == GPU)
    scores = gpu["definitions"][RMSNORM]
    assert [s["solution"] for s in scores][0] == "rmsnorm_h4096_kernelarena_triton"
    assert scores[0]["geomean_speedup"] == pytest.approx(4.0) and scores[0]["passed"] == 3
    assert data["invalid_records"] == 0
