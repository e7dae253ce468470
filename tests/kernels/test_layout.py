"""Every operator under kernelarena/kernels/ ships its kernel sources, and follows the one layout."""

import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "kernelarena"
SOURCE_SUFFIXES = {".cu", ".cuh", ".c", ".h"}


def test_package_data_covers_every_kernel_source():
    tomllib = pytest.importorskip("tomllib")
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["kernelarena"]
    sources = [p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / "kernels").rglob("*") if p.suffix in SOURCE_SUFFIXES]
    assert sources
    # setuptools matches each glob against the path relative to the package; "*" does not cross a "/".
    missing = [s for s in sources
               if not any(fnmatch.fnmatch(s, g) and s.count("/") == g.count("/") for g in globs)]
    assert missing == [], f"add these to [tool.setuptools.package-data] in pyproject.toml: {missing}"


def test_rmsnorm_backend_table():
    from kernelarena.kernels.rmsnorm import BACKENDS
    from kernelarena.kernels.rmsnorm.backends import TABLE

    assert BACKENDS == ("auto", *TABLE)
    for name, backend in TABLE.items():
        assert backend.name == name and callable(backend.unavailable) and callable(backend.prepare)
        assert backend.host_cost
    for name in ("reference.py", "triton.py", "tilelang.py", "cuda/rmsnorm.cuh", "backends.py", "solutions.py"):
        assert (PACKAGE / "kernels" / "rmsnorm" / name).is_file(), name
