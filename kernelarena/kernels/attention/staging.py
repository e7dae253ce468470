"""The schedule's way from the host to the device: two pinned staging buffers used in turn, one copy per plan.

plan() writes the work list into ``begin()``'s host buffer and calls ``commit(words)``, which copies the used
prefix into the fixed device buffer (the kernel's ``WORK``) on the current stream and records an event. The
copy of plan n may still be reading its buffer while plan n+1 writes the other one; plan n+2 waits for plan
n's event before reusing the first (long done in practice).

On a GPU the copy and the events go straight to the CUDA runtime through ctypes: torch's ``copy_`` from
pinned memory plus ``Event.record`` cost 11-19 us of host time per plan() on the H100 machine's slow CPU
(benchmarks/profile_plan.py), a third of plan(). When the runtime library cannot be found in the
process, the torch calls are used instead.
"""

from __future__ import annotations

import ctypes
from typing import Optional

import numpy as np
import torch

_CUDA_MEMCPY_HOST_TO_DEVICE = 1
_CUDA_EVENT_DISABLE_TIMING = 2


def _loaded_cudart() -> Optional[ctypes.CDLL]:
    """The CUDA runtime library torch has already loaded into this process (Linux), or None."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libcudart.so" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
            lib.cudaMemcpyAsync.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                            ctypes.c_void_p]
            lib.cudaEventRecord.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            lib.cudaEventSynchronize.argtypes = [ctypes.c_void_p]
            lib.cudaEventCreateWithFlags.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_uint]
            lib.cudaEventDestroy.argtypes = [ctypes.c_void_p]
            return lib
        except (OSError, AttributeError):
            continue
    return None


class StagedCopy:
    """Pinned staging buffers and the copy into ``device_words`` (see the module docstring)."""

    use_runtime = True  # False: always torch's copy_ and events (the tests compare the two)

    def __init__(self, device_words: torch.Tensor):
        self.device_words = device_words
        self.on_gpu = device_words.device.type == "cuda"
        n = device_words.numel()
        self._host = [torch.zeros(n, dtype=torch.int32, pin_memory=self.on_gpu) for _ in range(2)]
        self.host_np = [h.numpy() for h in self._host]
        self.stage = 0
        self._views: dict = {}  # (stage, words) -> (device view, host view) of the words rounded up
        self._lib = _loaded_cudart() if self.on_gpu and StagedCopy.use_runtime else None
        self._events: list = [None, None]
        self._recorded = [False, False]
        if self._lib is not None:
            self._device_index = device_words.device.index
            if self._device_index is None:
                self._device_index = torch.cuda.current_device()
            for i in range(2):
                handle = ctypes.c_void_p()
                with torch.cuda.device(self._device_index):
                    if self._lib.cudaEventCreateWithFlags(ctypes.byref(handle), _CUDA_EVENT_DISABLE_TIMING):
                        self._lib = None
                        break
                self._events[i] = handle
        if self._lib is None and self.on_gpu:
            self._events = [torch.cuda.Event(), torch.cuda.Event()]

    def begin(self) -> np.ndarray:
        """Switch to the other staging buffer, wait until no copy reads it, and return it (int32 numpy)."""
        stage = self.stage = 1 - self.stage
        if self._recorded[stage]:
            if self._lib is not None:
                err = self._lib.cudaEventSynchronize(self._events[stage])
                if err:
                    raise RuntimeError(f"cudaEventSynchronize failed with CUDA error {err}")
            else:
                self._events[stage].synchronize()
        return self.host_np[stage]

    def commit(self, words: int) -> None:
        """Copy the first ``words`` of the current staging buffer to the device (asynchronously on a GPU)."""
        stage = self.stage
        dst, src = self._view(stage, words)
        if self._lib is not None:
            stream = torch._C._cuda_getCurrentRawStream(self._device_index)
            err = self._lib.cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), src.numel() * 4,
                                            _CUDA_MEMCPY_HOST_TO_DEVICE, stream)
            err = err or self._lib.cudaEventRecord(self._events[stage], stream)
            if err:
                raise RuntimeError(f"host-to-device copy of the attention schedule failed with CUDA error {err}")
        else:
            dst.copy_(src, non_blocking=True)
            if self.on_gpu:
                self._events[stage].record()
        self._recorded[stage] = self.on_gpu

    def _view(self, stage: int, words: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Device and host views of the first ``words`` rounded up to a power of two (cached: slicing a tensor
        costs host time; copying up to twice the words costs a few microseconds of transfer at most)."""
        views = self._views.get((stage, words))
        if views is None:
            size = min(max(1 << (words - 1).bit_length(), 1024), self.device_words.numel())
            if len(self._views) >= 512:
                self._views.clear()
            views = self._views[(stage, words)] = (self.device_words[:size], self._host[stage][:size])
        return views

    def __del__(self):
        lib = getattr(self, "_lib", None)
        if lib is not None:
            for handle in self._events:
                if handle is not None:
                    lib.cudaEventDestroy(handle)
