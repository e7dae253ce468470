"""Small-batch decode in CUDA (``small_decode.cu``): build, schedule and launch.

Below one (request, KV head) pair per SM, decode moves a few MB and is bound by memory latency; the CUDA
kernel keeps a whole item's K/V in flight per SM and computes with tensor cores (or, with ``MMA = 0`` and
always at head_dim 256, with CUDA cores). ``AttentionRunner`` uses it for such batches on a GPU (see
runner.py); everything else goes to the Triton kernel.

The library is built on first use per variant (dtype, head_dim, GQA group, warps, unroll, stages, token
loop) with nvcc into
``<cache>/small_decode/<sha256 of source and flags[:12]>/small_decode.so`` (written under a temporary
name and renamed) and loaded with ctypes; launches go through one call that takes a packed argument block
(``struct.pack_into``, as native_plan.py does) and the stream. Without nvcc, without a GPU, on a build
failure, or with ``KERNELARENA_SMALL_DECODE=0`` in the environment (read at import), ``enabled``/``build``
say no and the runner keeps the Triton kernel.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import math
import os
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple, Optional

import torch

from kernelarena import env
from kernelarena.errors import UnsupportedError

SOURCE = Path(__file__).resolve().with_name("small_decode.cu")
ENV_SWITCH = env.SMALL_DECODE
ABI_VERSION = 6  # KA_ABI_VERSION of small_decode.cu
MAX_PAGES = 256  # KA_MAX_PAGES: a chunk spans at most this many pages
GROUPS = (1, 2, 4, 8)
HEAD_DIMS = (64, 128, 256)
DTYPES = {torch.bfloat16: 0, torch.float16: 1}
HEADER_WORDS = 4  # items, chunk, slots per (request, head), batch; then (first page, KV length) per request
MIN_WORDS = 32 * 16  # the kernel reads its block size (at most 16 warps) of words at once: the buffer's least size

enabled = env.small_decode_enabled()

# Launch shape (module attributes, so benchmarks/sweep_small_decode.py can try others). MMA picks the token
# loop: 1 the tensor-core one (mma_decode_kernel: each of WARPS warps keeps STAGES tiles of 16 tokens in
# flight), 0 the CUDA-core one (small_decode_kernel: UNROLL tokens a thread per step, STAGES steps deep).
# About CTAS_PER_SM items per SM, in chunks of at least MIN_CHUNK tokens. From the H100 sweeps
# (benchmarks/sweep_small_decode.py; docs/attention.md), batch 1 x 1024-8192: the tensor-core loop with
# 8 warps and 3 stages took 11.8 / 13.7 / 18.3 / 27.2 us against 13.0 / 14.8 / 19.2 / 28.2 for the CUDA-core
# loop's best; chunks of at least 256 tokens (32 and 64 items at 1024 and 2048 tokens) beat 128 by
# 0.3-0.4 us; more, shorter chunks lose to the per-item start and the merge.
MMA = 1
WARPS = 8
UNROLL = 4
STAGES = 3
CTAS_PER_SM = 1
MIN_CHUNK = 256
# INLINE: a schedule of at most INLINE_WORDS words travels in the launch's arguments (outside CUDA graphs).
INLINE = True
# Used up to this many (token, KV head) rows in the batch's pages (batch 1 x 8192 here). From batch 16 x 1024
# (131072 rows) up the Triton kernel streams K/V faster: 40.6 against 44.6 us there, 194.6 against 216.6 at
# 16 x 8192 (the same sweep).
MAX_TOKEN_HEADS = 65536

INLINE_WORDS = 16  # KA_INLINE_WORDS: a schedule this short travels in the launch's arguments (batch <= 6)
# HostArgs of small_decode.cu: 22 int64 fields, 2 doubles, the inline word count and the inline words (load()
# checks the size against the library's).
_ARGS = struct.Struct(f"22q2dq{INLINE_WORDS}i")


class Variant(NamedTuple):
    """Compile-time choices of one build of small_decode.cu."""

    dtype: int  # 0 bf16, 1 fp16
    head_dim: int
    group: int
    warps: int = 4
    unroll: int = 2
    stages: int = 4
    mma: int = 0  # 1: the tensor-core token loop (unroll unused)

    def flags(self) -> list[str]:
        return [f"-DKA_DTYPE={self.dtype}", f"-DKA_HEAD_DIM={self.head_dim}", f"-DKA_GROUP={self.group}",
                f"-DKA_WARPS={self.warps}", f"-DKA_UNROLL={self.unroll}", f"-DKA_STAGES={self.stages}",
                f"-DKA_MMA={self.mma}"]


class Schedule(NamedTuple):
    """What plan_small_decode decided: the words to copy to the device and the launch's sizes."""

    words: list  # int32 values, see small_decode.cu
    items: int
    chunk: int
    slots: int
    pairs: int  # requests x KV heads (one merge counter each)


def supports(q_dtype: torch.dtype, head_dim: int, group: int) -> bool:
    return q_dtype in DTYPES and head_dim in HEAD_DIMS and group in GROUPS


