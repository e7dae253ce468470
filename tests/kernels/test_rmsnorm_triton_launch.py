"""The Triton RMSNorm launcher's direct path (triton_impl.DirectLauncher).

On the CPU: ``specialization_key`` against Triton's own specialization of each argument (the key must tell
apart every two arguments Triton compiles differently for), and the launcher's choice between its two paths
with a stand-in for Triton's compiled kernel. On a GPU: the direct path gives the ordinary
path's output bit for bit, skips Triton's launch once a specialization is compiled, and goes back to it for a
new specialization or while a launch hook is set.
"""

import itertools
from types import SimpleNamespace

import pytest
import torch
import triton.language as tl
from triton.runtime.jit import JITFunction

from kernelarena.kernels.rmsnorm import triton as triton_impl
from kernelarena.kernels.rmsnorm.reference import fused_add_rmsnorm_reference, rmsnorm_reference

INTS = [0, 1, -1, 2, 15, 16, 17, 32, 4096, 4100, (1 << 31) - 16, (1 << 31) - 1, 1 << 31, (1 << 31) + 16,
        -(1 << 31), -(1 << 31) - 16, -(1 << 31) - 1, (1 << 63) - 16, 1 << 63, (1 << 63) + 1]


def tensor_args():
    """Tensors of three dtypes at 16-byte aligned and unaligned addresses."""
    bf16 = torch.zeros(64, dtype=torch.bfloat16)
    f32 = torch.zeros(64, dtype=torch.float32)
    return [bf16, bf16[1:], bf16[8:], bf16[9:], bf16.view(torch.float16), bf16.view(torch.float16)[3:], f32,
            f32[2:], f32[4:]]


def triton_specialization(arg):
    """What Triton's binder computes for a plain (not constexpr, not annotated) kernel parameter."""
    libtriton = pytest.importorskip("triton._C.libtriton")
    compiler = pytest.importorskip("triton.backends.nvidia.compiler")
    if not hasattr(libtriton, "native_specialize_impl"):
        pytest.skip("this Triton has no native_specialize_impl to compare with")
    return libtriton.native_specialize_impl(compiler.CUDABackend, arg, False, True, True)


def describe(arg):
    if isinstance(arg, torch.Tensor):
        return f"{arg.dtype} tensor at address % 16 == {arg.data_ptr() % 16}"
    return repr(arg)


def test_key_separates_what_triton_compiles_separately():
    args = INTS + [0.0, 1.0, 1e-6, True, False, None] + tensor_args()
    for a, b in itertools.combinations(args, 2):
        key_a = triton_impl.specialization_key([a], ())
        key_b = triton_impl.specialization_key([b], ())
        if triton_specialization(a) != triton_specialization(b):
            assert key_a != key_b, f"{describe(a)} and {describe(b)} specialize differently but share a key"


def test_key_names_alignment_one_divisibility_and_width():
    key = triton_impl.specialization_key
    bf16 = torch.zeros(64, dtype=torch.bfloat16)
    assert key([bf16], ()) == key([bf16[8:]], ()) != key([bf16[1:]], ())  # 16-byte alignment
    assert key([bf16], ()) != key([bf16.view(torch.float16)], ())  # dtype
    assert key([1], ()) != key([17], ()) == key([33], ())  # 1 is compiled in; others by divisibility by 16
    assert key([16], ()) == key([4096], ()) != key([4097], ())
    assert key([16], ()) != key([1 << 32], ()) != key([1 << 63], ())  # i32, i64, u64
    assert key([1e-6], ()) == key([1e-5], ()) != key([1], ())  # floats are not specialized
    assert key([4096, 4096], {1}) != key([4096, 8192], {1})  # a constexpr by value ...
    assert key([4096, True], {1}) != key([4096, 1], {1})  # ... and type
    assert key([4096], ()) == key([8192], ())
    assert key([(1, 2)], ()) is None and key(["text"], ()) is None  # not covered: Triton's path


def test_interpreter_takes_the_ordinary_path():
    if isinstance(triton_impl._rmsnorm_kernel, JITFunction):
        pytest.skip("the kernel is compiled here (no TRITON_INTERPRET); the GPU tests below cover it")
    launcher = triton_impl.DirectLauncher(triton_impl._rmsnorm_kernel)
    x = torch.randn(3, 64).bfloat16()
    w = torch.randn(64).bfloat16()
    out = torch.empty_like(x)
    for _ in range(2):
        launcher(3, x, x, w, out, out, 64, 64, 64, 64, 3, 64, 3, 1e-6, 64, 1, False, True, False, True, num_warps=1)
    assert launcher._compiled == {}
    ref = rmsnorm_reference(x, w)
    assert ((out.double() - ref).norm() / ref.norm()).item() < 1e-2


