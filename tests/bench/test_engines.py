"""Engine choice and cluster placement (no cluster needed): which device slots a solution may run on."""

import os
import subprocess
import sys

import pytest

from kernelarena.bench.engines import make_engine
from kernelarena.bench.engines.placement import SlotKind, admits, no_placement_reason, placements, slot_kinds
from kernelarena.schema import Solution


def solution(*targets: str) -> Solution:
    return Solution.model_validate({
        "name": "s", "definition": "d", "author": "tests",
        "spec": {"language": "python", "target_hardware": list(targets), "entry_point": "main.py::run"},
        "sources": [{"path": "main.py", "content": "def run(x):\n    return x\n"}]})


CPU, H100, H200, GPU = SlotKind("cpu"), SlotKind("cuda", "H100"), SlotKind("cuda", "H200"), SlotKind("cuda")


def test_slot_kinds_count_gpus_per_model_and_cpu_slots():
    nodes = [{"CPU": 64, "GPU": 8, "accelerator_type:H100": 1},
             {"CPU": 64, "GPU": 4, "accelerator_type:H200": 1, "kernelarena_cpu": 2},
             {"CPU": 64, "GPU": 2, "accelerator_type:H100": 1},
             {"CPU": 8}]  # no GPU, no CPU slot: offers nothing
    assert slot_kinds(nodes) == {H100: 10, H200: 4, CPU: 2}


def test_targets_admit_cpu_any_gpu_or_a_named_model():
    assert admits(solution("cpu"), CPU) and not admits(solution("cpu"), H100)
    assert admits(solution("cuda"), H100) and admits(solution("gpu"), GPU) and not admits(solution("cuda"), CPU)
    assert admits(solution("H100"), H100) and not admits(solution("H100"), H200)
    assert admits(solution("NVIDIA_H200"), H200) and admits(solution("nvidia h100 80gb"), H100)
    assert not admits(solution("H100"), GPU)  # a GPU of unknown model does not satisfy a named model


def test_placements_prefer_gpus_then_the_cpu():
    kinds = [CPU, H100, H200]
    assert placements(solution("cpu", "cuda"), kinds) == [H100, H200]
    assert placements(solution("cpu", "cuda"), [CPU]) == [CPU]
    assert placements(solution("B200"), kinds) == []
    reason = no_placement_reason(solution("B200"), kinds)
    assert "['B200']" in reason and "cpu, cuda:H100, cuda:H200" in reason


def test_ray_options_bind_one_gpu_or_one_cpu_slot():
    assert H200.ray_options() == {"num_cpus": 0, "num_gpus": 1, "resources": {"accelerator_type:H200": 0.001}}
    assert CPU.ray_options() == {"num_cpus": 0, "resources": {"kernelarena_cpu": 1}}


def test_make_engine_names_what_is_wrong():
    assert make_engine("local") is None and make_engine("local", address=None) is None
    with pytest.raises(ValueError, match="unknown engine 'spark': expected one of local, ray"):
        make_engine("spark")
    with pytest.raises(ValueError, match="local engine takes no options .*--address"):
        make_engine("local", address="auto")


def test_ray_engine_checks_its_options():
    pytest.importorskip("ray")
    with pytest.raises(ValueError, match="max_attempts=0: must be at least 1"):
        make_engine("ray", max_attempts=0)


def test_cli_refuses_an_unknown_engine_or_an_address_without_ray(example_dataset):
    def kernelarena(*args):
        return subprocess.run([sys.executable, "-m", "kernelarena.cli", "run", str(example_dataset), "--no-save",
                               *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "COLUMNS": "300"})  # the error box wraps at the width

    result = kernelarena("--engine", "spark")
    assert result.returncode == 2 and "unknown engine 'spark'" in result.stdout + result.stderr
    result = kernelarena("--address", "auto")
    assert result.returncode == 2 and "local engine takes no options (got --address)" in result.stdout + result.stderr