def variant_for(q_dtype: torch.dtype, head_dim: int, group: int) -> Variant:
    """The build the runner uses for this problem (MMA, WARPS, UNROLL and STAGES as set now; head_dim 256
    keeps the CUDA-core loop: the tensor-core one needs 255 registers there and its launch failed on the H100)."""
    mma = MMA if head_dim <= 128 else 0
    return Variant(DTYPES[q_dtype], head_dim, group, WARPS, 1 if mma else UNROLL, STAGES, mma)


def nvcc_command(variant: Variant, arch: str, output: str) -> list[str]:
    """The nvcc line that builds ``variant`` for ``arch`` (e.g. "90a") from the source on stdin."""
    from kernelarena.build.toolchain import find_nvcc

    nvcc = find_nvcc()
    if nvcc is None:
        raise UnsupportedError("nvcc not found: the CUDA small-batch decode kernel cannot be built")
    return [str(nvcc), "-O3", "-std=c++17", f"-gencode=arch=compute_{arch},code=sm_{arch}", "--shared",
            "-Xcompiler", "-fPIC", "-diag-suppress", "177", *variant.flags(), "-x", "cu", "-o", output, "-"]


def library_path(variant: Variant, arch: str) -> Path:
    from kernelarena.build.toolchain import default_cache_root

    key = hashlib.sha256(SOURCE.read_bytes() + repr((variant, arch)).encode()).hexdigest()[:12]
    return default_cache_root() / "small_decode" / key / "small_decode.so"


def compile_library(variant: Variant, arch: str) -> Path:
    """Build ``variant`` for ``arch`` into the cache (if not there yet); UnsupportedError on failure."""
    path = library_path(variant, arch)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix="small_decode.", suffix=".so.tmp", dir=path.parent)
    os.close(fd)
    try:
        result = subprocess.run(nvcc_command(variant, arch, temporary), input=SOURCE.read_bytes(),
                                capture_output=True, timeout=600)
        if result.returncode:
            log = result.stderr.decode(errors="replace")[-4000:]
            raise UnsupportedError(f"nvcc failed on {SOURCE.name} {variant} (exit {result.returncode}): {log}")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def device_arch(device: torch.device) -> str:
    major, minor = torch.cuda.get_device_capability(device)
    return f"{major}{minor}{'a' if major >= 9 else ''}"


def shared_memory_limit(device: torch.device) -> int:
    """Dynamic shared memory a block may ask for on ``device`` (bytes), less the kernels' static 4 KB at most."""
    optin = getattr(torch.cuda.get_device_properties(device), "shared_memory_per_block_optin", 227 << 10)
    return optin - 4096


@functools.lru_cache(maxsize=None)
def load(variant: Variant, arch: str) -> ctypes.PyDLL:
    """The loaded library of ``variant`` (built on first use); UnsupportedError when that fails."""
    path = compile_library(variant, arch)
    try:
        lib = ctypes.PyDLL(str(path))
        abi = lib.ka_small_decode_abi()
        lib.ka_small_decode_launch.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.ka_small_decode_launch.restype = ctypes.c_int
        built = (ctypes.c_int64 * 8)()
        lib.ka_small_decode_variant(built)
        lib.ka_small_decode_args_size.restype = ctypes.c_int64
        args_size = lib.ka_small_decode_args_size()
    except (OSError, AttributeError) as exc:
        raise UnsupportedError(f"cannot load {path}: {exc}") from exc
    expected = (*variant[:6], MAX_PAGES, variant.mma)
    if abi != ABI_VERSION or tuple(built) != expected or args_size != _ARGS.size:
        raise UnsupportedError(f"{path} is ABI {abi}, variant {tuple(built)}, {args_size}-byte arguments; "
                               f"small_decode.py expects ABI {ABI_VERSION}, variant {expected}, "
                               f"{_ARGS.size}-byte arguments")
    return lib


def as_list(values) -> list:
    return values if isinstance(values, list) else values.tolist()


def kv_lengths(kv_indptr, last_page_len, page_size: int) -> list[int]:
    """Tokens per request of a page table (0 for a request without pages); numpy arrays, CPU tensors or lists."""
    ind, last = as_list(kv_indptr), as_list(last_page_len)
    return [(ind[i + 1] - ind[i] - 1) * page_size + last[i] if ind[i + 1] > ind[i] else 0 for i in range(len(last))]


