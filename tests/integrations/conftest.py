"""FlashInfer integration tests: the real flashinfer package, a dataset re-made for tiny shapes, CPU solutions."""

from __future__ import annotations

import os

import pytest
import torch

# Before anything imports our Triton kernels: @triton.jit reads this when a kernel is defined.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from kernelarena.serving.dataset import derive_dataset, named_routing  # noqa: E402
from kernelarena.store import TraceSet  # noqa: E402
from tests.apply.conftest import apply_off  # noqa: E402,F401
from tests.conftest import EXAMPLE_DATASET  # noqa: E402

flashinfer = pytest.importorskip("flashinfer")

SHAPES = dict(H=64, Hq=4, Hkv=2, D=64, P=16)
RMSNORM, FUSED = "rmsnorm_h64", "fused_add_rmsnorm_h64"
DECODE, PREFILL = "gqa_paged_decode_h4_kv2_d64_ps16", "gqa_paged_prefill_causal_h4_kv2_d64_ps16"
SOURCE_SOLUTIONS = ("rmsnorm_h4096_pytorch", "fused_add_rmsnorm_h4096_pytorch",
                    "gqa_paged_decode_h32_kv8_d128_ps16_pytorch", "gqa_paged_prefill_causal_h32_kv8_d128_ps16_pytorch",
                    "kernelarena_triton_gqa_paged_decode_h32_kv8_d128_ps16",
                    "kernelarena_triton_gqa_paged_prefill_causal_h32_kv8_d128_ps16",
                    "flashinfer_wrapper_gqa_paged_decode_h32_kv8_d128_ps16")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """The example dataset's definitions re-made for hidden 64, 4 query / 2 KV heads of 64, pages of 16."""
    root = tmp_path_factory.mktemp("tiny-dataset")
    derive_dataset(TraceSet.load(EXAMPLE_DATASET), root, SHAPES, SOURCE_SOLUTIONS)
    return root


def routing(**choices):
    """ApplyConfig sending each definition (keyword = short name) to a solution."""
    names = {"rmsnorm": RMSNORM, "fused": FUSED, "decode": DECODE, "prefill": PREFILL}
    return named_routing({names[k]: v for k, v in choices.items()})


@pytest.fixture(autouse=True)
def uninstalled():
    from kernelarena.integrations import flashinfer as ka_flashinfer

    yield
    ka_flashinfer.uninstall()
