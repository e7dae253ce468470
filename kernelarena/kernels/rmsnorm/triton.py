"""RMSNorm and fused add + RMSNorm in Triton: kernel, launch heuristics, destination-passing entry points.

    rmsnorm:            out = x * rsqrt(mean(x^2) + eps) * w
    fused_add_rmsnorm:  s = x + r; residual_out = s; out = s * rsqrt(mean(s^2) + eps) * w   (s in float32)

Each program normalizes tiles of ``rows_per_program`` whole rows held in registers (one pass over memory),
looping over tiles with a stride of the grid size, so one kernel serves both a one-tile-per-program grid and
a persistent grid. Outputs may alias inputs (``out is x``, ``residual_out is residual``): each element is
loaded before it is stored, by the same program.

Launches go through ``DirectLauncher``, which skips Triton's per-call argument binding once a specialization
has been compiled (host time: see the class); ``prepare_launch`` goes further for the library's calls of one
layout: a function that passes data pointers straight to the compiled kernel's launcher.

Self-contained (torch, triton, stdlib): this file is the source of the dataset's Triton solutions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from triton import knobs
from triton.runtime import driver
from triton.runtime.jit import JITFunction

DATASET_EPS = 1e-6
MAX_HIDDEN = 16384


@triton.jit
def _rmsnorm_kernel(
    x_ptr, r_ptr, w_ptr, out_ptr, r_out_ptr,
    x_stride, r_stride, out_stride, r_out_stride,
    n_rows, hidden, n_tiles, eps,
    BLOCK_N: tl.constexpr, ROWS: tl.constexpr, FUSED: tl.constexpr, EVEN_N: tl.constexpr, STREAM: tl.constexpr,
    EVICT: tl.constexpr,
):
    cols = tl.arange(0, BLOCK_N)
    col_mask = cols < hidden
    # The weight is shared by every row: load it once per program and keep it cached.
    if EVEN_N:
        w = tl.load(w_ptr + cols, eviction_policy="evict_last").to(tl.float32)
    else:
        w = tl.load(w_ptr + cols, mask=col_mask, other=0.0, eviction_policy="evict_last").to(tl.float32)
    for tile in range(tl.program_id(0), n_tiles, tl.num_programs(0)):
        rows = tile * ROWS + tl.arange(0, ROWS)
        rows64 = rows.to(tl.int64)[:, None]
        mask = (rows < n_rows)[:, None] & col_mask[None, :]
        if EVICT:
            x = tl.load(x_ptr + rows64 * x_stride + cols[None, :], mask=mask, other=0.0,
                        eviction_policy="evict_first").to(tl.float32)
        else:
            x = tl.load(x_ptr + rows64 * x_stride + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        if FUSED:
            if EVICT:
                r = tl.load(r_ptr + rows64 * r_stride + cols[None, :], mask=mask, other=0.0,
                            eviction_policy="evict_first").to(tl.float32)
            else:
                r = tl.load(r_ptr + rows64 * r_stride + cols[None, :], mask=mask, other=0.0).to(tl.float32)
            x = x + r
            tl.store(r_out_ptr + rows64 * r_out_stride + cols[None, :], x.to(r_out_ptr.dtype.element_ty),
                     mask=mask, cache_modifier=".cs" if STREAM else "")
        rstd = tl.rsqrt(tl.sum(x * x, axis=1) / hidden + eps)
        y = x * rstd[:, None] * w[None, :]
        tl.store(out_ptr + rows64 * out_stride + cols[None, :], y.to(out_ptr.dtype.element_ty), mask=mask,
                 cache_modifier=".cs" if STREAM else "")


_INT32_MIN, _INT32_MAX, _UINT64_MIN = -(1 << 31), (1 << 31) - 1, 1 << 63


def specialization_key(args, constexpr_positions) -> tuple | None:
    """What Triton compiles a kernel for, per argument, as a hashable tuple; None if an argument is of a type
    this function does not cover (Triton's own launch path handles those).

    Triton 3.6's rules (its native_specialize_impl, which the tests compare this with; 3.9's are the same):
    a tensor: its dtype and whether its data pointer is a multiple of 16; an int: the value 1 (compiled in as a
    constant), else its width (i32 / i64 / u64 by value) and whether it is a multiple of 16; a float or bool:
    its type only; None: a constant. Arguments at ``constexpr_positions``: their type and value. The key may be
    finer than Triton's (parameters marked do_not_specialize are still keyed), never coarser.
    """
    key = []
    for i, arg in enumerate(args):
        kind = type(arg)
        if i in constexpr_positions:
            key.append((kind, arg))
        elif kind is int:
            key.append(1 if arg == 1 else (not arg & 15, _INT32_MIN <= arg <= _INT32_MAX, arg < _UINT64_MIN))
        elif kind is float or kind is bool or arg is None:
            key.append(kind)
        elif isinstance(arg, torch.Tensor):
            key.append((arg.dtype, not arg.data_ptr() & 15))
        else:
            return None
    return tuple(key)


def _launch_hooks_idle(kernel) -> bool:
    """True when no hook (profiler, proton) would need to see a launch: Triton 3.6 keeps empty HookChains in
    the launch hooks, older versions None."""
    for hook in (knobs.runtime.launch_enter_hook, knobs.runtime.launch_exit_hook):
        if hook is not None and getattr(hook, "calls", True):
            return False
    return not getattr(kernel, "pre_run_hooks", None)


class DirectLauncher:
    """Launches one ``@triton.jit`` kernel on a 1-D grid, straight to the compiled kernel once it is known.

    Triton's ordinary launch binds the arguments, works out their specialization and looks the compiled kernel
    up on every call: about 96 us of host time on the H100 machine's CPU (Triton 3.6), more than a small
    kernel's GPU time (docs/rmsnorm.md, "Host cost"). The first call for a key (current device,
    ``specialization_key`` of the arguments, the options, Triton's debug and instrumentation settings) takes
    the ordinary path and keeps the compiled kernel; later calls with that key call its launcher directly. The
    ordinary path is always taken under the CPU interpreter, while a launch or pre-run hook is set, or for
    argument types the key does not cover.

    Call as ``launcher(grid, *args, **options)``: every kernel argument positionally, constexprs included, in
    the kernel's parameter order (no defaults); options (num_warps, num_stages) as keywords. Assumes what
    Triton re-checks per call stays fixed after the first launch: the kernel's source and the globals it reads.
    """

    enabled = True  # False: always Triton's ordinary path (benchmarks compare the two)

    def __init__(self, kernel):
        self.kernel = kernel
        self._compiled: dict = {}
        # Interpreted kernels (TRITON_INTERPRET=1) are no JITFunction and have nothing compiled to call.
        self._jit = isinstance(kernel, JITFunction)
        self._constexpr = frozenset(i for i, p in enumerate(kernel.params) if p.is_constexpr) if self._jit else ()
        self._device = self._stream = None  # Triton's driver calls, bound at the first launch

    def __call__(self, grid: int, *args, **options):
        """Launch ``grid`` programs of the kernel on the current device and stream; returns Triton's compiled
        kernel (None under the interpreter)."""
        key = None
        if self._jit and DirectLauncher.enabled:
            if self._device is None:
                self._device, self._stream = driver.active.get_current_device, driver.active.get_current_stream
            device = self._device()
            spec = specialization_key(args, self._constexpr)
            if spec is not None:
                key = (device, spec, tuple(options.items()), knobs.runtime.debug,
                       knobs.compilation.instrumentation_mode)
                kernel = self._compiled.get(key)
                if kernel is not None and _launch_hooks_idle(self.kernel):
                    kernel.run(grid, 1, 1, self._stream(device), kernel.function, kernel.packed_metadata,
                               None, None, None, *args)
                    return kernel
        kernel = self.kernel[(grid,)](*args, **options)
        if key is not None and hasattr(kernel, "packed_metadata"):
            self._compiled[key] = kernel
        return kernel


_RMSNORM = DirectLauncher(_rmsnorm_kernel)


@dataclass(frozen=True)
class TritonConfig:
    """Launch choice: rows per tile, warps per program, the grid (0: one program per tile; k > 0: a
    persistent grid of k programs per multiprocessor), and the stores' cache modifier ("" the default, ".cs"
    streaming: evicted first; at 8192 rows and more of the H200 sweep no streaming config beat the best plain one
    of its shape, results/history/rmsnorm_2026-12-03_h200_sweep_session19.md)."""

    rows_per_program: int
    num_warps: int
    programs_per_sm: int = 0
    stores: str = ""
    evict_first: bool = True  # x and residual loaded with eviction_policy="evict_first" (False: plain loads)

    def __post_init__(self):
        if self.stores not in ("", ".cs"):
            raise ValueError(f"TritonConfig.stores must be '' or '.cs', got {self.stores!r}")


@functools.lru_cache(maxsize=None)
def _multiprocessor_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


@functools.lru_cache(maxsize=4096)  # a pure function of its arguments, called on every launch
def pick_config(n_rows: int, hidden: int, fused: bool = False) -> TritonConfig:
    """Heuristic launch choice for a [n_rows, hidden] problem, read off the H100 sweep (docs/rmsnorm.md).

    Long rows: one row per program, 1024 elements per warp for rmsnorm (4096: 4 warps, 8192: 8) and 512 for
    the fused op (4096: 8, 8192: 16), the best or within noise of it at every batch; the fused op from
    BIG_FUSED_ROWS rows takes BIG_FUSED_TILES (H200 sweep). Short rows share a
    program (tiles of about 2048 elements). A persistent grid measured no faster anywhere (up to 13% slower),
    so the grid is one program per tile.
    """
    block_n = triton.next_power_of_2(hidden)
    # The fused op reads x and residual with plain loads: evict-first ones were 1-3% slower from 8192 rows on the
    # H200 (268.0 against 264.3 us at 32768 x 4096, 538.3 against 524.6 at 32768 x 8192, back to back; the same
    # at 1024 rows; results/diag_rmsnorm_variants_2026-12-04_h200_call6.md and session 26's call 7 in docs/rmsnorm.md).
    evict_first = not fused
    if fused and n_rows >= BIG_FUSED_ROWS and block_n in BIG_FUSED_TILES:
        rows, num_warps = BIG_FUSED_TILES[block_n]
        return TritonConfig(rows_per_program=rows, num_warps=num_warps, evict_first=evict_first)
    rows = max(1, min(64, 2048 // block_n))
    per_warp = 512 if fused else 1024
    num_warps = max(1, min(16, block_n * rows // per_warp))
    return TritonConfig(rows_per_program=rows, num_warps=num_warps, evict_first=evict_first)


# The fused op at 8192 rows and more, on the H200 (bench_rmsnorm --sweep, 2026-12-03,
# results/history/rmsnorm_2026-12-03_h200_sweep_session19.md):
# 16 warps over 2 rows of 4096 (71.3 / 137.5 / 268.6 us at 8192 / 16384 / 32768 rows, against 72.0 / 139.0 / 272.4
# for one row on 8 warps) and over 4 rows of 8192 (137.2 / 268.6 / 530.9 against 137.7 / 269.2 / 535.8 for one
# row on 16). On the H100 the 2-row tiles were as fast and the 4-row ones 0.5-1% slower (H100 sweep, run 1).
BIG_FUSED_ROWS = 8192
BIG_FUSED_TILES = {4096: (2, 16), 8192: (4, 16)}


def _grid(n_rows: int, config: TritonConfig, device) -> tuple[int, int]:
    """(programs, tiles) of a launch over n_rows rows."""
    n_tiles = -(-n_rows // config.rows_per_program)
    if not config.programs_per_sm:
        return n_tiles, n_tiles
    # On the CPU (interpreter) the persistent grid is programs_per_sm programs, to exercise the loop.
    sms = _multiprocessor_count(device.index or 0) if device.type == "cuda" else 1
    return min(n_tiles, config.programs_per_sm * sms), n_tiles


def _constexprs(hidden: int, config: TritonConfig, fused: bool) -> tuple:
    # Plain int arithmetic: triton.next_power_of_2 is a constexpr_function wrapper costing about 2 us a call.
    block_n = 1 << (hidden - 1).bit_length()
    # BLOCK_N, ROWS, FUSED, EVEN_N, STREAM, EVICT (bools: the compiled launcher is passed ints, floats and bools only)
    return block_n, config.rows_per_program, fused, block_n == hidden, config.stores == ".cs", config.evict_first


def launch(x, residual, weight, out, residual_out, eps: float, config: TritonConfig | None = None):
    """Normalize the rows of ``x`` (2-D, last dim contiguous) into ``out``; with ``residual`` given, first
    add it to ``x`` and write the sum to ``residual_out``. No argument checks: callers validate. Returns
    Triton's compiled kernel (None under the interpreter or for zero rows)."""
    n_rows, hidden = x.shape
    if n_rows == 0:
        return None
    fused = residual is not None
    config = config or pick_config(n_rows, hidden, fused)
    grid, n_tiles = _grid(n_rows, config, x.device)
    if not fused:
        residual, residual_out = x, out  # unused by the kernel; any valid pointers
    return _RMSNORM(
        grid, x, residual, weight, out, residual_out,
        x.stride(0), residual.stride(0), out.stride(0), residual_out.stride(0),
        n_rows, hidden, n_tiles, float(eps), *_constexprs(hidden, config, fused),
        num_warps=config.num_warps,
    )