def plan_small_decode(kv_indptr, last_page_len, *, page_size: int, num_kv_heads: int, window_left: int,
                      target_items: int, min_chunk: int, max_items: int, chunk: Optional[int] = None) -> Schedule:
    """Split every (request, KV head) into chunks of one common length so that about ``target_items`` items
    exist (chunks of at least ``min_chunk`` tokens; ``chunk`` forces the length), within ``max_items``
    workspace slots and (MAX_PAGES - 1) pages a chunk. KV lengths count only the keys a sliding window
    keeps. UnsupportedError when no chunk length satisfies both limits.

    Plain Python on lists: for the few requests of a small batch that is 3 us where numpy took 11."""
    max_chunk = (MAX_PAGES - 1) * page_size
    lengths = kv_lengths(kv_indptr, last_page_len, page_size)
    batch = len(lengths)
    visible = [min(n, window_left + 1) for n in lengths] if window_left >= 0 else lengths
    longest = max(visible, default=0)
    pairs = batch * num_kv_heads
    forced = chunk is not None
    if chunk is None:
        chunk = max(min_chunk, -(-sum(visible) * num_kv_heads // max(target_items, 1)))
        chunk = -(-chunk // 16) * 16
    chunk = min(max(int(chunk), 1), max_chunk)
    slots = max(1, -(-longest // chunk))
    if pairs and pairs * slots > max_items:  # fewer, longer chunks so the partial states fit the workspace
        per_pair = max_items // pairs
        if per_pair < 1:
            raise UnsupportedError(f"{pairs} (request, head) pairs exceed the workspace's {max_items} slots")
        chunk = -(-longest // per_pair)
        if chunk > max_chunk:
            raise UnsupportedError(f"{pairs} pairs of up to {longest} keys need chunks of {chunk} tokens to fit "
                                   f"{max_items} workspace slots; the kernel takes at most {max_chunk}")
        slots = max(1, -(-longest // chunk))
    if not forced and slots > 1:  # the longest request's chunks as even as 16s allow: 3 x 2736, not 2 x 4080 + 32
        chunk = min(chunk, max(min_chunk, -(-longest // slots // 16) * 16))
    words = [pairs * slots, chunk, slots, batch]
    for first, n in zip(as_list(kv_indptr), lengths):
        words += (first, n)
    return Schedule(words, pairs * slots, chunk, slots, pairs)


class SmallDecodeLauncher:
    """Launches one variant of the kernel with arguments fixed at plan() time (see AttentionRunner)."""

    def __init__(self, variant: Variant, device: torch.device):
        self.variant = variant
        self.device = device
        self._lib = load(variant, device_arch(device))
        self._lib.ka_small_decode_shared_bytes.restype = ctypes.c_int64
        smem, limit = self._lib.ka_small_decode_shared_bytes(), shared_memory_limit(device)
        if smem > limit:
            raise UnsupportedError(f"small-batch decode {variant} needs {smem} bytes of shared memory a block; "
                                   f"{torch.cuda.get_device_name(device)} allows {limit}")
        self._launch = self._lib.ka_small_decode_launch
        self._block = ctypes.create_string_buffer(_ARGS.size)
        self._block_addr = ctypes.addressof(self._block)
        self._fixed: tuple = ()
        self._raw_stream = torch._C._cuda_getCurrentRawStream
        self._capturing = torch.cuda.is_current_stream_capturing  # a captured launch reads the words buffer
        self._device_index = device.index if device.index is not None else torch.cuda.current_device()

    def prepare(self, *, o_part: torch.Tensor, lse_part: torch.Tensor, counters: torch.Tensor,
                words: torch.Tensor, kv_indices: torch.Tensor, num_kv_heads: int, page_size: int,
                window_left: int, sm_scale: float, logits_soft_cap: float, grid: int,
                inline_words: Optional[list] = None) -> None:
        """Fix the launch's arguments for a plan. ``inline_words``: the schedule's words, to pass in the
        arguments when there are at most INLINE_WORDS of them (None: the kernel always reads ``words``, as it
        must in a CUDA graph replayed after later plans)."""
        log2e = 1.0 / math.log(2.0)
        if logits_soft_cap > 0:
            q_scale, cap_out = sm_scale / logits_soft_cap, logits_soft_cap * log2e
        else:
            q_scale, cap_out = sm_scale * log2e, 0.0
        self._fixed = (o_part.data_ptr(), lse_part.data_ptr(), counters.data_ptr(), words.data_ptr(),
                       kv_indices.data_ptr())
        self._tail = (num_kv_heads, page_size, window_left, grid, q_scale, cap_out, 0, *[0] * INLINE_WORDS)
        self._tail_inline = self._tail
        if inline_words is not None and len(inline_words) <= INLINE_WORDS:
            padded = list(inline_words) + [0] * (INLINE_WORDS - len(inline_words))
            self._tail_inline = (*self._tail[:6], len(inline_words), *padded)

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                 lse: Optional[torch.Tensor], kv_strides: tuple[int, int, int]) -> None:
        if k.stride(-1) != 1 or v.stride() != k.stride() or out.stride(-1) != 1 or kv_strides[1] * self._tail[1] >> 31:
            raise UnsupportedError("small-batch decode needs K and V with the same strides, contiguous rows and a "
                                   "page's token offsets below 2^31 elements")
        qs, os_ = q.stride(), out.stride()
        _ARGS.pack_into(self._block, 0, q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(),
                        0 if lse is None else lse.data_ptr(), *self._fixed, qs[0], qs[1], os_[0], os_[1],
                        0 if lse is None else lse.stride(0), *kv_strides,
                        *(self._tail if self._capturing() else self._tail_inline))
        code = self._launch(self._block_addr, self._raw_stream(self._device_index))
        if code:
            raise RuntimeError(f"small-batch decode {self.variant} launch failed with CUDA error {code}")
