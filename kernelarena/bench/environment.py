"""The hardware and library versions an evaluation ran with."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess

import torch

from ..schema import Environment

_PACKAGES = {"triton": "triton", "flashinfer": "flashinfer-python", "tvm_ffi": "apache-tvm-ffi",
             "tilelang": "tilelang"}


@functools.lru_cache(maxsize=None)
def environment(device: str) -> Environment:
    """Device name, driver, and the versions of torch, triton, CUDA and Python (cached per device)."""
    libs = {"torch": torch.__version__, "python": platform.python_version()}
    for name, package in _PACKAGES.items():
        try:  # read metadata instead of importing: importing triton here would fix its interpreter mode
            libs[name] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        hardware = torch.cuda.get_device_name(index)
        libs["cuda"] = str(torch.version.cuda)
        major, minor = torch.cuda.get_device_capability(index)
        libs["compute_capability"] = f"{major}.{minor}"
        try:
            driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                    capture_output=True, text=True, timeout=10).stdout.split()
            if driver:
                libs["driver"] = driver[0]
        except (OSError, subprocess.SubprocessError):
            pass
    else:
        hardware = f"CPU {cpu_model_name()}"
    return Environment(hardware=hardware, libs=libs)


def local_hardware(device: str = "") -> str:
    """The hardware name traces made here record (``environment.hardware``): of ``device``, else of the
    first GPU when one is visible, else of the CPU."""
    if not device:
        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    return environment(device).hardware


def cpu_model_name() -> str:
    """The CPU's model name (/proc/cpuinfo's "model name", else what platform knows)."""
    name = platform.processor() or platform.machine() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        return name
