"""Tiny solutions for the builder tests, and a cache folder per test."""

from __future__ import annotations

import shutil
from typing import Dict

import pytest

from kernelarena.schema import Solution


def make_solution(name: str, language: str, entry_point: str, files: Dict[str, str], **spec) -> Solution:
    """A Solution with ``files`` (path -> content) as its sources."""
    return Solution.model_validate({
        "name": name,
        "definition": "tiny_add",
        "author": "tests",
        "spec": {"language": language, "target_hardware": ["cpu"], "entry_point": entry_point, **spec},
        "sources": [{"path": path, "content": content} for path, content in files.items()],
    })


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A fresh KERNELARENA_CACHE_DIR for this test (the process default cache follows it)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("KERNELARENA_CACHE_DIR", str(root))
    return root


def nvcc_available() -> bool:
    from kernelarena.build.toolchain import find_nvcc

    return find_nvcc() is not None


def cxx_available() -> bool:
    return shutil.which("c++") is not None
