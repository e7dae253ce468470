"""The build cache across processes: reuse from disk, and concurrent builds of one solution."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from kernelarena.build import build_solution

from .conftest import cxx_available, make_solution
from .test_native_builders import tvm_ffi_cpp_add

# Builds the solution in tmp/solution.json once the file tmp/go exists, runs it, prints what happened.
WORKER = textwrap.dedent("""
    import json, pathlib, sys, time
    import torch
    from kernelarena.build import build_solution
    from kernelarena.schema import Solution

    folder = pathlib.Path(sys.argv[1])
    solution = Solution.model_validate_json((folder / "solution.json").read_text())
    while not (folder / "go").exists():
        time.sleep(0.01)
    runnable = build_solution(solution, device="cpu")
    a, b, out = torch.arange(5.0), torch.ones(5), torch.zeros(5)
    runnable(a, b, out)
    print(json.dumps({"from_cache": runnable.from_cache, "ok": bool(torch.equal(out, a + b)),
                      "key": runnable.cache_key}))
""")


def run_workers(tmp_path, solution, count, cache_dir):
    (tmp_path / "solution.json").write_text(solution.model_dump_json())
    env = {**__import__("os").environ, "KERNELARENA_CACHE_DIR": str(cache_dir)}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(count)]
    (tmp_path / "go").touch()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_python_build_is_reused_by_a_new_process(tmp_path, cache_dir):
    solution = make_solution("py_add_proc", "python", "main.py::run",
                             {"main.py": "def run(a, b, out):\n    out.copy_(a + b)\n"})
    first = build_solution(solution)
    assert not first.from_cache
    (result,) = run_workers(tmp_path, solution, 1, cache_dir)
    assert result == {"from_cache": True, "ok": True, "key": first.cache_key}


@pytest.mark.skipif(not cxx_available(), reason="needs a C++ compiler (c++)")
def test_concurrent_builds_compile_once_and_all_run(tmp_path, cache_dir):
    results = run_workers(tmp_path, tvm_ffi_cpp_add("cpp_tvm_add_concurrent"), 3, cache_dir)
    assert all(r["ok"] for r in results)
    assert sorted(r["from_cache"] for r in results) == [False, True, True]  # one compiled, two waited
    builds = cache_dir / "build"
    assert [p.name for p in builds.iterdir() if p.is_dir()] == [results[0]["key"]]  # no staging folder left
    manifest = json.loads((builds / results[0]["key"] / "manifest.json").read_text())
    assert manifest["solution"] == "cpp_tvm_add_concurrent" and manifest["builder"] == "tvm_ffi"
    # And a later process loads the library from disk without compiling.
    (again,) = run_workers(tmp_path, tvm_ffi_cpp_add("cpp_tvm_add_concurrent"), 1, cache_dir)
    assert again["from_cache"] and again["ok"]


def test_key_depends_on_the_target_device(cache_dir):
    from kernelarena.build.cache import build_key
    from kernelarena.build.registry import find_builder
    from kernelarena.build.toolchain import BuildTarget

    solution = make_solution("py_key", "python", "main.py::run", {"main.py": "def run():\n    pass\n"})
    builder = find_builder(solution)
    keys = {build_key(solution, builder, target) for target in
            (BuildTarget("cpu"), BuildTarget("cuda:0", (9, 0)), BuildTarget("cuda:1", (9, 0)),
             BuildTarget("cuda:0", (8, 0)))}
    assert len(keys) == 3  # two sm_90 GPUs share a build; sm_80 and the CPU get their own
