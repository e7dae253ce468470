"""The RMSNorm library calls: the torch backend against float64, argument errors, auto on the CPU."""

import pytest
import torch

from kernelarena.errors import UnsupportedError
from kernelarena.kernels.rmsnorm import fused_add_rmsnorm, rmsnorm
from kernelarena.kernels.rmsnorm.backends import measured_choice
from kernelarena.kernels.rmsnorm.reference import fused_add_rmsnorm_reference, rmsnorm_reference


def rel_err(actual, expected):
    return ((actual.double() - expected).norm() / expected.norm()).item()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_torch_backend_with_leading_dims(dtype):
    x = torch.randn(2, 3, 96).to(dtype)
    w = torch.randn(96).to(dtype)
    out = torch.full_like(x, float("nan"))
    assert rmsnorm(x, w, eps=1e-5, out=out, backend="torch") is out
    assert rel_err(out, rmsnorm_reference(x, w, 1e-5)) < 1e-2


def test_fused_add_is_in_place():
    x, r, w = torch.randn(4, 64).bfloat16(), torch.randn(4, 64).bfloat16(), torch.randn(64).bfloat16()
    ref_out, ref_sum = fused_add_rmsnorm_reference(x, r, w)
    assert fused_add_rmsnorm(x, r, w, backend="torch") is None
    assert rel_err(x, ref_out) < 1e-2
    assert torch.equal(r, ref_sum.bfloat16())


def test_zero_rows_and_auto_on_cpu(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    x, w = torch.empty(0, 32, dtype=torch.float16), torch.ones(32, dtype=torch.float16)
    assert rmsnorm(x, w).shape == (0, 32)
    x = torch.randn(3, 32).half()
    assert rel_err(rmsnorm(x, w), rmsnorm_reference(x, w)) < 1e-2


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda x, w: rmsnorm(x.float(), w), "x: dtype torch.float32"),
        (lambda x, w: rmsnorm(x, w[:-1]), "weight: shape"),
        (lambda x, w: rmsnorm(x, w.half()), "weight: dtype"),
        (lambda x, w: rmsnorm(x, w, out=torch.empty(2, 64, dtype=torch.bfloat16)), "out: shape"),
        (lambda x, w: rmsnorm(x.t(), w), "contiguous"),
        (lambda x, w: rmsnorm(x, w, backend="cuda"), "backend='cuda'.*CUDA tensor"),
        (lambda x, w: rmsnorm(x, w, backend="tilelang"), "backend='tilelang'"),
        (lambda x, w: rmsnorm(x, w, backend="nope"), "unknown backend"),
        (lambda x, w: fused_add_rmsnorm(x, x[:1], w), "residual: shape"),
        (lambda x, w: rmsnorm(torch.zeros(1, 16385, dtype=torch.bfloat16), torch.zeros(16385, dtype=torch.bfloat16)),
         "hidden size 16385"),
    ],
)
def test_errors_name_the_argument(call, match):
    x, w = torch.randn(64, 64).bfloat16(), torch.randn(64).bfloat16()
    with pytest.raises(UnsupportedError, match=match):
        call(x, w)


def test_auto_table_picks_a_known_backend():
    for op in ("rmsnorm", "fused_add_rmsnorm"):
        for rows, hidden in [(1, 4096), (32768, 8192), (100, 2048), (7, 16384)]:
            assert measured_choice(op, rows, hidden) in ("cuda", "triton", "tilelang", "torch")


def test_auto_table_uses_batch_bounds_and_nearest_hidden():
    # Rows are tried in order: the first whose batch bound covers the call, for the nearest measured width.
    assert measured_choice("rmsnorm", 1, 4096) == "triton"
    assert measured_choice("rmsnorm", 16384, 4096) == "triton"
    assert measured_choice("rmsnorm", 16385, 4096) == "tilelang"
    assert measured_choice("rmsnorm", 8192, 8192) == "triton"
    assert measured_choice("rmsnorm", 8193, 8192) == "tilelang"
    assert measured_choice("rmsnorm", 1, 3000) == "triton"  # nearest measured width: 4096
    assert measured_choice("rmsnorm", 20000, 12288) == "tilelang"  # nearest measured width: 8192
    assert measured_choice("fused_add_rmsnorm", 8192, 4096) == "cuda"  # the fused op: CUDA at every batch
    assert measured_choice("fused_add_rmsnorm", 1 << 20, 12288) == "cuda"


