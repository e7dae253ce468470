"""Triton RMSNorm kernels against a float64 reference; on a CPU-only machine under TRITON_INTERPRET=1."""

import importlib.util
import os
import sys

import torch

if not torch.cuda.is_available():
    # Must be set before triton_impl is imported: triton.jit reads it when the kernel is decorated.
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest

from kernelarena.kernels.rmsnorm import fused_add_rmsnorm, rmsnorm
from kernelarena.kernels.rmsnorm import triton as triton_impl
from kernelarena.kernels.rmsnorm.reference import fused_add_rmsnorm_reference, rmsnorm_reference
from kernelarena.kernels.rmsnorm.solutions import solution_records

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# (rows, hidden, config): short rows sharing a program, a ragged last tile, a non-power-of-two hidden size,
# a persistent grid looping over tiles, a single long row.
CASES = [
    (5, 64, None),
    (9, 100, None),
    (7, 256, triton_impl.TritonConfig(rows_per_program=4, num_warps=2)),
    (6, 512, triton_impl.TritonConfig(rows_per_program=1, num_warps=4, programs_per_sm=2)),
    (1, 4096, None),
    (5, 256, triton_impl.TritonConfig(rows_per_program=2, num_warps=4, stores=".cs")),  # streaming stores
    (5, 256, triton_impl.TritonConfig(rows_per_program=2, num_warps=4, evict_first=False)),  # plain loads
]


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.double() - expected).norm() / expected.norm()).item()


def assert_one_rounding(actual: torch.Tensor, exact_sum: torch.Tensor) -> None:
    """actual is exact_sum rounded once to bf16 (within one ulp: the interpreter truncates, GPUs round to
    nearest even)."""
    torch.testing.assert_close(actual.double(), exact_sum, rtol=2.0**-7, atol=1e-6)


def random_rows(rows, hidden, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    make = lambda *shape: torch.randn(*shape, generator=gen).to(dtype).to(DEVICE)  # noqa: E731
    return make(rows, hidden), make(rows, hidden), make(hidden)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("rows,hidden,config", CASES)
def test_rmsnorm_matches_reference(rows, hidden, config, dtype):
    x, _, w = random_rows(rows, hidden, dtype, seed=rows * 1000 + hidden)
    out = torch.full_like(x, float("nan"))  # poison: every element must be written
    triton_impl.launch(x, None, w, out, None, 1e-6, config)
    assert not out.isnan().any()
    assert rel_err(out, rmsnorm_reference(x, w)) < 1e-2


@pytest.mark.parametrize("rows,hidden,config", CASES)
def test_fused_add_matches_reference_and_keeps_inputs(rows, hidden, config):
    x, r, w = random_rows(rows, hidden, torch.bfloat16, seed=rows * 7 + hidden)
    x0, r0 = x.clone(), r.clone()
    out, r_out = torch.full_like(x, float("nan")), torch.full_like(x, float("nan"))
    triton_impl.launch(x, r, w, out, r_out, 1e-6, config)
    ref_out, ref_sum = fused_add_rmsnorm_reference(x, r, w)
    assert torch.equal(x, x0) and torch.equal(r, r0)
    assert rel_err(out, ref_out) < 1e-2
    assert_one_rounding(r_out, ref_sum)


def test_library_call_in_place_and_strided_rows():
    x, r, w = random_rows(6, 128, torch.bfloat16, seed=3)
    big = torch.randn(6, 256).to(torch.bfloat16).to(DEVICE)
    strided = big[:, :128]  # row stride 256: the Triton kernel takes strides
    ref_out, ref_sum = fused_add_rmsnorm_reference(strided, r, w)
    fused_add_rmsnorm(strided, r, w, backend="triton")
    assert rel_err(strided, ref_out) < 1e-2
    assert_one_rounding(r, ref_sum)
    assert rel_err(rmsnorm(x, w, backend="triton"), rmsnorm_reference(x, w)) < 1e-2


def test_zero_rows():
    x = torch.empty(0, 64, dtype=torch.bfloat16, device=DEVICE)
    w = torch.ones(64, dtype=torch.bfloat16, device=DEVICE)
    assert rmsnorm(x, w, backend="triton").shape == (0, 64)


@pytest.mark.parametrize("definition,n_args", [("rmsnorm_h4096", 3), ("fused_add_rmsnorm_h4096", 5)])
def test_dataset_triton_solution_runs(definition, n_args, tmp_path):
    """The embedded source, loaded on its own (no kernelarena import), computes the definition."""
    record = next(s for s in solution_records() if s["name"] == f"{definition}_kernelarena_triton")
    source = record["sources"][0]
    (tmp_path / source["path"]).write_text(source["content"])
    name = f"rmsnorm_triton_solution_{n_args}"
    spec = importlib.util.spec_from_file_location(name, tmp_path / source["path"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    namespace = vars(module)
    x, r, w = random_rows(2, 4096, torch.bfloat16, seed=11)
    out, r_out = torch.full_like(x, float("nan")), torch.full_like(x, float("nan"))
    if n_args == 3:
        namespace["run"](x, w, out)
        assert rel_err(out, rmsnorm_reference(x, w)) < 1e-2
    else:
        namespace["run"](x, r, w, out, r_out)
        ref_out, ref_sum = fused_add_rmsnorm_reference(x, r, w)
        assert rel_err(out, ref_out) < 1e-2
        assert_one_rounding(r_out, ref_sum)


def test_the_fused_op_takes_wider_tiles_from_8192_rows():
    """The H200 sweep's choice (triton.BIG_FUSED_TILES): 2 rows of 4096 or 4 of 8192 on 16 warps from 8192 rows;
    fewer rows, other sizes and the plain op keep one row per program. The fused op's loads are plain, the plain
    op's evict-first (session 26's measurements)."""
    pick = triton_impl.pick_config.__wrapped__
    assert pick(8192, 4096, True) == triton_impl.TritonConfig(2, 16, evict_first=False)
    assert pick(32768, 8192, True) == triton_impl.TritonConfig(4, 16, evict_first=False)
    assert pick(1024, 4096, True) == triton_impl.TritonConfig(1, 8, evict_first=False)
    assert pick(8192, 4096, False) == triton_impl.TritonConfig(1, 4)
    assert pick(8192, 2048, True) == triton_impl.TritonConfig(1, 4, evict_first=False)
