"""kernelarena exercise check: reference answers pass, untouched skeletons fail with a helpful message, a wrong
answer and an unrouted model are caught, and a broken exercise.json names the field at fault."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kernelarena.errors import DatasetError
from kernelarena.exercises import load_exercise

ROOT = Path(__file__).resolve().parents[2]
EXERCISES = ROOT / "exercises"


def check(path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "kernelarena.cli", "exercise", "check", str(path), "--device", "cpu",
                           *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_triton_rmsnorm", "02_interchangeable_attention"])
def test_reference_answer_passes(name):
    done = check(EXERCISES / name, "--reference")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS: every workload passed" in done.stdout
    assert "FAIL" not in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_triton_rmsnorm", "02_interchangeable_attention"])
def test_untouched_skeleton_fails_with_a_hint(name):
    done = check(EXERCISES / name)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "RUNTIME_ERROR: NotImplementedError" in done.stdout
    assert "hint: NotImplementedError: the skeleton is not filled in yet; do the TODOs in solution/" in done.stdout
    assert "FAIL:" in done.stdout


@pytest.mark.slow
def test_wrong_answer_is_incorrect_with_the_error(tmp_path):
    exercise = tmp_path / "01_triton_rmsnorm"
    shutil.copytree(EXERCISES / "01_triton_rmsnorm", exercise)
    answer = (exercise / "reference" / "rmsnorm_triton.py").read_text()
    wrong = answer.replace("y = x * inv_rms * w", "y = x * inv_rms")  # forgets the weight
    assert wrong != answer
    (exercise / "solution" / "rmsnorm_triton.py").write_text(wrong)
    done = check(exercise)
    assert done.returncode == 1
    assert "INCORRECT_NUMERICAL" in done.stdout and "elements outside" in done.stdout
    assert "hint: wrong values" in done.stdout


@pytest.mark.slow
def test_model_not_routed_by_apply_fails_the_routing_check(tmp_path):
    exercise = tmp_path / "02_interchangeable_attention"
    shutil.copytree(EXERCISES / "02_interchangeable_attention", exercise)
    for name in ("paged_decode.py", "dense_sdpa.py"):
        shutil.copy(exercise / "reference" / name, exercise / "solution" / name)
    done = check(exercise)  # solution/model.py is still the undecorated skeleton
    assert done.returncode == 1
    assert done.stdout.count("PASSED") == 4
    assert "apply() routing: FAILED" in done.stdout and "is not routed by apply(); decorate it" in done.stdout


def test_broken_exercise_json_names_the_field(tmp_path):
    exercise = tmp_path / "ex"
    shutil.copytree(EXERCISES / "01_triton_rmsnorm", exercise)
    config = json.loads((exercise / "exercise.json").read_text())
    config["solutions"][0]["language"] = "fortran"
    (exercise / "exercise.json").write_text(json.dumps(config))
    with pytest.raises(DatasetError) as info:
        load_exercise(exercise)
    assert info.value.field == "solutions[0].language" and "fortran" in str(info.value)
    with pytest.raises(DatasetError, match="no exercise.json"):
        load_exercise(tmp_path)


def test_committed_exercises_load():
    for name in ("01_triton_rmsnorm", "02_interchangeable_attention"):
        exercise = load_exercise(EXERCISES / name)
        assert exercise.solutions and exercise.dataset.is_dir()
        for spec in exercise.solutions:
            for file in spec.files:
                assert (exercise.root / "solution" / file).is_file() and (exercise.root / "reference" / file).is_file()
