"""Python solutions: package loading, sibling imports, isolation between solutions, errors."""

from __future__ import annotations

import pytest
import torch

from kernelarena.build import BuildCache, build_solution
from kernelarena.errors import BuildError

from .conftest import make_solution

ADD = "import torch\n\ndef run(a, b, out):\n    torch.add(a, b, out=out)\n"


def test_python_solution_runs(cache_dir):
    runnable = build_solution(make_solution("py_add", "python", "main.py::run", {"main.py": ADD}))
    a, b, out = torch.ones(4), torch.arange(4.0), torch.empty(4)
    runnable(a, b, out)
    assert torch.equal(out, a + b)
    assert runnable.solution == "py_add" and runnable.destination_passing_style
    assert runnable.can_run_on("cpu") and not runnable.can_run_on("cuda")
    assert runnable.build_dir.parent == cache_dir / "build" and runnable.build_dir.name == runnable.cache_key
    assert (runnable.build_dir / "src" / "main.py").read_text() == ADD
    assert not runnable.from_cache


def test_relative_and_plain_sibling_imports(cache_dir):
    files = {
        "main.py": "from .helpers import scale\nimport consts\n\ndef run(x):\n    return scale(x) + consts.OFFSET\n",
        "helpers.py": "def scale(x):\n    return 2 * x\n",
        "consts.py": "OFFSET = 1\n",
    }
    runnable = build_solution(make_solution("py_siblings", "python", "main.py::run", files,
                                            destination_passing_style=False))
    assert runnable(torch.tensor([1.0])).item() == 3.0


def test_same_file_names_do_not_collide(cache_dir):
    def solution(value):
        files = {"main.py": "import consts\nfrom .kernel import k\n\ndef run():\n    return k() + consts.V\n",
                 "kernel.py": f"def k():\n    return {value}\n", "consts.py": f"V = {value * 10}\n"}
        return make_solution(f"py_collide_{value}", "python", "main.py::run", files)

    first, second = build_solution(solution(1)), build_solution(solution(2))
    assert (first(), second()) == (11, 22)


def test_entry_in_subfolder(cache_dir):
    files = {"pkg/impl.py": "from ..util import one\n\ndef run():\n    return one()\n",
             "util.py": "def one():\n    return 1\n"}
    assert build_solution(make_solution("py_sub", "python", "pkg/impl.py::run", files))() == 1


def test_second_build_is_a_memory_hit_and_a_new_cache_reads_disk(cache_dir):
    sol = make_solution("py_cached", "python", "main.py::run", {"main.py": ADD})
    first = build_solution(sol)
    again = build_solution(sol)
    assert again.from_cache and again.entry is first.entry
    fresh = build_solution(sol, cache=BuildCache())  # a new in-memory cache over the same disk root
    assert fresh.from_cache and fresh.cache_key == first.cache_key
    renamed = make_solution("py_cached_other_name", "python", "main.py::run", {"main.py": ADD})
    assert build_solution(renamed).cache_key == first.cache_key  # the key hashes content, not the name
    changed = make_solution("py_cached", "python", "main.py::run", {"main.py": ADD + "\n# changed\n"})
    assert build_solution(changed).cache_key != first.cache_key


@pytest.mark.parametrize("files, entry, message", [
    ({"main.py": "def run(:\n"}, "main.py::run", "syntax error in main.py"),
    ({"main.py": "import not_a_module_anywhere\n"}, "main.py::run", "importing main.py failed"),
    ({"main.py": "def other():\n    pass\n"}, "main.py::run", "defines no 'run'"),
    ({"main.py": "run = 3\n"}, "main.py::run", "not callable"),
    ({"main.cu": "x"}, "main.cu::run", "not a Python file"),
])
def test_broken_solutions_raise_build_error(cache_dir, files, entry, message):
    with pytest.raises(BuildError, match=message) as caught:
        build_solution(make_solution("py_broken", "python", entry, files))
    assert caught.value.solution == "py_broken"


def test_import_error_keeps_the_traceback_in_the_log(cache_dir):
    files = {"main.py": "raise RuntimeError('boom at import')\n"}
    with pytest.raises(BuildError) as caught:
        build_solution(make_solution("py_boom", "python", "main.py::run", files))
    assert "boom at import" in caught.value.log and "Traceback" in caught.value.log


def test_source_path_escaping_the_build_folder_is_rejected(cache_dir):
    sol = make_solution("py_escape", "python", "main.py::run", {"main.py": ADD})
    # The schema refuses such paths; bypass it to reach the builder's own check.
    sol.sources.append(type(sol.sources[0]).model_construct(path="../../escaped.py", content="x = 1\n"))
    with pytest.raises(BuildError, match="leaves the build folder"):
        build_solution(sol)
    assert not (cache_dir / "escaped.py").exists() and not (cache_dir / "build" / "escaped.py").exists()
