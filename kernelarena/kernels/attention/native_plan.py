"""``scheduler.plan_work`` compiled from C (``native_plan.c``), called through ctypes: the same int32 words and
the same PlanSummary in about a microsecond of C instead of tens of microseconds of numpy calls.

The C file is built on first use with the system compiler (``cc``, else ``gcc``) into
``<cache>/native_plan/<sha256 of the source[:12]>/native_plan.so`` (cache root: ``$KERNELARENA_CACHE_DIR``,
else ``$XDG_CACHE_HOME/kernelarena``, else ``~/.cache/kernelarena``), compiled to a temporary name and
renamed, so concurrent processes never load a half-written library. Without a compiler, when the build
fails, or with ``KERNELARENA_NATIVE_PLAN=0`` in the environment (read once, at import), the planner is
unavailable (``unavailable_reason()`` says why) and the runner keeps calling ``scheduler.plan_work``, which
stays the specification (the dataset's solutions embed it verbatim). ``enabled`` is the switch, for tests.

Index arrays may be numpy arrays or CPU torch tensors, int32 or int64, read in place when contiguous;
anything else (device tensors, other dtypes, strided views, inconsistent lengths, sizes numpy rejects)
goes through ``scheduler.plan_work``, so errors stay numpy's.

Per-call Python overhead is the point, so each choice is measured (on the project's CPU machine): the
arguments go in one ``struct.pack_into`` of a preallocated int64 block (0.3 us for 21 values; as 21 ctypes
arguments they cost 2.4 us), the library is loaded as a PyDLL (the call keeps the GIL: 80 ns with no
argument, 160 ns with the block's address, against 100 and 200 ns through CDLL), a numpy array's address
comes from ``ctypes.c_byte.from_buffer`` (0.26 us; ``arr.ctypes.data`` and ``__array_interface__`` take
1 us), a tensor's from ``data_ptr()`` after four attribute checks (0.5 us a tensor; ``len()`` of a tensor
alone costs 0.4 us, ``numel()`` 0.06), and the work buffer's address is cached per buffer object. The call
into C (ctypes included) takes 0.2-1.2 us for the decode cases of benchmarks/profile_plan.py and 1.1-2.1 us
for its causal prefill cases; the rest of the 2.8-5.8 us that native plan_work costs there is this module's
Python.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from kernelarena import env

from . import scheduler
from .scheduler import PlanSummary

SOURCE = Path(__file__).resolve().with_name("native_plan.c")
ENV_SWITCH = env.NATIVE_PLAN
ABI_VERSION = 2  # ka_native_plan_abi() of a library built from the current source

# The switch: False makes the runner use scheduler.plan_work (numpy). Read from the environment once.
enabled = env.native_plan_enabled()

# The argument block (int64 words): ka_plan_work's arguments (0-20) and results (24-29), A_* and R_* in
# native_plan.c; ka_query_extent's arguments and results (32-34).
_BLOCK_WORDS = 40
_ARGUMENTS = struct.Struct("21q")
_RESULTS = struct.Struct("5q")  # num_entries, num_groups, num_slots, words, chunk
_RESULTS_AT = 24 * 8
_NEEDED = 29  # R_NEEDED: the words or slots an overflowing schedule needs
_EXTENT = struct.Struct("3q")
_EXTENT_AT = 32 * 8

# Return codes of ka_plan_work.
_PLAN_WORDS, _PLAN_SLOTS, _PLAN_NO_MEMORY, _PLAN_DEFER = -1, -2, -3, -4

_INT32 = np.dtype(np.int32)
_NUMPY_IS64 = {_INT32: 0, np.dtype(np.int64): 1}
_TORCH_IS64 = {torch.int32: 0, torch.int64: 1}
_CONTIGUOUS = (1,)


def unavailable_reason() -> Optional[str]:
    """Why the native planner is not used (disabled, no compiler, build or load failure), or None."""
    if not enabled:
        return f"disabled ({ENV_SWITCH}=0 or native_plan.enabled = False)"
    return _library()[1]


def available() -> bool:
    """True when plan() uses the native planner: enabled, built and loaded (builds on the first call)."""
    return unavailable_reason() is None


def library_path(source: Optional[bytes] = None) -> Path:
    """Where the library built from ``source`` (default: native_plan.c as it is now) is or will be cached."""
    from kernelarena.build.toolchain import default_cache_root  # the build package, only once a planner is made

    digest = hashlib.sha256(SOURCE.read_bytes() if source is None else source).hexdigest()[:12]
    return default_cache_root() / "native_plan" / digest / "native_plan.so"


@functools.lru_cache(maxsize=None)
def _library() -> tuple[Optional[ctypes.PyDLL], Optional[str]]:
    """(library, None), or (None, the reason it could not be built or loaded). Built once per source."""
    try:
        source = SOURCE.read_bytes()
    except OSError as exc:
        return None, f"cannot read {SOURCE}: {exc}"
    path = library_path(source)
    if not path.is_file():
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            return None, "no C compiler (cc or gcc) on PATH"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix="native_plan.", suffix=".so.tmp", dir=path.parent)
            os.close(fd)
        except OSError as exc:
            return None, f"cannot write to the build cache {path.parent}: {exc}"
        try:
            # The source goes in on stdin: the library is built from exactly the bytes its name hashes.
            command = [compiler, "-O2", "-shared", "-fPIC", "-std=c99", "-x", "c", "-o", temporary, "-"]
            result = subprocess.run(command, input=source, capture_output=True, timeout=300)
            if result.returncode:
                log = result.stderr.decode(errors="replace")[-4000:]
                return None, f"{compiler} failed on {SOURCE.name} (exit {result.returncode}): {log}"
            os.replace(temporary, path)
        except (OSError, subprocess.SubprocessError) as exc:
            return None, f"building {SOURCE.name} with {compiler} failed: {exc}"
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    try:
        lib = ctypes.PyDLL(str(path))  # keeps the GIL through the call: 40 ns less than CDLL per call
        lib.ka_native_plan_abi.argtypes, lib.ka_native_plan_abi.restype = [], ctypes.c_int
        lib.ka_plan_work.argtypes, lib.ka_plan_work.restype = [ctypes.c_void_p], ctypes.c_int
        lib.ka_query_extent.argtypes, lib.ka_query_extent.restype = [ctypes.c_void_p], None
    except (OSError, AttributeError) as exc:
        return None, f"cannot load {path}: {exc}"
    if lib.ka_native_plan_abi() != ABI_VERSION:
        return None, f"{path} has ABI {lib.ka_native_plan_abi()}, expected {ABI_VERSION}"
    return lib, None


def _index_view(values) -> Optional[tuple[int, int, int]]:
    """(address, 1 if int64 else 0, length) of a 1-D contiguous int32/int64 numpy array or CPU tensor, else None."""
    if type(values) is np.ndarray:
        is64 = _NUMPY_IS64.get(values.dtype)
        if is64 is None or values.ndim != 1 or not values.flags.c_contiguous:
            return None
        if not len(values):
            return 0, is64, 0
        if values.flags.writeable:  # from_buffer needs a writable buffer: a quarter of __array_interface__'s time
            return ctypes.addressof(ctypes.c_byte.from_buffer(values)), is64, len(values)
        return values.__array_interface__["data"][0], is64, len(values)
    if isinstance(values, torch.Tensor):
        is64 = _TORCH_IS64.get(values.dtype)
        # stride() == (1,): 1-D and contiguous in one call; numel(), not len(): len() of a tensor costs 0.4 us
        if is64 is None or not values.is_cpu or values.stride() != _CONTIGUOUS:
            return None
        return values.data_ptr(), is64, values.numel()
    return None


def host_numpy(values) -> Optional[np.ndarray]:
    """A numpy view (or copy) of an index array, None kept: what scheduler.plan_work takes."""
    if values is None or isinstance(values, np.ndarray):
        return values
    return values.numpy() if values.is_cpu else values.cpu().numpy()


class NativePlanner:
    """``scheduler.plan_work`` in C, with its own argument block: one planner per runner (or thread).

    ``planner(out, qo_indptr, kv_page_indptr, kv_last_page_len, **keywords)`` is plan_work. A caller that needs
    the batch's sizes first (plan() does, to choose tile sizes) calls ``read_batch`` with the same array objects
    just before; the call then reuses what it read. Raises RuntimeError when the library is unavailable."""

    def __init__(self):
        lib, reason = _library()
        if lib is None:
            raise RuntimeError(f"native planner unavailable: {reason}")
        self._plan, self._extent = lib.ka_plan_work, lib.ka_query_extent
        self._block = (ctypes.c_int64 * _BLOCK_WORDS)()
        self._address = ctypes.addressof(self._block)
        self._bytes = memoryview(self._block).cast("B")  # pack_into on a byte view: 280 ns, on the array 440
        self._outs: dict = {}  # id(out) -> (out, address, words): the runner's two staging buffers
        self._batch: Optional[tuple] = None  # read_batch's arrays and their views, until the next call

    def read_batch(self, qo_indptr, kv_page_indptr, kv_last_page_len) -> Optional[tuple[int, int, int]]:
        """(batch, total queries, most queries of one request: 1 in decode, 0 without requests) of the index
        arrays, kept for the next call; None when C cannot read them in place (device tensors, other dtypes,
        strided) or their lengths disagree: the caller then goes through numpy, which raises its errors."""
        self._batch = None
        kv, last = _index_view(kv_page_indptr), _index_view(kv_last_page_len)
        if kv is None or last is None:
            return None
        batch = kv[2] - 1
        if batch < 0 or last[2] != batch:
            return None
        if qo_indptr is None:
            qo, total, most = (0, 0, 0), batch, 1
        else:
            qo = _index_view(qo_indptr)
            if qo is None or qo[2] != batch + 1:
                return None
            _EXTENT.pack_into(self._bytes, _EXTENT_AT, qo[0], qo[1], batch)
            self._extent(self._address + _EXTENT_AT)
            total, most = self._block[32], self._block[33]
        self._batch = (qo_indptr, kv_page_indptr, kv_last_page_len, qo[0], kv[0], last[0], batch,
                       qo[1] | kv[1] << 1 | last[1] << 2)
        return batch, total, most

    def __call__(self, out: np.ndarray, qo_indptr, kv_page_indptr, kv_last_page_len, *, page_size: int,
                 group_size: int, num_kv_heads: int, block_m: int, block_n: int, causal: bool, window_left: int,
                 target_ctas: int, min_chunk: int, split_size: Optional[int] = None, max_slots: Optional[int] = None,
                 split_factor: int = 1) -> PlanSummary:
        """As ``scheduler.plan_work`` (same arguments, words, summary and ValueError), also taking CPU tensors."""
        batch = self._batch
        if (batch is None or qo_indptr is not batch[0] or kv_page_indptr is not batch[1]
                or kv_last_page_len is not batch[2]):
            if self.read_batch(qo_indptr, kv_page_indptr, kv_last_page_len) is None:
                return self._numpy(out, qo_indptr, kv_page_indptr, kv_last_page_len, locals())
            batch = self._batch
        self._batch = None  # read once: the same objects may hold other values (or storage) by the next call
        out_entry = self._outs.get(id(out))
        if out_entry is None:
            out_entry = self._out_entry(out)
            if out_entry is None:
                return self._numpy(out, qo_indptr, kv_page_indptr, kv_last_page_len, locals())
        try:
            _ARGUMENTS.pack_into(
                self._bytes, 0, out_entry[1], out_entry[2], batch[3], batch[4], batch[5], batch[6], batch[7],
                page_size, group_size, num_kv_heads, block_m, block_n, causal, window_left, target_ctas, min_chunk,
                split_size is not None, 0 if split_size is None else int(split_size), max_slots is not None,
                0 if max_slots is None else max_slots, split_factor)
        except (struct.error, TypeError, ValueError):  # beyond int64, or not integers: numpy's behaviour
            return self._numpy(out, qo_indptr, kv_page_indptr, kv_last_page_len, locals())
        code = self._plan(self._address)
        if code == 0:  # tuple.__new__: PlanSummary._make's 190 ns less its checks, 125 ns
            return tuple.__new__(PlanSummary, _RESULTS.unpack_from(self._bytes, _RESULTS_AT))
        needed = self._block[_NEEDED]
        if code == _PLAN_WORDS:
            raise ValueError(f"schedule needs {needed} int32 words, the work buffer holds {out.shape[0]}")
        if code == _PLAN_SLOTS:
            raise ValueError(f"schedule needs {needed} partial-result slots, the workspace holds {max_slots}")
        if code == _PLAN_NO_MEMORY:
            raise MemoryError("native plan_work could not allocate its tile list")
        if code != _PLAN_DEFER:
            raise RuntimeError(f"native plan_work returned {code}, which native_plan.py does not know")
        return self._numpy(out, qo_indptr, kv_page_indptr, kv_last_page_len, locals())

    def _out_entry(self, out) -> Optional[tuple[np.ndarray, int, int]]:
        """(out, its address, its length) cached by id (the reference held keeps the id unique), or None when
        ``out`` is not a writable 1-D int32 contiguous numpy array."""
        if (type(out) is not np.ndarray or out.dtype != _INT32 or out.ndim != 1 or not out.flags.c_contiguous
                or not out.flags.writeable or not len(out)):
            return None
        if len(self._outs) >= 4:  # the runner has two; the references held keep buffers alive
            self._outs.clear()
        entry = self._outs[id(out)] = (out, ctypes.addressof(ctypes.c_byte.from_buffer(out)), len(out))
        return entry

    @staticmethod
    def _numpy(out, qo_indptr, kv_page_indptr, kv_last_page_len, arguments: dict) -> PlanSummary:
        """scheduler.plan_work on numpy views of the same arguments (its behaviour for what C does not take)."""
        keywords = {name: arguments[name] for name in _KEYWORDS}
        return scheduler.plan_work(out, host_numpy(qo_indptr), host_numpy(kv_page_indptr),
                                   host_numpy(kv_last_page_len), **keywords)


_KEYWORDS = ("page_size", "group_size", "num_kv_heads", "block_m", "block_n", "causal", "window_left", "target_ctas",
             "min_chunk", "split_size", "max_slots", "split_factor")
_THREAD = threading.local()


def planner() -> Optional[NativePlanner]:
    """A new NativePlanner when the native path is enabled and available (building it on first use), else None."""
    return NativePlanner() if available() else None


def plan_work(out: np.ndarray, qo_indptr, kv_page_indptr, kv_last_page_len, **keywords) -> PlanSummary:
    """``scheduler.plan_work`` through this thread's native planner when available, else numpy."""
    if not available():
        return scheduler.plan_work(out, host_numpy(qo_indptr), host_numpy(kv_page_indptr),
                                   host_numpy(kv_last_page_len), **keywords)
    native = getattr(_THREAD, "planner", None)
    if native is None:
        native = _THREAD.planner = NativePlanner()
    return native(out, qo_indptr, kv_page_indptr, kv_last_page_len, **keywords)
