"""The default comparison of outputs with the reference's: tolerances, NaN and infinities, the figures and the
message it reports, and the number of times it waits for the device."""

from __future__ import annotations

import math

import pytest
import torch

from kernelarena.bench import correctness
from kernelarena.bench.correctness import compare_outputs
from kernelarena.schema import Definition, Status, Tolerance

TOL = Tolerance(atol=1e-2, rtol=1e-2)


def _definition(dtype: str = "float32", outputs=("y",)) -> Definition:
    return Definition.model_validate({
        "name": "d", "op_type": "elementwise", "axes": {"n": {"type": "var"}},
        "inputs": {"x": {"shape": ["n"], "dtype": dtype}},
        "outputs": {name: {"shape": ["n"], "dtype": dtype} for name in outputs},
        "reference": "def run(x):\n    return x\n", "tolerance": TOL.model_dump()})


def _compare(out, ref, dtype="float32"):
    return compare_outputs(_definition(dtype), [out], [ref])


def test_within_tolerance_passes_with_its_largest_errors():
    ref = torch.tensor([1.0, 2.0, -4.0, 0.0])
    out = ref + torch.tensor([0.005, -0.02, 0.04, 0.0])
    result = _compare(out, ref)
    assert result.status == Status.PASSED, result.message
    assert result.max_absolute_error == pytest.approx(0.04, rel=1e-5)
    assert result.max_relative_error == pytest.approx(0.01, rel=1e-5)  # 0.04 / 4 and 0.02 / 2


def test_outside_tolerance_names_the_count_and_the_first_element():
    ref = torch.tensor([1.0, 2.0, 3.0, 4.0])
    out = torch.tensor([1.0, 2.5, 3.0, 4.5])  # atol + rtol * |ref|: 0.03 at 2.0, 0.05 at 4.0
    result = _compare(out, ref)
    assert result.status == Status.INCORRECT_NUMERICAL
    assert "'y': 2 of 4 elements outside atol=0.01 rtol=0.01" in result.message
    assert "first at (1,): got 2.5, expected 2.0" in result.message
    assert result.max_absolute_error == pytest.approx(0.5)


def test_nan_where_the_reference_has_nan_passes_and_nowhere_else():
    nan, inf = math.nan, math.inf
    assert _compare(torch.tensor([nan, 1.0]), torch.tensor([nan, 1.0])).status == Status.PASSED
    assert _compare(torch.tensor([inf, -inf]), torch.tensor([inf, -inf])).status == Status.PASSED
    wrong_nan = _compare(torch.tensor([nan, 1.0]), torch.tensor([0.0, 1.0]))
    assert wrong_nan.status == Status.INCORRECT_NUMERICAL and math.isinf(wrong_nan.max_absolute_error)
    assert _compare(torch.tensor([inf, 1.0]), torch.tensor([-inf, 1.0])).status == Status.INCORRECT_NUMERICAL


def test_shape_dtype_count_and_empty_outputs():
    assert _compare(torch.zeros(3), torch.zeros(4)).status == Status.INCORRECT_SHAPE
    assert _compare(torch.zeros(4, dtype=torch.float64), torch.zeros(4)).status == Status.INCORRECT_DTYPE
    assert compare_outputs(_definition(), [], [torch.zeros(1)]).status == Status.INCORRECT_SHAPE
    assert _compare(torch.zeros(0), torch.zeros(0)).status == Status.PASSED


def test_bf16_is_compared_in_float64():
    ref = torch.randn(4096, dtype=torch.bfloat16)
    result = _compare(ref.clone(), ref, "bfloat16")
    assert result.status == Status.PASSED and result.max_absolute_error == 0.0


def test_a_passing_comparison_reads_its_figures_back_once(monkeypatch):
    """Each read of a device value waits for the device: behind another process's kernels (time-sliced), a wait
    is a turn. A comparison that passes reads everything it needs back at once."""
    reads = []
    real = correctness._read_back
    monkeypatch.setattr(correctness, "_read_back", lambda t: reads.append(t) or real(t))
    ref = torch.randn(1000)
    assert _compare(ref + 1e-4, ref).status == Status.PASSED
    assert len(reads) == 1
    reads.clear()
    assert _compare(ref + 1.0, ref).status == Status.INCORRECT_NUMERICAL
    assert len(reads) >= 1  # a failure may read more, for its message
