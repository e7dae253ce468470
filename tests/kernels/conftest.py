import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _portable_prefill(request, monkeypatch):
    """A test module with ``PORTABLE_PREFILL = True`` tests the portable Triton kernel: on an H100/H200 its prefill
    plans would otherwise take the TileLang kernel (prefill_hopper.mode "auto"), compiling one kernel per shape of
    its parameter grid. test_attention_prefill_tilelang.py tests that default path; elsewhere (the CPU, other GPUs)
    the pin changes nothing."""
    if getattr(request.module, "PORTABLE_PREFILL", False):
        from kernelarena.kernels.attention import prefill_hopper

        monkeypatch.setattr(prefill_hopper, "mode", "off")
