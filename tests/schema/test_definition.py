import json

import pytest
import torch
from pydantic import ValidationError

from kernelarena.schema import Definition, evaluate_constraint
from kernelarena.schema.constraints import ConstraintError


def make(**overrides):
    record = {
        "name": "norm", "op_type": "rmsnorm",
        "axes": {"b": {"type": "var"}, "h": {"type": "const", "value": 8}},
        "inputs": {"x": {"shape": ["b", "h"], "dtype": "bfloat16"}, "eps": {"shape": None, "dtype": "float32"}},
        "outputs": {"y": {"shape": ["b", "h"], "dtype": "bfloat16"}},
        "reference": "def run(x, eps):\n    return x\n",
        "constraints": ["b >= 1"],
    }
    record.update(overrides)
    return Definition.model_validate(record)


def test_round_trip_is_exact_and_keeps_unknown_fields():
    d = make(custom_field={"a": 1})
    again = Definition.model_validate_json(d.to_json())
    assert again == d
    assert json.loads(again.to_json())["custom_field"] == {"a": 1}
    assert json.loads(d.to_json())["inputs"]["eps"]["shape"] is None  # a scalar keeps its null shape
    assert d.unknown_fields() == ["custom_field"]


@pytest.mark.parametrize("overrides, message", [
    ({"inputs": {"x": {"shape": ["b", "zz"], "dtype": "bfloat16"}}}, "axis 'zz' is not declared"),
    ({"inputs": {"x": {"shape": ["b"], "dtype": "complex64"}}}, "inputs.x.dtype"),
    ({"outputs": {"x": {"shape": ["b"], "dtype": "float32"}}}, "share the names"),
    ({"reference": "def forward(x):\n    return x\n"}, "must define a top-level function 'run'"),
    ({"reference": "def run(x:\n"}, "not valid Python"),
    ({"constraints": ["__import__('os').system('true')"]}, "not allowed"),
    ({"constraints": ["q > 1"]}, "['q'], which are neither axes nor inputs"),
    ({"name": "../evil"}, "not a safe name"),
    ({"axes": {"b": {"type": "const", "value": -1}}}, "greater than or equal to 0"),
])
def test_invalid_definitions_say_what_is_wrong(overrides, message):
    with pytest.raises(ValidationError) as info:
        make(**overrides)
    assert message in str(info.value)


def test_shapes_and_axis_inference():
    d = make()
    assert d.shapes({"b": 3}) == {"x": (3, 8), "eps": None}
    assert d.shapes({"b": 3}, "outputs") == {"y": (3, 8)}
    assert d.infer_axes([torch.empty(5, 8), 1e-6]) == {"b": 5}
    with pytest.raises(ValueError, match="no value for axis 'b'"):
        d.shapes({})
    with pytest.raises(ValueError, match=r"dim 1 \(h\) is 7, the definition fixes it at 8"):
        d.infer_axes({"x": torch.empty(5, 7)})
    with pytest.raises(ValueError, match="rank 1"):
        d.infer_axes({"x": torch.empty(5)})


def test_axis_disagreement_between_inputs_is_named():
    d = make(inputs={"x": {"shape": ["b", "h"], "dtype": "bfloat16"}, "r": {"shape": ["b", "h"], "dtype": "bfloat16"}},
             reference="def run(x, r):\n    return x\n")
    with pytest.raises(ValueError, match="axis 'b' is 4 in input 'x' but 6 in input 'r'"):
        d.infer_axes({"x": torch.empty(4, 8), "r": torch.empty(6, 8)})


def test_constraints_are_evaluated_without_eval():
    assert evaluate_constraint("n == b + 1 and max(b, 2) <= 10", {"n": 5, "b": 4})
    assert not evaluate_constraint("n % 16 == 0", {"n": 17})
    assert make().violated_constraints({"b": 0}) == ["b >= 1"]
    for bad in ("(lambda: 1)()", "x.__class__", "[i for i in range(3)]", "open('f')", "'a' * 3"):
        with pytest.raises(ConstraintError):
            evaluate_constraint(bad, {"x": 1})
    with pytest.raises(ConstraintError, match="too large"):
        evaluate_constraint("2 ** 100000 > 1", {})
