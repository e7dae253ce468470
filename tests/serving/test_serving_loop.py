"""The serving loop: tiny model on CPU (torch attention vs FlashInfer patched by kernelarena), and the Llama-3-8B
layer shapes on the GPU in every mode."""

from __future__ import annotations

import pytest
import torch

from kernelarena.serving import (
    GenerationResult,
    LlamaConfig,
    LlamaModel,
    PagedKVCache,
    derived_choices,
    first_divergence,
    gpu_choices,
    random_prompts,
    random_weights,
    run_mode,
)
from tests.apply.conftest import apply_off  # noqa: F401
from tests.conftest import EXAMPLE_DATASET


def test_page_table_of_a_step_gives_each_request_its_own_pages():
    cache = PagedKVCache(1, 3, 40, 2, 8, page_size=16)
    step = cache.table([17, 1, 32], [17, 1, 32])
    assert step.kv_indptr.tolist() == [0, 2, 3, 5]
    assert step.kv_indices.tolist() == [0, 1, 3, 6, 7]  # 3 pages per request
    assert step.kv_last_page_len.tolist() == [1, 1, 16]
    assert step.qo_indptr.tolist() == [0, 17, 18, 50] and not step.decode
    assert cache.table([18, 2, 33], [1, 1, 1]).slots.tolist() == [17, 49, 128]
    with pytest.raises(ValueError, match="exceeds"):
        cache.table([49, 1, 1], [1, 1, 1])


def test_tiny_model_generates_the_same_tokens_with_flashinfer_patched_as_with_torch(tmp_path):
    """Patched mode builds FlashInfer's own wrapper classes and calls flashinfer.norm; FlashInfer's kernels
    cannot run on a CPU, so every call that produced a token went through kernelarena's routes."""
    pytest.importorskip("flashinfer")
    config = LlamaConfig.tiny()
    model = LlamaModel(config, random_weights(config))
    prompts = random_prompts(2, 12, config.vocab_size)
    choices = derived_choices(config, EXAMPLE_DATASET, tmp_path)
    reference = run_mode("torch", model, prompts, 3)
    patched = run_mode("patched", model, prompts, 3, dataset=tmp_path, choices=choices)
    assert reference.tokens.shape == (2, 3)
    assert torch.equal(patched.tokens, reference.tokens)
    torch.testing.assert_close(patched.logits, reference.logits, atol=0.05, rtol=0.02)


@pytest.mark.gpu
def test_llama3_layers_generate_the_same_tokens_in_every_gpu_mode():
    config = LlamaConfig.llama3_8b_layers(num_layers=2)
    model = LlamaModel(config, random_weights(config, device="cuda"))
    prompts = random_prompts(4, 100, config.vocab_size)
    results = {mode: run_mode(mode, model, prompts, 8, dataset=EXAMPLE_DATASET, choices=gpu_choices())
               for mode in ("flashinfer", "patched", "flashinfer_graph", "patched_graph")}
    base = results["flashinfer"]
    for mode, result in results.items():
        divergence = first_divergence(base, result, tolerance=0.05)
        # Tokens agree, or differ first where FlashInfer's own two best logits were a near-tie (random
        # weights leave small margins; two correct bf16 kernels may order such a pair either way).
        assert divergence is None or divergence[2] < 0.05, (mode, divergence)
        steps = divergence[0] if divergence else base.tokens.shape[1]
        torch.testing.assert_close(result.logits[:steps], base.logits[:steps], atol=0.05, rtol=0.02, msg=mode)


def test_first_divergence_reports_the_step_request_and_margin():
    logits = torch.zeros(2, 2, 4)
    logits[1, 1, 2], logits[1, 1, 3] = 1.0, 0.75
    reference = GenerationResult(torch.tensor([[0, 2], [0, 2]]), logits)
    assert first_divergence(reference, GenerationResult(reference.tokens.clone(), logits), 0.1) is None
    other = GenerationResult(torch.tensor([[0, 2], [0, 3]]), logits)
    assert first_divergence(reference, other, 0.1) == (1, 1, 0.25)
