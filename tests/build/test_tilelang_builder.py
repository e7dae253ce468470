"""TileLang solutions: built on any machine where tilelang imports, run on a CUDA device only."""

from __future__ import annotations

import pytest
import torch

from kernelarena.build import build_solution
from kernelarena.errors import BuildError, UnsupportedError

from .conftest import make_solution

try:
    import tilelang  # noqa: F401
except ImportError:
    pytest.skip("tilelang is not installed (pip install tilelang==0.1.15)", allow_module_level=True)
except Exception as error:  # installed but broken, e.g. an apache-tvm-ffi it was not built for
    pytest.skip(f"tilelang is installed but does not import: {error!r}", allow_module_level=True)

# No `from __future__ import annotations` in the kernel: TileLang evaluates the prim_func's annotations.
KERNEL = '''
import functools

import tilelang
import tilelang.language as T

BLOCK = 128


@functools.lru_cache(maxsize=None)
def compiled_add(n):
    @T.prim_func
    def add(A: T.Tensor((n,), "float32"), B: T.Tensor((n,), "float32"), C: T.Tensor((n,), "float32")):
        with T.Kernel(T.ceildiv(n, BLOCK), threads=BLOCK) as bx:
            for i in T.Parallel(BLOCK):
                if bx * BLOCK + i < n:
                    C[bx * BLOCK + i] = A[bx * BLOCK + i] + B[bx * BLOCK + i]

    return tilelang.compile(add, target="cuda")
'''

ENTRY = '''
from .kernel import compiled_add


def run(a, b, out):
    compiled_add(a.numel())(a, b, out)
'''


def tilelang_add():
    return make_solution("tilelang_add", "tilelang", "main.py::run", {"main.py": ENTRY, "kernel.py": KERNEL},
                         target_hardware=["cuda"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only path")
def test_tilelang_builds_on_cpu_but_needs_a_gpu_to_run(cache_dir):
    runnable = build_solution(tilelang_add(), device="cpu")
    assert not runnable.can_run_on("cpu")
    with pytest.raises(UnsupportedError, match="needs a CUDA device"):
        runnable(torch.ones(4), torch.ones(4), torch.empty(4))
    assert build_solution(tilelang_add(), device="cpu").from_cache


def test_tilelang_syntax_error_is_a_build_error(cache_dir):
    broken = make_solution("tilelang_broken", "tilelang", "main.py::run", {"main.py": "def run(:\n"})
    with pytest.raises(BuildError, match="syntax error in main.py"):
        build_solution(broken, device="cpu")


@pytest.mark.gpu
def test_tilelang_solution_runs_on_gpu(cache_dir):
    runnable = build_solution(tilelang_add(), device="cuda")
    a, b = torch.randn(1000, device="cuda"), torch.randn(1000, device="cuda")
    out = torch.zeros_like(a)
    runnable(a, b, out)
    torch.testing.assert_close(out, a + b)