def test_one_plan_per_layout_and_none_for_bad_calls():
    from kernelarena.kernels.rmsnorm import api, clear_plans

    clear_plans()
    w = torch.randn(64).bfloat16()
    for rows in (3, 3, 5):
        x = torch.randn(rows, 64).bfloat16()
        assert rel_err(rmsnorm(x, w, backend="torch"), rmsnorm_reference(x, w)) < 1e-2
    x = torch.randn(2, 2, 64).bfloat16()  # same rows as a [4, 64] call, another layout
    assert rel_err(rmsnorm(x, w, backend="torch"), rmsnorm_reference(x, w)) < 1e-2
    assert len(api._PLANS) == 3
    with pytest.raises(UnsupportedError):
        rmsnorm(x, w.half(), backend="torch")
    with pytest.raises(UnsupportedError, match="unknown backend"):
        rmsnorm(x, w, backend=["torch"])  # unhashable: checked, never cached
    assert len(api._PLANS) == 3


def test_auto_weighs_host_cost_on_a_gpu():
    from kernelarena.kernels.rmsnorm.backends import HOST_BOUND_ELEMENTS, TABLE, Problem, auto_candidates

    def problem(rows, hidden=4096, op="rmsnorm"):
        return Problem(op, rows, hidden, (hidden, 0, hidden, 0), torch.bfloat16, torch.device("cuda", 0))

    # Host-bound calls try the backends cheapest launch first: the table's order.
    assert list(TABLE) == ["cuda", "triton", "tilelang", "torch"]
    assert auto_candidates(problem(1)) == auto_candidates(problem(HOST_BOUND_ELEMENTS // 4096)) == list(TABLE)
    # Larger ones the fastest kernel measured first, then Triton (the runner-up on device time), then the rest.
    assert auto_candidates(problem(8192)) == ["triton", "cuda", "tilelang", "torch"]
    assert auto_candidates(problem(32768)) == ["tilelang", "triton", "cuda", "torch"]
    cpu = problem(1)._replace(device=torch.device("cpu"))
    assert auto_candidates(cpu) in (["triton", "torch"], ["torch"])


def test_a_strided_layout_of_a_cached_shape_gets_its_own_plan():
    # The layout key holds True for a contiguous tensor and the strides otherwise: a strided x of a shape already
    # planned contiguous must not launch with the contiguous plan's row stride.
    from kernelarena.kernels.rmsnorm import api, clear_plans

    clear_plans()
    w = torch.randn(64).bfloat16()
    x = torch.randn(4, 64).bfloat16()
    assert rel_err(rmsnorm(x, w, backend="torch"), rmsnorm_reference(x, w)) < 1e-2
    for width in (128, 256):  # two strided layouts of one shape: two plans
        strided = torch.randn(4, width).bfloat16()[:, :64]
        assert rel_err(rmsnorm(strided, w, backend="torch"), rmsnorm_reference(strided, w)) < 1e-2
    assert len(api._PLANS) == 3
    x, r = torch.randn(4, 64).bfloat16(), torch.randn(4, 128).bfloat16()[:, :64]
    fused_add_rmsnorm(x.clone(), x.clone(), w, backend="torch")  # plans the contiguous residual first
    expected, expected_sum = fused_add_rmsnorm_reference(x, r, w)
    fused_add_rmsnorm(x, r, w, backend="torch")
    assert rel_err(r, expected_sum) < 1e-2 and rel_err(x, expected) < 1e-2
    with pytest.raises(UnsupportedError, match="weight: must be contiguous"):
        rmsnorm(torch.randn(4, 64).bfloat16(), torch.randn(128).bfloat16()[::2], backend="torch")