def _signature_only(x_ptr, n, eps, BLOCK: tl.constexpr):  # never run: a JITFunction is built from it
    pass


class StandInKernel:
    """Plays Triton's compiled kernel: records the direct launches it is given."""

    function, packed_metadata = "function", "metadata"

    def __init__(self):
        self.direct = []

    def run(self, *launch):
        self.direct.append(launch)


@pytest.fixture
def stand_in(monkeypatch):
    """A DirectLauncher over a JITFunction whose ordinary launch is recorded and returns a StandInKernel; the
    current device is 0 and its stream 77."""
    kernel = JITFunction(_signature_only)
    compiled = StandInKernel()
    ordinary = []

    def ordinary_run(*args, grid, warmup, **options):
        ordinary.append((grid, args, options))
        return compiled

    monkeypatch.setattr(kernel, "run", ordinary_run)
    active = SimpleNamespace(get_current_device=lambda: 0, get_current_stream=lambda device: 77)
    monkeypatch.setattr(triton_impl, "driver", SimpleNamespace(active=active))
    return triton_impl.DirectLauncher(kernel), compiled, ordinary


def test_launcher_goes_direct_after_the_first_launch_of_a_key(stand_in, monkeypatch):
    from triton import knobs

    launcher, compiled, ordinary = stand_in
    x = torch.zeros(64, dtype=torch.bfloat16)
    launcher(4, x, 32, 1e-6, 128, num_warps=4)
    assert [(o[0], o[1][1:]) for o in ordinary] == [((4,), (32, 1e-6, 128))] and compiled.direct == []
    launcher(5, x, 48, 1e-5, 128, num_warps=4)  # same key: 48 is a multiple of 16 too, floats are not keyed
    assert len(ordinary) == 1
    assert compiled.direct == [(5, 1, 1, 77, "function", "metadata", None, None, None, x, 48, 1e-5, 128)]
    for args, options in [((x[1:], 32, 1e-6, 128), {"num_warps": 4}), ((x, 33, 1e-6, 128), {"num_warps": 4}),
                          ((x, 1, 1e-6, 128), {"num_warps": 4}), ((x, 32, 1e-6, 256), {"num_warps": 4}),
                          ((x, 32, 1e-6, 128), {"num_warps": 8})]:
        launcher(1, *args, **options)  # a new key each: Triton's path once, then direct
        launcher(1, *args, **options)
    assert len(ordinary) == 6 and len(compiled.direct) == 6
    monkeypatch.setattr(triton_impl.DirectLauncher, "enabled", False)
    launcher(1, x, 32, 1e-6, 128, num_warps=4)
    monkeypatch.setattr(triton_impl.DirectLauncher, "enabled", True)
    hook = lambda *args, **kwargs: None  # noqa: E731
    knobs.runtime.launch_enter_hook.add(hook)
    try:
        launcher(1, x, 32, 1e-6, 128, num_warps=4)
    finally:
        knobs.runtime.launch_enter_hook.remove(hook)
    launcher(1, x, (1, 2), 1e-6, 128, num_warps=4)  # a tuple: no key, Triton's path every time
    launcher(1, x, (1, 2), 1e-6, 128, num_warps=4)
    assert len(ordinary) == 10 and len(compiled.direct) == 6


@pytest.fixture
def counted_launches(monkeypatch):
    """A fresh launcher for launch() and a list that grows by one per launch through Triton's ordinary path."""
    kernel = triton_impl._rmsnorm_kernel
    monkeypatch.setattr(triton_impl, "_RMSNORM", triton_impl.DirectLauncher(kernel))
    calls = []
    ordinary = kernel.run

    def counting_run(*args, **kwargs):
        calls.append(kwargs.get("grid"))
        return ordinary(*args, **kwargs)

    monkeypatch.setattr(kernel, "run", counting_run)
    return calls


def cuda_rows(rows, hidden, seed, offset=0):
    """bf16 [rows, hidden] on the GPU, starting ``offset`` elements into its buffer (1: not 16-byte aligned)."""
    gen = torch.Generator(device="cuda").manual_seed(seed)
    buf = torch.randn(rows * hidden + offset, device="cuda", generator=gen).bfloat16()
    return buf[offset:].view(rows, hidden)


