"""Constraints over axes and input tensors, as FlashInfer-Trace writes them, evaluated without eval."""

import pytest
import torch

from kernelarena.schema import Definition, evaluate_constraint
from kernelarena.schema.constraints import ConstraintError, constraint_names


def test_tensor_expressions_are_evaluated_on_the_inputs():
    indptr = torch.tensor([0, 3, 5], dtype=torch.int32)
    values = {"num_kv_indices": 5, "total_q": 4, "kv_indptr": indptr, "batch_size": 2,
              "sparse_indices": torch.zeros(7, 16), "q": torch.zeros(2, 3, dtype=torch.bfloat16)}
    assert evaluate_constraint("num_kv_indices == kv_indptr[-1].item()", values)
    assert not evaluate_constraint("total_q == kv_indptr[-1].item()", values)
    assert evaluate_constraint("sparse_indices.shape[0] == 7 and sparse_indices.shape[-1] == 16", values)
    assert evaluate_constraint("kv_indptr.shape[0] == batch_size + 1", values)
    assert evaluate_constraint("kv_indptr[1:].shape[0] == batch_size", values)
    assert evaluate_constraint("kv_indptr[-1] == num_kv_indices", values)  # a 0-d tensor compared
    assert evaluate_constraint("q.dtype == 'bfloat16'", values)
    assert evaluate_constraint("len(kv_indptr) == 3 and int(kv_indptr[1]) == 3", values)
    assert constraint_names("num_kv_indices == kv_indptr[-1].item()") == {"num_kv_indices", "kv_indptr"}


@pytest.mark.parametrize("bad", [
    "kv_indptr.__class__", "kv_indptr.sum()", "kv_indptr.item(1)", "kv_indptr.numpy", "getattr(kv_indptr, 'x')",
    "kv_indptr.item", "[x for x in kv_indptr]", "kv_indptr[0].item(foo=1)", "(lambda: 1)()", "'a' * 3",
    "kv_indptr.shape * 10 ** 9", "1 << 100000", "((10 ** 64) ** 64) ** 64",
])
def test_anything_else_is_refused(bad):
    with pytest.raises(ConstraintError):
        evaluate_constraint(bad, {"kv_indptr": torch.arange(3)})


def test_evaluation_errors_name_the_constraint():
    with pytest.raises(ConstraintError, match=r"kv_indptr\[5\]"):
        evaluate_constraint("kv_indptr[5] == 0", {"kv_indptr": torch.arange(3)})
    with pytest.raises(ConstraintError, match="has no value"):
        evaluate_constraint("kv_indptr[-1] == 0", {})
    with pytest.raises(ConstraintError, match="cannot be evaluated"):
        evaluate_constraint("kv_indptr == 0", {"kv_indptr": torch.arange(3)})  # many elements at once


def _decode_definition(constraints):
    return Definition.model_validate({
        "name": "d", "op_type": "gqa_paged", "reference": "def run(q, kv_indptr):\n    return q\n",
        "axes": {"batch_size": {"type": "var"}, "len_indptr": {"type": "var"}, "num_kv_indices": {"type": "var"},
                 "h": {"type": "const", "value": 4}},
        "inputs": {"q": {"shape": ["batch_size", "h"], "dtype": "float32"},
                   "kv_indptr": {"shape": ["len_indptr"], "dtype": "int32"}},
        "outputs": {"o": {"shape": ["batch_size", "h"], "dtype": "float32"}},
        "constraints": constraints})


def test_static_constraints_are_checked_from_axes_and_tensor_ones_when_inputs_exist():
    d = _decode_definition(["len_indptr == batch_size + 1", "num_kv_indices == kv_indptr[-1].item()"])
    assert d.constraint_inputs == {"len_indptr == batch_size + 1": frozenset(),
                                   "num_kv_indices == kv_indptr[-1].item()": frozenset({"kv_indptr"})}
    axes = {"batch_size": 2, "len_indptr": 3, "num_kv_indices": 6}
    assert d.violated_constraints(axes) == []  # axes alone: the tensor constraint waits for the inputs
    assert d.violated_constraints({**axes, "len_indptr": 4}) == ["len_indptr == batch_size + 1"]
    good, bad = torch.tensor([0, 2, 6], dtype=torch.int32), torch.tensor([0, 2, 5], dtype=torch.int32)
    assert d.violated_constraints(axes, {"kv_indptr": good}) == []
    assert d.violated_constraints(axes, {"kv_indptr": bad}) == ["num_kv_indices == kv_indptr[-1].item()"]


def test_a_constraint_naming_neither_axis_nor_input_is_rejected_at_load():
    with pytest.raises(ValueError, match=r"\['kv_indices'\], which are neither axes nor inputs"):
        _decode_definition(["kv_indices[-1].item() >= 0"])
    with pytest.raises(ValueError, match=r"constraints\[0\].*attribute \.T"):
        _decode_definition(["kv_indptr.T.shape[0] == 1"])
