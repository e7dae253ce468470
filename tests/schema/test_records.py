import math

import pytest
from pydantic import ValidationError

from kernelarena.schema import Evaluation, Solution, Status, Trace, Workload


def solution(**spec_overrides):
    spec = {"language": "python", "target_hardware": ["cpu"], "entry_point": "main.py::run"}
    spec.update(spec_overrides)
    return {"name": "s", "definition": "d", "author": "me", "spec": spec,
            "sources": [{"path": "main.py", "content": "def run(x):\n    return x\n"}]}


def test_solution_round_trip_and_hash():
    s = Solution.model_validate(solution())
    assert Solution.model_validate_json(s.to_json()) == s
    renamed = Solution.model_validate({**solution(), "name": "other", "author": "you"})
    assert renamed.content_hash() == s.content_hash()
    changed = Solution.model_validate(solution(destination_passing_style=False))
    assert changed.content_hash() != s.content_hash()


@pytest.mark.parametrize("path", ["../x.py", "/etc/passwd", "a/../../b.py", "C:\\x.py", "..\\x.py"])
def test_source_paths_must_stay_inside(path):
    record = solution(entry_point=f"{path}::run")
    record["sources"][0]["path"] = path
    with pytest.raises(ValidationError, match="source path"):
        Solution.model_validate(record)


@pytest.mark.parametrize("entry, message", [("main.py", "must look like"), ("main.py::", "must look like"),
                                            ("other.py::run", "not among the sources")])
def test_entry_point_checked(entry, message):
    with pytest.raises(ValidationError, match=message):
        Solution.model_validate(solution(entry_point=entry))


def test_unknown_language_rejected():
    with pytest.raises(ValidationError, match="spec.language"):
        Solution.model_validate(solution(language="fortran"))


def workload():
    return {"uuid": "u1", "axes": {"b": 4},
            "inputs": {"x": {"type": "random"}, "eps": {"type": "scalar", "value": 1e-6},
                       "w": {"type": "safetensors", "path": "blob/a.safetensors", "tensor_key": "w"}}}


def test_workload_inputs_by_type():
    w = Workload.model_validate(workload())
    assert [type(i).__name__ for i in w.inputs.values()] == ["RandomInput", "ScalarInput", "SafetensorsInput"]
    bad = workload()
    bad["inputs"]["w"]["path"] = "../../outside.safetensors"
    with pytest.raises(ValidationError, match="relative to the dataset root"):
        Workload.model_validate(bad)


def evaluation(status, correctness=True, performance=True):
    return {"status": status, "environment": {"hardware": "cpu"}, "timestamp": "2026-11-24T00:00:00Z",
            **({"correctness": {"max_relative_error": math.nan, "max_absolute_error": math.inf}}
               if correctness else {}),
            **({"performance": {"latency_ms": 1.0, "reference_latency_ms": 2.0, "speedup_factor": 2.0}}
               if performance else {})}


def test_status_decides_which_figures_are_present():
    Evaluation.model_validate(evaluation("PASSED"))
    Evaluation.model_validate(evaluation("INCORRECT_NUMERICAL", performance=False))
    Evaluation.model_validate(evaluation("RUNTIME_ERROR", correctness=False, performance=False))
    with pytest.raises(ValidationError, match="performance must be absent"):
        Evaluation.model_validate(evaluation("INCORRECT_NUMERICAL"))
    with pytest.raises(ValidationError, match="correctness must be present"):
        Evaluation.model_validate(evaluation("PASSED", correctness=False))


def test_trace_round_trip_with_nan_and_workload_entries():
    t = Trace.model_validate({"definition": "d", "workload": workload(), "solution": "s",
                              "evaluation": evaluation("INCORRECT_NUMERICAL", performance=False)})
    again = Trace.model_validate_json(t.to_json())
    assert math.isnan(again.evaluation.correctness.max_relative_error)
    assert again.evaluation.status is Status.INCORRECT_NUMERICAL
    entry = Trace.model_validate({"definition": "d", "workload": workload()})
    assert entry.is_workload and not entry.passed
    with pytest.raises(ValidationError, match="both solution and evaluation, or neither"):
        Trace.model_validate({"definition": "d", "workload": workload(), "solution": "s"})
