"""benchmarks/common.py: results tables are upserted by machine and key, and read back as written."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from benchmarks.common import (
    Stamp,
    add_out_argument,
    markdown_table,
    publish,
    read_results,
    stamp,
    timed_cases,
    upsert_results,
)

COLUMNS = ["case", "us"]
H100, B200 = Stamp("NVIDIA H100", "2026-11-24"), Stamp("NVIDIA B200", "2026-12-01")


def test_markdown_table_escapes_pipes_and_fills_missing_cells():
    text = markdown_table(["a", "b"], [{"a": "x|y", "b": 1.234}, {"a": "z"}])
    assert text == "| a | b |\n|---|---|\n| x\\|y | 1.23 |\n| z | - |\n"


def test_a_run_replaces_its_own_machines_rows_and_keeps_the_others(tmp_path):
    table = tmp_path / "t.md"
    upsert_results(table, table, "# T", ["case"], COLUMNS, [{"case": "1x4096", "us": 5.0}, {"case": "a|b", "us": 1}],
                   H100)
    upsert_results(table, table, "# T", ["case"], COLUMNS, [{"case": "1x4096", "us": 3.0}], B200)
    upsert_results(table, table, "# T", ["case"], COLUMNS, [{"case": "1x4096", "us": 4.5}],
                   Stamp("NVIDIA H100", "2026-12-02"))
    title, columns, rows = read_results(table)
    assert title == "# T" and columns == ["machine", "date", "case", "us"]
    assert rows == [
        {"machine": "NVIDIA B200", "date": "2026-12-01", "case": "1x4096", "us": "3.00"},
        {"machine": "NVIDIA H100", "date": "2026-12-02", "case": "1x4096", "us": "4.50"},
        {"machine": "NVIDIA H100", "date": "2026-11-24", "case": "a|b", "us": "1"},
    ]


def test_a_new_column_reads_as_missing_in_old_rows(tmp_path):
    table = tmp_path / "t.md"
    upsert_results(table, table, "# T", ["case"], COLUMNS, [{"case": "c", "us": 1.0}], H100)
    upsert_results(table, table, "# T", ["case"], COLUMNS + ["host us"], [{"case": "d", "us": 2.0, "host us": 9}], B200)
    rows = read_results(table)[2]
    assert [r["host us"] for r in rows] == ["9", "-"]


def test_a_broken_results_file_is_named(tmp_path):
    table = tmp_path / "t.md"
    table.write_text("# T\n\nno table here\n")
    with pytest.raises(ValueError, match="t.md: no markdown table"):
        read_results(table)
    table.write_text("| a | b |\n|---|---|\n| 1 |\n")
    with pytest.raises(ValueError, match="t.md:3: 1 cells, the header has 2"):
        read_results(table)


def test_publish_starts_from_the_committed_table_and_writes_the_latest_output(tmp_path, monkeypatch):
    import benchmarks.common as common

    committed = tmp_path / "results"
    committed.mkdir()
    upsert_results(committed / "x.md", committed / "x.md", "# X", ["case"], COLUMNS, [{"case": "c", "us": 1}], H100)
    monkeypatch.setattr(common, "RESULTS_DIR", committed)
    out = tmp_path / "out"
    table = publish("x", out, "raw output", "# X", ["case"], COLUMNS, [{"case": "c", "us": 2}], B200)
    assert (out / "x_latest.md").read_text() == "raw output\n"
    assert [r["machine"] for r in read_results(table)[2]] == ["NVIDIA B200", "NVIDIA H100"]
    assert len(read_results(committed / "x.md")[2]) == 1  # the committed table is only read


def test_out_defaults_to_the_out_variable(monkeypatch):
    parser = argparse.ArgumentParser()
    add_out_argument(parser)
    monkeypatch.delenv("OUT", raising=False)
    assert parser.parse_args([]).out is None
    monkeypatch.setenv("OUT", "/tmp/somewhere")
    parser = argparse.ArgumentParser()
    add_out_argument(parser)
    assert parser.parse_args([]).out == Path("/tmp/somewhere")
    assert parser.parse_args(["--out", "x"]).out == Path("x")


def test_a_cpu_stamp_names_the_cpu():
    run = stamp("cpu")
    assert "CPUs" in run.machine and len(run.date) == 10


def test_committed_results_tables_parse():
    results = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    tables = [p for p in results.glob("*.md") if "| machine | date |" in p.read_text()]
    assert tables, "no results table in benchmarks/results"
    for path in tables:
        columns, rows = read_results(path)[1:]
        assert columns[:2] == ["machine", "date"] and rows, path


def test_run_caption_joins_the_caption_rich_wraps_to_the_tables_width(tmp_path):
    """The wall-time benchmarks quote where a run's time went; rich wraps the caption to the table's width (the
    console's width does not matter), and the quote must hold all of it."""
    import subprocess
    import sys

    from benchmarks.common import run_caption

    dataset = Path(__file__).resolve().parents[2] / "examples" / "dataset"
    out = subprocess.run([sys.executable, "-m", "kernelarena.cli", "run", str(dataset), "--no-save",
                          "--smallest", "1", "--definition", "silu_and_mul_d14336", "--rounds", "1", "--reps", "1"],
                         capture_output=True, text=True, check=True).stdout
    assert len([line for line in out.splitlines() if "time spent" in line]) == 1
    caption = run_caption(out)
    assert caption.startswith("time spent: workers starting") and "worker restarts" in caption
    assert caption.endswith("median of 2)") and "\n" not in caption


def test_timed_cases_are_the_evaluators_timed_inputs_planned():
    """A benchmark's calls get the input sets a run's timed loop gets: the same seeds, the reference's answer."""
    import torch

    from kernelarena.bench.config import RunConfig
    from kernelarena.bench.evaluate import timing_seed
    from kernelarena.bench.inputs import materialize_inputs, reference_module
    from kernelarena.store import TraceSet

    dataset = TraceSet.load(Path(__file__).resolve().parents[2] / "examples" / "dataset", strict=True)
    definition = dataset.definitions["rmsnorm_h4096"]
    workload = next(w.workload for w in dataset.workloads[definition.name] if w.workload.axes["batch_size"] == 32)
    call, _, copies = timed_cases(dataset, "rmsnorm_h4096_pytorch", workload, "cpu", copies=2)
    assert copies == 2
    for i in range(2):
        inputs = materialize_inputs(definition, workload, "cpu", timing_seed(RunConfig(), i), dataset.root)
        expected = reference_module(definition).run(*inputs.values())
        (got,) = call(i)  # the outputs, whether written in place or returned
        torch.testing.assert_close(got.float(), expected.float(), atol=2e-2, rtol=2e-2)


def test_sourcing_the_gpu_environment_succeeds_so_a_command_chained_after_it_runs(tmp_path):
    """`source benchmarks/gpu_env.sh && python3 ...` must run the command whether FlashInfer's JIT stays off (the
    default) or is allowed: the script's last status is the source's. Run from a folder without the packs (the
    script unpacks only what is there)."""
    import shutil
    import subprocess

    (tmp_path / "benchmarks").mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_env.sh", tmp_path / "benchmarks")
    for jit, expect in (("", "1"), ("0", "unset")):
        env = {k: v for k, v in os.environ.items() if k != "FLASHINFER_DISABLE_JIT"}
        if jit:
            env["FLASHINFER_DISABLE_JIT"] = jit
        command = 'source benchmarks/gpu_env.sh && echo "ran ${FLASHINFER_DISABLE_JIT-unset}"'
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0 and result.stdout.strip() == f"ran {expect}", (jit, result.stdout, result.stderr)