def prepare_launch(n_rows: int, hidden: int, strides: tuple[int, int, int, int], fused: bool, device,
                   config: TritonConfig | None = None):
    """A launch function for one problem layout on ``device`` (a CUDA device): ``fn(x, residual, weight, out,
    residual_out, eps)`` for tensors whose rows have the given ``strides`` (x, residual, out, residual_out; the
    residual ones ignored unless ``fused``). Only the tensors' data pointers are read per call.

    Once a launch has compiled the kernel for 16-byte aligned pointers, later calls with aligned pointers on
    the same current device go to the compiled kernel's launcher with the pointers as integers: no argument
    binding, no specialization, no per-pointer ``data_ptr()`` and attribute query inside Triton. Any other
    call (misaligned pointers, another current device, a launch hook set, before the first compile) takes
    ``launch``'s path with views of the tensors. Like ``DirectLauncher``, assumes Triton's debug and
    instrumentation settings stay as they were at the first launch.
    """
    config = config or pick_config(n_rows, hidden, fused)
    grid, n_tiles = _grid(n_rows, config, device)
    if not fused:  # as launch() passes them: x's and out's strides stand in for the unused residual ones
        strides = (strides[0], strides[0], strides[2], strides[2])
    tail = (*strides, n_rows, hidden, n_tiles)
    consts = _constexprs(hidden, config, fused)
    device_index = device.index or 0
    # torch's own device query without torch.cuda.current_device's lazy-init check (a third of its cost).
    current_device = getattr(torch._C, "_cuda_getDevice", torch.cuda.current_device)
    current_stream = driver.active.get_current_stream
    compiled = None  # (launcher, function, packed metadata) once an aligned launch has compiled the kernel

    def ordinary(x, residual, weight, out, residual_out, eps):
        nonlocal compiled
        views = [t if t is None else t.view(n_rows, hidden) for t in (x, residual, out, residual_out)]
        kernel = launch(views[0], views[1], weight, views[2], views[3], eps, config)
        if (kernel is not None and hasattr(kernel, "packed_metadata") and DirectLauncher.enabled
                and not _pointer_bits(x, residual, weight, out, residual_out) and current_device() == device_index):
            compiled = (kernel.run, kernel.function, kernel.packed_metadata)

    if n_rows == 0:
        return lambda x, residual, weight, out, residual_out, eps: None

    def direct(x, residual, weight, out, residual_out, eps):
        xp, wp, op = x.data_ptr(), weight.data_ptr(), out.data_ptr()
        rp, rop = (residual.data_ptr(), residual_out.data_ptr()) if fused else (xp, op)
        if compiled is None or (xp | wp | op | rp | rop) & 15 or not _launch_hooks_idle(_rmsnorm_kernel):
            return ordinary(x, residual, weight, out, residual_out, eps)
        if current_device() != device_index:
            with torch.cuda.device(device_index):
                return ordinary(x, residual, weight, out, residual_out, eps)
        run, function, metadata = compiled
        run(grid, 1, 1, current_stream(device_index), function, metadata, None, None, None,
            xp, rp, wp, op, rop, *tail, float(eps), *consts)

    return direct