@pytest.mark.gpu
@pytest.mark.parametrize("rows,hidden", [(32, 4096), (1, 8192), (1024, 8192), (5, 1000)])
def test_direct_path_matches_ordinary_and_skips_triton(rows, hidden, counted_launches, monkeypatch):
    x, r, w = cuda_rows(rows, hidden, 1), cuda_rows(rows, hidden, 2), cuda_rows(1, hidden, 3)[0]
    monkeypatch.setattr(triton_impl.DirectLauncher, "enabled", False)
    ordinary, ordinary_out, ordinary_sum = torch.empty_like(x), torch.empty_like(x), torch.empty_like(x)
    triton_impl.launch(x, None, w, ordinary, None, 1e-6)
    triton_impl.launch(x, r, w, ordinary_out, ordinary_sum, 1e-6)
    assert len(counted_launches) == 2
    monkeypatch.setattr(triton_impl.DirectLauncher, "enabled", True)
    for _ in range(3):  # the first call of each op compiles nothing new but takes Triton's path once
        out, fused_out, fused_sum = (torch.full_like(x, float("nan")) for _ in range(3))
        triton_impl.launch(x, None, w, out, None, 1e-6)
        triton_impl.launch(x, r, w, fused_out, fused_sum, 1e-6)
        assert torch.equal(out, ordinary) and torch.equal(fused_out, ordinary_out)
        assert torch.equal(fused_sum, ordinary_sum)
    assert len(counted_launches) == 4
    assert len(triton_impl._RMSNORM._compiled) == 2
    # Other tensors of the same specialization, on another stream: still direct, on that stream.
    x2, r2 = cuda_rows(rows, hidden, 4), cuda_rows(rows, hidden, 5)
    out2, sum2 = torch.empty_like(x2), torch.empty_like(x2)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        triton_impl.launch(x2, r2, w, out2, sum2, 1e-6)
    side.synchronize()
    assert len(counted_launches) == 4
    ref_out, ref_sum = fused_add_rmsnorm_reference(x2, r2, w)
    assert ((out2.double() - ref_out).norm() / ref_out.norm()).item() < 1e-2
    assert torch.equal(sum2, ref_sum.bfloat16())


@pytest.mark.gpu
def test_new_specialization_takes_triton_path_once(counted_launches):
    w = cuda_rows(1, 4096, 3)[0]
    # (x, Triton launches so far): aligned 32 rows; x not 16-byte aligned; 33 rows (not a multiple of 16);
    # 16 rows (the 32-row specialization on another grid: no new launch); 1 row (n_rows == 1 is compiled in).
    cases = [(cuda_rows(32, 4096, 1), 1), (cuda_rows(32, 4096, 2, offset=1), 2), (cuda_rows(33, 4096, 4), 3),
             (cuda_rows(16, 4096, 5), 3), (cuda_rows(1, 4096, 6), 4)]
    for i, (x, launches) in enumerate(cases):
        for _ in range(2):
            out = torch.full_like(x, float("nan"))
            triton_impl.launch(x, None, w, out, None, 1e-6)
            ref = rmsnorm_reference(x, w)
            assert ((out.double() - ref).norm() / ref.norm()).item() < 1e-2
        assert len(counted_launches) == launches, f"case {i}: {len(counted_launches)} launches through Triton"


@pytest.mark.gpu
def test_launch_hook_forces_triton_path(counted_launches):
    from triton import knobs

    x, w = cuda_rows(8, 4096, 1), cuda_rows(1, 4096, 2)[0]
    out = torch.empty_like(x)
    triton_impl.launch(x, None, w, out, None, 1e-6)
    triton_impl.launch(x, None, w, out, None, 1e-6)
    assert len(counted_launches) == 1
    seen = []
    hook = lambda *args, **kwargs: seen.append(1)  # noqa: E731
    knobs.runtime.launch_enter_hook.add(hook)
    try:
        triton_impl.launch(x, None, w, out, None, 1e-6)
    finally:
        knobs.runtime.launch_enter_hook.remove(hook)
    assert len(counted_launches) == 2 and seen == [1]
    triton_impl.launch(x, None, w, out, None, 1e-6)
    assert len(counted_launches) == 2


class StandInCompiled:
    """What launch() returns once Triton has compiled the kernel: its launcher records direct launches."""

    function, packed_metadata = "function", "metadata"

    def __init__(self):
        self.direct = []
        self.run = lambda *launch: self.direct.append(launch)


@pytest.fixture
def prepared(monkeypatch):
    """prepare_launch for 6 rows of 256 on cuda:0, over a recorded stand-in for Triton's launch; the current
    device is 0 and its stream 77."""
    compiled, ordinary = StandInCompiled(), []

    def recorded_launch(*args):
        ordinary.append(args)
        return compiled

    monkeypatch.setattr(triton_impl, "launch", recorded_launch)
    active = SimpleNamespace(get_current_stream=lambda device: 77)
    monkeypatch.setattr(triton_impl, "driver", SimpleNamespace(active=active))
    if not hasattr(torch._C, "_cuda_getDevice"):
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    fused = triton_impl.prepare_launch(6, 256, (256, 512, 256, 512), True, torch.device("cuda", 0))
    return fused, compiled, ordinary


