import math

import pytest
import torch

from kernelarena.report.leaderboard import build_leaderboards
from kernelarena.schema.dtypes import torch_dtype
from tests.report.report_dataset import CPU, DECODE, GPU, RMSNORM, report_dataset

FAST, SLOW, BROKEN = "rmsnorm_h4096_kernelarena_triton", "rmsnorm_h4096_pytorch", "rmsnorm_h4096_flashinfer"


@pytest.fixture(scope="module")
def sections(tmp_path_factory):
    ds = report_dataset(tmp_path_factory.mktemp("report") / "dataset")
    return ds, {s.hardware: s for s in build_leaderboards(ds)}


def test_one_section_per_hardware_with_a_board_per_definition_traced_there(sections):
    ds, by_hw = sections
    assert [s.hardware for s in build_leaderboards(ds)] == [CPU, GPU]
    assert [b.definition for b in by_hw[GPU].boards] == [RMSNORM]
    assert [b.definition for b in by_hw[CPU].boards] == [DECODE, RMSNORM]
    assert [b.definition for b in build_leaderboards(ds, [DECODE])[0].boards] == [DECODE]
    with pytest.raises(KeyError, match="no definition 'nope'"):
        build_leaderboards(ds, ["nope"])


def test_cells_show_the_newest_trace_and_why_a_solution_failed(sections):
    _, by_hw = sections
    board = by_hw[GPU].boards[0]
    w1, w32, w1024 = (w.uuid for w in board.workloads)
    assert [w.size for w in board.workloads] == [1, 32, 1024] and board.size_label == "batch_size"
    newest = board.cell(FAST, w1)
    assert (newest.latency_ms, newest.speedup, newest.sol_fraction, newest.runs) == (0.005, 2.0, 0.10, 2)
    assert board.cell(BROKEN, w1).status == "RUNTIME_ERROR"
    assert board.cell(BROKEN, w1).reason == "RuntimeError: CUDA error: misaligned address"
    assert board.cell(BROKEN, w32).reason == "max abs error 0.5, max rel error 0.25"
    assert board.cell(BROKEN, w1024) is None and board.cell(SLOW, w1024).latency_ms == 0.080
    assert [board.best_on(w) for w in (w1, w32, w1024)] == [FAST, FAST, FAST]


def test_scores_are_geometric_means_over_passed_workloads_best_first(sections):
    _, by_hw = sections
    board = by_hw[GPU].boards[0]
    assert board.solutions == [FAST, SLOW, BROKEN]
    fast = board.scores[FAST]
    assert fast.geomean_speedup == pytest.approx((2.0 * 8.0 * 4.0) ** (1 / 3))
    assert fast.mean_sol_fraction == pytest.approx((0.10 + 0.40 + 0.85) / 3)
    assert (fast.passed, fast.evaluated) == (3, 3)
    broken = board.scores[BROKEN]
    assert (broken.passed, broken.evaluated, broken.geomean_speedup, broken.mean_sol_fraction) == (0, 2, None, None)
    assert board.has_speed_of_light and not by_hw[CPU].boards[0].has_speed_of_light


def test_workloads_of_several_variable_axes_are_sized_by_their_bytes(sections):
    ds, by_hw = sections
    board = by_hw[CPU].boards[0]
    definition = ds.definitions[DECODE]
    assert board.size_label == "bytes of inputs and outputs"
    for row in board.workloads:
        expected = 0
        for which in ("inputs", "outputs"):
            specs = getattr(definition, which)
            for name, shape in definition.shapes(row.axes, which).items():
                element = torch.empty((), dtype=torch_dtype(specs[name].dtype)).element_size()
                expected += math.prod(shape or ()) * element
        assert row.size == expected
    assert board.workloads[0].size < board.workloads[1].size
    assert board.cell("kernelarena_triton_gqa_paged_decode_h32_kv8_d128_ps16", board.workloads[0].uuid).reason == \
        "triton.compiler.errors.CompilationError: at 3:4: bad"


def test_environment_lists_every_version_with_its_trace_count(sections):
    _, by_hw = sections
    env = by_hw[GPU].environment
    assert env.traces == 9 and env.libs["torch"] == {"2.13.0": 8, "2.12.0": 1}
    assert env.timing_modes == {"cuda-events-cold-l2": 7}
    assert (env.first, env.last) == ("2026-12-01T09:00:00+00:00", "2026-12-01T10:00:00+00:00")
    assert by_hw[CPU].environment.timing_modes == {"cpu-wall": 3}
