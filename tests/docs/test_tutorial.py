"""docs/tutorial.md works as written: its python and bash blocks run in order, in an empty folder."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs a tutorial and a README example end to end (about 90 s)

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```(python|bash)\n(.*?)^```", re.S | re.M)


def blocks(page: Path):
    return BLOCK.findall(page.read_text())


def run_blocks(page: Path, folder: Path) -> list:
    """Run each block as a reader would paste it (python blocks as scripts, bash with `kernelarena` being this
    interpreter's); return the outputs. Fails naming the block that failed."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    outputs = []
    for number, (language, code) in enumerate(blocks(page), start=1):
        if language == "python":
            script = folder / f"block_{number}.py"
            script.write_text(code)
            command = [sys.executable, str(script)]
        else:
            command = ["bash", "-euo", "pipefail", "-c",
                       f'kernelarena() {{ "{sys.executable}" -m kernelarena.cli "$@"; }}\n{code}']
        result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"block {number} ({language}) failed:\n{code}\n{result.stdout}{result.stderr}"
        outputs.append(result.stdout)
    return outputs


def test_the_tutorial_runs_as_written(tmp_path):
    page = ROOT / "docs" / "tutorial.md"
    assert [language for language, _ in blocks(page)] == ["python", "bash", "bash", "python", "python"]
    outputs = run_blocks(page, tmp_path)
    assert "solutions/activation/silu_and_mul_d256/silu_and_mul_triton.json" in outputs[0]
    assert "ok: 1 definitions, 2 solutions, 2 workloads" in outputs[1]
    assert "4 traces" in outputs[2] and "PASSED 4" in outputs[2]
    assert outputs[3].count("PASSED") == 4
    assert "tokens=16 routed to {(16,): 'silu_and_mul_" in outputs[4]


def test_the_readme_python_api_example_runs_once_as_a_script(tmp_path):
    """Saved as a script, the example runs its body once (the workers import the script again)."""
    readme = (ROOT / "README.md").read_text()
    example = readme.split("## Python API", 1)[1]
    (code,) = BLOCK.findall(example)[:1][0][1:]
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "dataset").symlink_to(ROOT / "examples" / "dataset")
    script = tmp_path / "example.py"
    script.write_text(code)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout.count("rmsnorm_h4096 ") == 1 and result.stdout.startswith("rmsnorm_h4096 2 "), result.stdout
    assert not (ROOT / "examples" / "dataset" / "traces").exists()
