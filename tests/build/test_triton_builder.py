"""Triton solutions: on a machine without a GPU they run under Triton's interpreter."""

from __future__ import annotations

import pytest
import torch

from kernelarena.build import build_solution

from .conftest import make_solution

pytest.importorskip("triton")

KERNEL = '''
import triton
import triton.language as tl


@triton.jit
def add_kernel(a_ptr, b_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(out_ptr + offsets, tl.load(a_ptr + offsets, mask=mask) + tl.load(b_ptr + offsets, mask=mask), mask=mask)
'''

LAUNCHER = '''
import triton
from .kernels import add_kernel


def run(a, b, out):
    n = a.numel()
    add_kernel[(triton.cdiv(n, 64),)](a, b, out, n, BLOCK=64)
'''


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU interpreter path")
def test_triton_solution_runs_under_the_interpreter_on_cpu(cache_dir):
    solution = make_solution("triton_add", "triton", "main.py::run", {"main.py": LAUNCHER, "kernels.py": KERNEL})
    runnable = build_solution(solution, device="cpu")
    a, b, out = torch.randn(100), torch.randn(100), torch.zeros(100)
    runnable(a, b, out)
    torch.testing.assert_close(out, a + b)
    assert runnable.can_run_on("cpu") and not runnable.can_run_on("cuda")
    assert build_solution(solution, device="cpu").from_cache


@pytest.mark.gpu
def test_triton_solution_compiles_on_gpu(cache_dir):
    solution = make_solution("triton_add_gpu", "triton", "main.py::run", {"main.py": LAUNCHER, "kernels.py": KERNEL})
    runnable = build_solution(solution, device="cuda")
    a, b = torch.randn(1000, device="cuda"), torch.randn(1000, device="cuda")
    out = torch.zeros_like(a)
    runnable(a, b, out)
    torch.testing.assert_close(out, a + b)
    assert runnable.can_run_on("cuda") and runnable.target.cache_tag.startswith("cuda-sm")
