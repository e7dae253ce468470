"""The learning path's examples (examples/0N_*/) run to the end on this machine, each as a subprocess, as a
learner runs them; GPU-only parts say so and skip."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
GPU = torch.cuda.is_available()


def run_example(script: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_01_attention_basics_matches_the_reference():
    out = run_example("01_attention_basics/attention_basics.py")
    errors = [float(line.split("out ")[-1].split()[0]) for line in out.splitlines() if "max |error| vs" in line]
    assert errors and errors[0] < 0.05, out
    assert "kernel chosen by plan(): " in out and out.rstrip().endswith("ok")
    if not GPU:
        assert "kv_indptr        [0, 2, 5, 6]" in out
        assert "kernel chosen by plan(): persistent Triton" in out
        assert "prefill kernel chosen by plan(): persistent Triton" in out
        assert "skipped: FlashInfer needs a GPU" in out


@pytest.mark.slow
def test_02_trace_schema_writes_validates_and_evaluates():
    out = run_example("02_trace_schema/trace_schema.py")
    assert "equal after the round trip: True" in out
    assert "spec.entry_point" in out and "workload.axes.rows: not an axis" in out
    assert "workloads/activation/silu_and_mul_d1024.jsonl" in out
    assert out.count(": PASSED (") == 3, out


@pytest.mark.slow
def test_03_apply_routes_falls_back_and_traces():
    out = run_example("03_apply/apply_basics.py")
    assert "batch 1 -> rmsnorm_h4096_" in out and "max |difference| from the fallback 0" in out
    assert "batch 5 (never benchmarked) -> the fallback" in out
    assert "batch 5 -> rmsnorm_h4096_" in out  # unseen="nearest"
    assert "-> 2 new workloads" in out and "{'batch_size': 17}" in out


@pytest.mark.slow
def test_04_custom_kernels_triton_passes_and_gpu_kernels_say_why_not():
    out = run_example("04_custom_kernels/custom_kernels.py")
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("example04_")}
    assert " PASSED " in lines["example04_rmsnorm_triton"], out
    if GPU:
        assert " PASSED " in lines["example04_rmsnorm_cuda"] and " PASSED " in lines["example04_rmsnorm_tilelang"], out
    else:
        for kind in ("cuda", "tilelang"):
            assert "skipped: target_hardware ['cuda'] does not include cpu" in lines[f"example04_rmsnorm_{kind}:"], out


@pytest.mark.slow
def test_05_integration_before_and_after():
    if importlib.util.find_spec("flashinfer") is None:
        pytest.skip("flashinfer is not installed (scripts/install.sh installs it)")
    out = run_example("05_integration/integration.py")
    assert f"patched: True; batch {32 if GPU else 1} routed to rmsnorm_h4096_" in out
    assert "FlashInfer's original is back: True" in out
    assert "greedy tokens before vs after: " in out and "after (patched, routed to [" in out
    if not GPU:
        assert "greedy tokens before vs after: identical" in out
    assert out.rstrip().endswith("ok")
