"""The version is written once, in pyproject.toml, and read from the installed package's metadata."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

import kernelarena
from kernelarena import version

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_the_one_in_pyproject():
    try:
        installed = metadata.version("kernelarena")
    except metadata.PackageNotFoundError:
        pytest.skip("kernelarena is not installed here (pip install -e .)")
    written = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    assert kernelarena.__version__ == installed == written


def test_an_uninstalled_tree_gets_a_placeholder(monkeypatch):
    import importlib

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    try:
        assert importlib.reload(version).__version__ == version.UNINSTALLED_VERSION
    finally:
        monkeypatch.undo()
        importlib.reload(version)


def test_public_api_has_both_tracing_switches():
    from kernelarena.tracing import disable_tracing, enable_tracing

    assert kernelarena.enable_tracing is enable_tracing and kernelarena.disable_tracing is disable_tracing
    assert {"enable_tracing", "disable_tracing", "__version__"} <= set(kernelarena.__all__)
