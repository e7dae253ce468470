"""Shared fixtures; GPU-marked tests are skipped cleanly where no CUDA device exists."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DATASET = ROOT / "examples" / "dataset"


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items):
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run on the GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def example_dataset() -> Path:
    return EXAMPLE_DATASET


@pytest.fixture
def dataset_copy(tmp_path) -> Path:
    """A writable copy of the example dataset."""
    target = tmp_path / "dataset"
    shutil.copytree(EXAMPLE_DATASET, target, ignore=shutil.ignore_patterns(".*.lock"))
    return target
