"""The Triton sampler (kernelarena/kernels/sampling/triton.py) on the CPU under the interpreter: its draws pass
the sampling evaluator against the filtered distribution (a small vocabulary: the interpreter pays per
operation, ~64 passes per row)."""

import pytest
import torch

from kernelarena.bench.evaluators import compare_sampling
from kernelarena.kernels.sampling.triton import sample
from kernelarena.schema import EvaluatorSpec, Status
from tests.bench.test_evaluators import _definition


@pytest.mark.slow
def test_triton_sampler_matches_the_filtered_distribution():
    generator = torch.Generator().manual_seed(3)
    probs = torch.softmax(torch.randn(2, 2000, generator=generator) * 3, dim=-1)
    inputs = {"probs": probs, "top_k": torch.tensor([20, 0], dtype=torch.int32), "top_p": torch.tensor([0.9, 0.6])}
    copies = 128
    draws = torch.cat([sample(probs.repeat(copies, 1), inputs["top_k"].repeat(copies),
                              inputs["top_p"].repeat(copies)).reshape(copies, 2) for _ in range(2)])
    result = compare_sampling(_definition(), inputs, draws, EvaluatorSpec(kind="sampling"))
    assert result.status == Status.PASSED, result.message
    only_top = sample(probs, torch.tensor([1, 1], dtype=torch.int32), None)
    assert torch.equal(only_top, probs.argmax(-1))
