"""Facts about the machine a build targets: the device, its CUDA arch, and the toolchain versions.

Everything here feeds the build cache key, so a change of compiler, library or GPU gives a new key.
"""

from __future__ import annotations

import functools
import platform
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Optional, Tuple

from .. import env
from ..errors import UnsupportedError

# Arch used to compile CUDA sources on a machine without a GPU, where the build can only check that the
# sources compile. Our GPU target is the H100 (sm_90a), so a kernel using wgmma/TMA still passes the check.
CHECK_ONLY_CUDA_ARCH = "9.0a"


def default_cache_root() -> Path:
    """``$KERNELARENA_CACHE_DIR``, else ``$XDG_CACHE_HOME/kernelarena``, else ``~/.cache/kernelarena``."""
    return env.cache_root()


@dataclass(frozen=True)
class BuildTarget:
    """The device a solution is built for.

    ``capability`` is the CUDA compute capability of that device, None for the CPU.
    """

    device: str
    capability: Optional[Tuple[int, int]] = None

    @property
    def is_cuda(self) -> bool:
        return self.capability is not None

    @property
    def cuda_arch(self) -> str:
        """Arch to compile CUDA for, as ``major.minor[a]``: the device's, or CHECK_ONLY_CUDA_ARCH on a CPU."""
        if self.capability is None:
            return CHECK_ONLY_CUDA_ARCH
        return cuda_arch_for_capability(self.capability)

    @property
    def cache_tag(self) -> str:
        """The part of the cache key that names the device: ``cpu`` or ``cuda-sm90``.

        Two GPUs of one kind share builds, so the device index is left out.
        """
        if self.capability is None:
            return "cpu"
        return f"cuda-sm{self.capability[0]}{self.capability[1]}"


def cuda_arch_for_capability(capability: Tuple[int, int]) -> str:
    """``(9, 0)`` -> ``"9.0a"``: arch-specific features (wgmma, TMA, tcgen05) need the ``a`` variant,
    which exists for sm_90 and later."""
    major, minor = capability
    return f"{major}.{minor}{'a' if major >= 9 else ''}"


def gencode_flag(arch: str) -> str:
    """``"9.0a"`` -> ``-gencode=arch=compute_90a,code=sm_90a``."""
    number = arch.replace(".", "")
    return f"-gencode=arch=compute_{number},code=sm_{number}"


def resolve_target(device: str) -> BuildTarget:
    """Turn ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a BuildTarget.

    Raises UnsupportedError for a CUDA device this machine does not have, or a device type we do not build
    for.
    """
    import torch

    dev = torch.device(device)
    if dev.type == "cpu":
        return BuildTarget("cpu")
    if dev.type != "cuda":
        raise UnsupportedError(f"cannot build for device {device!r}: only 'cpu' and 'cuda[:N]' are supported")
    if not torch.cuda.is_available():
        raise UnsupportedError(f"cannot build for device {device!r}: this machine has no CUDA device")
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise UnsupportedError(f"cannot build for device {device!r}: only {torch.cuda.device_count()} visible")
    return BuildTarget(f"cuda:{index}", tuple(torch.cuda.get_device_capability(index)))


def python_version() -> str:
    return platform.python_version()


def package_version(name: str) -> Optional[str]:
    """Installed version of a distribution, or None when it is not installed (does not import it)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def find_nvcc() -> Optional[str]:
    """Path of nvcc: ``$CUDA_HOME/bin/nvcc``, else the one on PATH, else ``/usr/local/cuda/bin/nvcc``."""
    for home in env.cuda_homes():
        if home and (Path(home) / "bin" / "nvcc").is_file():
            return str(Path(home) / "bin" / "nvcc")
    found = shutil.which("nvcc")
    if found:
        return found
    fallback = Path("/usr/local/cuda/bin/nvcc")
    return str(fallback) if fallback.is_file() else None


@functools.lru_cache(maxsize=None)
def _tool_version(executable: str) -> str:
    completed = subprocess.run([executable, "--version"], capture_output=True, text=True, check=False)
    lines = [line.strip() for line in completed.stdout.splitlines() if line.strip()]
    # nvcc ends with "Build cuda_13.0.r13.0/compiler.36424714_0"; gcc starts with "c++ (...) 13.3.0".
    return lines[-1] if "nvcc" in executable else (lines[0] if lines else "unknown")


def nvcc_version() -> Optional[str]:
    """nvcc's build line, or None when nvcc is absent."""
    nvcc = find_nvcc()
    return _tool_version(nvcc) if nvcc else None


def cxx_compiler() -> str:
    """The host C++ compiler: ``$CXX`` or ``c++`` (what torch and tvm-ffi use too)."""
    return env.cxx()


def cxx_version() -> Optional[str]:
    """First line of the host C++ compiler's ``--version``, or None when it is absent."""
    cxx = shutil.which(cxx_compiler())
    return _tool_version(cxx) if cxx else None
