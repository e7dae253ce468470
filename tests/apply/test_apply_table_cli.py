"""`kernelarena apply-table DATASET` prints what apply() would choose."""

from __future__ import annotations

from typer.testing import CliRunner

from kernelarena.cli import app

from .tiny_dataset import DEFINITION, make_dataset, marking, trace


def test_apply_table_lists_keys_choices_speedups_and_policy(tmp_path):
    root = tmp_path / "ds"
    make_dataset(root, [marking("a", 1), marking("b", 2)],
                 [trace("a", 4, 0.5), trace("b", 4, 0.25, abs_error=0.2), trace("a", 16, 0.1)])
    result = CliRunner().invoke(app, ["apply-table", str(root), "--unseen", "nearest"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if DEFINITION in line]
    assert len(lines) == 2
    assert "rows=4" in lines[0] and " b " in lines[0] and "4.00x" in lines[0] and "nearest" in lines[0]
    assert "rows=16" in lines[1] and " a " in lines[1] and "10.00x" in lines[1]
    strict = CliRunner().invoke(app, ["apply-table", str(root), "--max-abs-error", "0.1"])
    assert " a " in next(line for line in strict.output.splitlines() if "rows=4" in line)
    bad = CliRunner().invoke(app, ["apply-table", str(root), "--unseen", "sometimes"])
    assert bad.exit_code != 0
