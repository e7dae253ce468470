"""The repeat diag's summary and arguments (its timing runs on the GPU machine only)."""

import pytest

from benchmarks import diag_ties


def test_summarize_counts_repetitions_at_or_above_even():
    s = diag_ties.summarize([0.985, 1.003, 1.019, 1.0, 0.990])
    assert s["median"] == 1.0
    assert (s["min"], s["max"]) == (0.985, 1.019)
    assert (s["at_least_even"], s["repeats"]) == (3, 5)


def test_summarize_refuses_no_repetitions():
    with pytest.raises(ValueError, match="no repetitions"):
        diag_ties.summarize([])


def test_summary_cells_lists_every_ratio_then_the_median():
    cells = diag_ties.summary_cells([0.99, 1.01, 1.02])
    assert cells == "0.990 1.010 1.020 | **1.010x** | 0.990-1.020 | 2/3"


def test_parse_pairs_reads_shapes_and_names_the_option_at_fault():
    assert diag_ties.parse_pairs("8192x4096, 64x8192", "--rmsnorm-shapes") == [(8192, 4096), (64, 8192)]
    with pytest.raises(SystemExit, match="--decode-cases: '64by8192'"):
        diag_ties.parse_pairs("64by8192", "--decode-cases")


def test_main_refuses_unknown_parts(capsys):
    with pytest.raises(SystemExit):
        diag_ties.main(["--parts", "rmsnorm,prefill"])
    assert "--parts: unknown ['prefill']" in capsys.readouterr().err