def test_prepared_launch_passes_pointers_after_the_first_aligned_launch(prepared, monkeypatch):
    from triton import knobs

    fused, compiled, ordinary = prepared
    x, out = torch.zeros(2, 3, 256, dtype=torch.bfloat16), torch.zeros(6, 256, dtype=torch.bfloat16)
    r = torch.zeros(6, 512, dtype=torch.bfloat16)[:, :256]
    w = torch.zeros(256, dtype=torch.bfloat16)
    fused(x, r, w, out, r, 1e-6)  # compiles (here: the stand-in), through views of the tensors
    assert len(ordinary) == 1 and ordinary[0][0].shape == (6, 256) and ordinary[0][1].stride() == (512, 1)
    fused(x, r, w, out, r, 1e-5)
    config = triton_impl.pick_config(6, 256, True)
    assert compiled.direct == [(6 // config.rows_per_program + (6 % config.rows_per_program > 0), 1, 1, 77,
                                "function", "metadata", None, None, None, x.data_ptr(), r.data_ptr(),
                                w.data_ptr(), out.data_ptr(), r.data_ptr(), 256, 512, 256, 512, 6, 256,
                                -(-6 // config.rows_per_program), 1e-5, 256, config.rows_per_program, True, True,
                                False, config.evict_first)]
    assert all(type(a) in (int, float, bool) for a in compiled.direct[0][9:])
    misaligned = torch.zeros(6 * 256 + 1, dtype=torch.bfloat16)[1:].view(6, 256)
    fused(misaligned, r, w, out, r, 1e-6)  # a 2-byte offset: Triton's own path, which specializes on it
    assert len(ordinary) == 2 and len(compiled.direct) == 1
    hook = lambda *args, **kwargs: None  # noqa: E731
    knobs.runtime.launch_enter_hook.add(hook)
    try:
        fused(x, r, w, out, r, 1e-6)
    finally:
        knobs.runtime.launch_enter_hook.remove(hook)
    assert len(ordinary) == 3 and len(compiled.direct) == 1
    fused(x, r, w, out, r, 1e-6)
    assert len(ordinary) == 3 and len(compiled.direct) == 2


def test_prepared_launch_waits_for_an_aligned_compile(prepared):
    fused, compiled, ordinary = prepared
    w = torch.zeros(256, dtype=torch.bfloat16)
    misaligned = torch.zeros(6 * 256 + 1, dtype=torch.bfloat16)[1:].view(6, 256)
    r = torch.zeros(6, 512, dtype=torch.bfloat16)[:, :256]
    fused(misaligned, r, w, misaligned, r, 1e-6)
    fused(misaligned, r, w, misaligned, r, 1e-6)  # a kernel compiled for a misaligned x is never kept
    assert len(ordinary) == 2 and compiled.direct == []


def test_prepared_unfused_launch_passes_what_launch_passes(monkeypatch):
    """Unfused, x and out stand in for the residual pointers and strides, as in launch(): the same
    specialization as the compile it reuses."""
    compiled, ordinary = StandInCompiled(), []
    monkeypatch.setattr(triton_impl, "launch", lambda *args: ordinary.append(args) or compiled)
    monkeypatch.setattr(triton_impl, "driver", SimpleNamespace(active=SimpleNamespace(get_current_stream=lambda d: 5)))
    if not hasattr(torch._C, "_cuda_getDevice"):
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    norm = triton_impl.prepare_launch(4, 1000, (1000, 0, 1000, 0), False, torch.device("cuda", 0))
    x, out = torch.zeros(4, 1000, dtype=torch.bfloat16), torch.zeros(4, 1000, dtype=torch.bfloat16)
    w = torch.zeros(1000, dtype=torch.bfloat16)
    norm(x, None, w, out, None, 1e-6)
    norm(x, None, w, out, None, 1e-6)
    (launch,) = compiled.direct
    assert launch[9:14] == (x.data_ptr(), x.data_ptr(), w.data_ptr(), out.data_ptr(), out.data_ptr())
    assert launch[14:18] == (1000, 1000, 1000, 1000)
    config = triton_impl.pick_config(4, 1000)
    assert launch[-6:] == (1024, config.rows_per_program, False, False, False, config.evict_first)
