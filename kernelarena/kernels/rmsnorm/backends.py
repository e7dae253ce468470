"""The RMSNorm backends, one table row each, and the choice ``backend="auto"`` makes among them.

A row (``Backend``) holds the availability check, the launcher factory and what one launch costs the host.
``prepare`` is called once per call layout (see api.py) and returns a launch function
``fn(x, residual, weight, out, residual_out, eps)`` that takes the caller's tensors as they are (any leading
dims) and does only per-call work. Adding a backend is a module beside this one plus one row in ``TABLE``.

``auto`` weighs host cost as well as device time. Up to ``HOST_BOUND_ELEMENTS`` elements a call moves so few
bytes that the GPU finishes the kernel before the host has issued the next launch when calls come back to
back, so the backend with the cheapest launch wins there: the table's order (cuda, triton, tilelang, torch).
Above it, the fastest kernel measured (``AUTO_TABLE``) wins. Measured numbers: docs/rmsnorm.md.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Callable, NamedTuple, Optional

import torch

from kernelarena import env
from kernelarena.errors import BuildError

from . import reference

Launch = Callable[..., None]  # fn(x, residual, weight, out, residual_out, eps); residual ones None when unfused


class Problem(NamedTuple):
    """What a plan is made for: one operator over [rows, hidden] on one device."""

    op: str  # "rmsnorm" or "fused_add_rmsnorm"
    rows: int
    hidden: int
    strides: tuple[int, int, int, int]  # row strides of x, residual, out, residual_out (residual ones 0 unfused)
    dtype: torch.dtype
    device: torch.device

    @property
    def fused(self) -> bool:
        return self.op == "fused_add_rmsnorm"


class Backend(NamedTuple):
    """One row of the backend table."""

    name: str
    unavailable: Callable[[Problem], Optional[str]]  # why it cannot run the problem, or None
    prepare: Callable[[Problem], Launch]
    host_cost: str  # what one launch costs the host, and why


# ------------------------------------------------------------------------------------------ availability
@functools.lru_cache(maxsize=None)
def installed(package: str) -> bool:
    # Cached: find_spec walks sys.path, tens of microseconds per call on the GPU machine's slow host.
    return importlib.util.find_spec(package) is not None


def triton_interpreted() -> bool:
    return env.triton_interpreted()


_BUILD_FAILURES: dict = {}  # (backend, device type, arch) -> why its build failed, so auto stops trying it


def _cuda_arch(device: torch.device) -> str:
    major, minor = torch.cuda.get_device_capability(device)
    return f"{major}{minor}{'a' if major >= 9 else ''}"


def _cuda_unavailable(p: Problem) -> Optional[str]:
    if p.device.type != "cuda":
        return f"x is on {p.device}; the cuda backend needs a CUDA tensor"
    from kernelarena.build.toolchain import find_nvcc

    if find_nvcc() is None:
        return "no CUDA toolkit (nvcc) found to build the launcher"
    return _BUILD_FAILURES.get(("cuda", _cuda_arch(p.device)))


def _triton_unavailable(p: Problem) -> Optional[str]:
    if not installed("triton"):
        return "triton is not installed"
    if p.device.type != "cuda" and not triton_interpreted():
        return f"x is on {p.device}; Triton runs on CUDA, or on the CPU with TRITON_INTERPRET=1"
    return None


def _tilelang_unavailable(p: Problem) -> Optional[str]:
    if p.device.type != "cuda":
        return f"x is on {p.device}; the tilelang backend needs a CUDA tensor"
    if not installed("tilelang"):
        return "tilelang is not installed (pip install tilelang==0.1.15)"
    if p.hidden % 128:
        return f"the TileLang kernel needs a hidden size that is a multiple of 128, got {p.hidden}"
    if p.rows > 1 and any(s != p.hidden for s in p.strides if s):
        return "the TileLang kernel needs contiguous rows (row stride == hidden size)"
    return None


# ------------------------------------------------------------------------------------------ launchers
def _rows(t, p: Problem):
    return None if t is None else t.view(p.rows, p.hidden)


# Below this many elements a call is host-bound and PDL's launch (cudaLaunchKernelEx) costs the host more: 9.5
# against 8.7 us a call back to back for rmsnorm 1 x 4096 on the H200 (results/rmsnorm_host_latest.md, session 26).
PDL_MIN_ELEMENTS = 1 << 20


def _prepare_cuda(p: Problem) -> Launch:
    from .cuda import DTYPE_CODES, launcher_module

    arch = _cuda_arch(p.device)
    try:
        kernel = launcher_module(arch).launch
    except BuildError as exc:
        _BUILD_FAILURES[("cuda", arch)] = f"the launcher failed to build: {exc}"
        raise
    code = DTYPE_CODES[str(p.dtype).removeprefix("torch.")]
    xs, rs, os_, ros = p.strides
    rows, hidden, index = p.rows, p.hidden, p.device.index or 0
    current_device = getattr(torch._C, "_cuda_getDevice", torch.cuda.current_device)
    stream = torch._C._cuda_getCurrentRawStream
    # Programmatic dependent launch on sm90+ (as FlashInfer's norm kernels) from PDL_MIN_ELEMENTS: calls back to
    # back overlap a launch with the end of the kernel before it (docs/rmsnorm.md, "back to back").
    sm90 = torch.cuda.get_device_capability(p.device)[0] >= 9
    pdl = (0, 1) if sm90 and p.rows * p.hidden >= PDL_MIN_ELEMENTS else ()

    def launch(x, residual, weight, out, residual_out, eps):
        if current_device() != index:  # the kernel runs in the current context
            with torch.cuda.device(index):
                return launch(x, residual, weight, out, residual_out, eps)
        kernel(0, code, x.data_ptr(), xs, 0, 0, weight.data_ptr(), out.data_ptr(), os_, 0, 0, rows, hidden, eps,
               stream(index), *pdl)

    def launch_fused(x, residual, weight, out, residual_out, eps):
        if current_device() != index:
            with torch.cuda.device(index):
                return launch_fused(x, residual, weight, out, residual_out, eps)
        # In place (the library's call) the outputs are the inputs: two data_ptr() calls fewer.
        xp, rp = x.data_ptr(), residual.data_ptr()
        kernel(1, code, xp, xs, rp, rs, weight.data_ptr(), xp if out is x else out.data_ptr(), os_,
               rp if residual_out is residual else residual_out.data_ptr(), ros, rows, hidden, eps, stream(index),
               *pdl)

    return launch_fused if p.fused else launch


def _prepare_triton(p: Problem) -> Launch:
    from . import triton as triton_backend

    if p.device.type == "cuda":
        return triton_backend.prepare_launch(p.rows, p.hidden, p.strides, p.fused, p.device)

    def launch(x, residual, weight, out, residual_out, eps):  # the interpreter: views, Triton's own path
        triton_backend.launch(_rows(x, p), _rows(residual, p), weight, _rows(out, p), _rows(residual_out, p), eps)

    return launch


def _prepare_tilelang(p: Problem) -> Launch:
    from . import tilelang as tilelang_backend

    def launch(x, residual, weight, out, residual_out, eps):
        tilelang_backend.launch(_rows(x, p), _rows(residual, p), weight, _rows(out, p), _rows(residual_out, p), eps)

    return launch


def _prepare_torch(p: Problem) -> Launch:
    def launch(x, residual, weight, out, residual_out, eps):
        if residual is None:
            reference.rmsnorm_torch(_rows(x, p), weight, eps, _rows(out, p))
        else:
            reference.fused_add_rmsnorm_torch(_rows(x, p), _rows(residual, p), weight, eps, _rows(out, p),
                                              _rows(residual_out, p))

    return launch


# In order of host cost per launch, cheapest first (what ``auto`` tries first on host-bound calls).
TABLE: dict[str, Backend] = {b.name: b for b in (
    Backend("cuda", _cuda_unavailable, _prepare_cuda,
            "one C call with integer arguments (cuda/rmsnorm_python.cu), then the kernel launch"),
    Backend("triton", _triton_unavailable, _prepare_triton,
            "Triton's compiled-kernel launcher with integer pointers (triton.prepare_launch): a Python "
            "function and the C launch; on the CPU the interpreter"),
    Backend("tilelang", _tilelang_unavailable, _prepare_tilelang,
            "TileLang's compiled-kernel adapter: tensor checks and a TVM-FFI call per launch"),
    Backend("torch", lambda p: None, _prepare_torch, "about ten eager torch ops, each a kernel launch"),
)}
BACKENDS = ("auto", *TABLE)

# ------------------------------------------------------------------------------------------ auto
# Calls up to this many elements (rows x hidden) are host-bound back to back: 1024 x 4096 bf16 moves 16 MB
# for rmsnorm, about 4 us at the H200's 4.3 TB/s, and each of our kernels takes 3.6-8.2 us at 1-1024 rows of
# 4096 under ncu (docs/rmsnorm.md), while one launch costs the host several microseconds. Back to back, a call's
# inputs stay in L2 up to 1024 x 8192 as well (32 MB for rmsnorm): there rmsnorm through Triton cost 14.4 us a call
# on a slow host against FlashInfer's 11.5, through CUDA 8.7 against 10.2 on a faster one (H200, 2026-12-04,
# results/rmsnorm_latest.md and diag_rmsnorm_variants_2026-12-04_h200.md), so up to 8M elements the cheapest
# launch goes first (with a cold L2, Triton's kernel is the faster there: 14.0 against 16.0 us, both ahead of
# FlashInfer's 17.6).
HOST_BOUND_ELEMENTS = 1 << 23

# Device time, above HOST_BOUND_ELEMENTS: (operator, hidden size, largest batch, backend), looked up with the
# nearest measured hidden size and the first row whose batch bound covers the call. Measured on an H100 80GB
# HBM3 with the backends timed in turn (docs/rmsnorm.md, "auto table"): Triton is fastest up to 8192-16384
# rows and TileLang from there (within 1% of the others), except the fused op at 32 x 4096.
AUTO_TABLE: tuple[tuple[str, int, int, str], ...] = (
    ("rmsnorm", 4096, 16384, "triton"),
    ("rmsnorm", 4096, 1 << 62, "tilelang"),
    ("rmsnorm", 8192, 8192, "triton"),
    ("rmsnorm", 8192, 1 << 62, "tilelang"),
    # The fused op: the CUDA kernel (plain loads, programmatic dependent launch) from the host-bound bound up: back
    # to back and with a cold L2 it ran at 0.999-1.006x FlashInfer from 8192 rows where Triton ran 0.97-0.99x
    # (H200, 2026-12-04, results/diag_rmsnorm_variants_2026-12-04_h200_call6.md).
    ("fused_add_rmsnorm", 4096, 1 << 62, "cuda"),
    ("fused_add_rmsnorm", 8192, 1 << 62, "cuda"),
)


def measured_choice(op: str, rows: int, hidden: int) -> str:
    """The device-time table's backend for ``op`` on a [rows, hidden] problem on a CUDA device."""
    entries = [e for e in AUTO_TABLE if e[0] == op]
    nearest = min({e[1] for e in entries}, key=lambda h: (abs(h - hidden), h))
    for _, table_hidden, max_rows, backend in entries:
        if table_hidden == nearest and rows <= max_rows:
            return backend
    return next(iter(TABLE))


def auto_candidates(p: Problem) -> list[str]:
    """The backends ``auto`` tries for ``p``, in order (the first available one that prepares wins)."""
    if p.device.type != "cuda":
        return ["triton", "torch"] if triton_interpreted() else ["torch"]
    if p.rows * p.hidden <= HOST_BOUND_ELEMENTS:
        return list(TABLE)
    first = measured_choice(p.op, p.rows, p.hidden)
    # Then Triton, the table's runner-up on device time, before the host-cost order: without TileLang installed,
    # the first of that order (CUDA) was 7% slower than Triton at 16384 x 8192 on the H200
    # (results/history/rmsnorm_2026-12-03_h200_session19_latest.md: 148.3 against 138.4 us).
    return list(dict.fromkeys([first, "triton", *TABLE]))


def prepare(name: str, p: Problem) -> Launch:
    """The launch function of backend ``name`` (not "auto") for ``p``; the caller checked availability.
    Raises BuildError when the backend's kernel fails to build."""
    if p.rows == 0:
        return _no_rows
    return TABLE[name].prepare(p)


def _no_rows(x, residual, weight, out, residual_out, eps) -> None:
    return None
