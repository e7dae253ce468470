"""The wheel as a user gets it from pip: every kernel source inside, and kernels that build and run from it."""

import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel and a venv (about 40 s)

ROOT = Path(__file__).resolve().parents[2]
KERNEL_SOURCES = ("*.cu", "*.cuh", "*.c", "*.h", "*.py")

CHECK = """
import os, sys, torch
import kernelarena
from kernelarena.kernels import rmsnorm
from kernelarena.kernels.attention import native_plan

assert kernelarena.__file__.startswith(sys.prefix), kernelarena.__file__  # the wheel, not the source folder
x = torch.randn(3, 256, dtype=torch.bfloat16)
w = torch.randn(256, dtype=torch.bfloat16)
expected = (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6) * w.float()).to(x.dtype)
torch.testing.assert_close(rmsnorm(x, w, 1e-6, backend="triton"), expected, atol=2e-2, rtol=2e-2)
assert native_plan.available(), native_plan.unavailable_reason()
assert str(native_plan.library_path()).startswith(os.environ["KERNELARENA_CACHE_DIR"])
print("wheel ok")
"""


def tracked_files() -> list:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [name for name in listed.decode().split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the tracked files (the build leaves the checkout untouched)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    src = tmp_path_factory.mktemp("src")
    for name in tracked_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(src)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("kernelarena-*.whl")
    return built


def test_the_wheel_holds_every_kernel_source(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {str(p.relative_to(ROOT)) for pattern in KERNEL_SOURCES
               for p in (ROOT / "kernelarena" / "kernels").rglob(pattern) if "__pycache__" not in p.parts}
    assert "kernelarena/kernels/attention/small_decode.cu" in sources
    assert sorted(sources - names) == []


def test_kernels_build_and_run_from_the_installed_wheel(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    # The venv sees this machine's torch and triton; the wheel is installed without touching the network.
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TRITON_INTERPRET="1", KERNELARENA_CACHE_DIR=str(tmp_path / "cache"))
    result = subprocess.run([str(python), "-c", CHECK], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and "wheel ok" in result.stdout, result.stdout + result.stderr
    version = subprocess.run([str(env_dir / "bin" / "kernelarena"), "--version"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    declared = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert version.stdout.strip() == f"kernelarena {declared}", version.stdout + version.stderr