def _pointer_bits(*tensors) -> int:
    """The OR of the tensors' data pointers' low 4 bits (0: all 16-byte aligned)."""
    bits = 0
    for t in tensors:
        if t is not None:
            bits |= t.data_ptr() & 15
    return bits


_PREPARED: dict = {}  # the dataset entries' launches on CUDA, one per layout (see _prepared)
_MAX_PREPARED = 1024


def _prepared(x, residual, out, residual_out):
    """The prepared launch (prepare_launch) for this layout of a dataset call on CUDA: the entries are called
    through apply() on a serving path, where a launch's host cost counts. The bench and apply() have
    checked the tensors against the definition; the key covers everything the launch depends on."""
    fused = residual is not None
    key = (x.shape, x.stride(), out.stride(), x.dtype, x.get_device(),
           residual.stride() if fused else None, residual_out.stride() if fused else None)
    fn = _PREPARED.get(key)
    if fn is None:
        rows, hidden = x.shape
        strides = (x.stride(0), residual.stride(0) if fused else 0, out.stride(0),
                   residual_out.stride(0) if fused else 0)
        if len(_PREPARED) >= _MAX_PREPARED:
            _PREPARED.clear()
        fn = _PREPARED[key] = prepare_launch(rows, hidden, strides, fused, x.device)
    return fn


def run_rmsnorm(hidden_states, weight, output):
    """Dataset entry for ``rmsnorm_h*``: output = rmsnorm(hidden_states) * weight, eps 1e-6."""
    if hidden_states.is_cuda:
        _prepared(hidden_states, None, output, None)(hidden_states, None, weight, output, None, DATASET_EPS)
    else:
        launch(hidden_states, None, weight, output, None, DATASET_EPS)


def run_fused_add_rmsnorm(hidden_states, residual, weight, output, residual_out):
    """Dataset entry for ``fused_add_rmsnorm_h*``: residual_out = hidden_states + residual, output =
    rmsnorm(residual_out) * weight, eps 1e-6; inputs are left unchanged."""
    if hidden_states.is_cuda:
        _prepared(hidden_states, residual, output, residual_out)(
            hidden_states, residual, weight, output, residual_out, DATASET_EPS)
    else:
        launch(hidden_states, residual, weight, output, residual_out, DATASET_EPS)
