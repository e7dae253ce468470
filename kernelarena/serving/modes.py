"""The serving loop's modes, each a way of running the same model and batch:

- ``torch``: PyTorch attention and norms (stands in for FlashInfer where it cannot run: a CPU);
- ``flashinfer``: FlashInfer's wrappers and flashinfer.norm, as SGLang calls them;
- ``patched``: the same calls with kernelarena's FlashInfer integration installed, routing to ``choices``;
- ``flashinfer_graph`` / ``patched_graph``: as above, decode steps replayed from a CUDA graph (GPU only).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Dict, Iterator, Mapping, Optional, Sequence

import torch

from ..store import TraceSet
from .attention import FlashInferAttention, PagedKVCache, TorchAttention
from .dataset import definition_name, derive_dataset, named_routing
from .engine import GenerationResult, generate
from .model import FlashInferNorms, LlamaConfig, LlamaModel, TorchNorms

MODES = ("torch", "flashinfer", "patched", "flashinfer_graph", "patched_graph")
PAGE_SIZE = 16

GPU_SOLUTIONS = {"rmsnorm_h4096": "rmsnorm_h4096_kernelarena_{norm}",
                 "fused_add_rmsnorm_h4096": "fused_add_rmsnorm_h4096_kernelarena_{norm}",
                 "gqa_paged_decode_h32_kv8_d128_ps16": "kernelarena_triton_gqa_paged_decode_h32_kv8_d128_ps16",
                 "gqa_paged_prefill_causal_h32_kv8_d128_ps16":
                     "kernelarena_triton_gqa_paged_prefill_causal_h32_kv8_d128_ps16"}
"""Our solutions in the example dataset, per definition, for the Llama-3-8B layer shapes (norm: the backend)."""

CPU_SOURCE_SOLUTIONS = {"rmsnorm_h4096": "rmsnorm_h4096_pytorch",
                        "fused_add_rmsnorm_h4096": "fused_add_rmsnorm_h4096_pytorch",
                        "gqa_paged_decode_h32_kv8_d128_ps16": "torch_reference_gqa_paged_decode_h32_kv8_d128_ps16",
                        "gqa_paged_prefill_causal_h32_kv8_d128_ps16":
                            "torch_reference_gqa_paged_prefill_causal_h32_kv8_d128_ps16"}
"""CPU-capable solutions of the example dataset, re-made for a small model's shapes by derive_dataset."""


def gpu_choices(norm_backend: str = "cuda") -> Dict[str, str]:
    return {d: s.format(norm=norm_backend) for d, s in GPU_SOLUTIONS.items()}


def derived_choices(config: LlamaConfig, example_dataset: Path, root: Path) -> Dict[str, str]:
    """Write at ``root`` the example dataset re-made for ``config``'s shapes with its CPU-capable solutions;
    return definition -> solution for routing."""
    renamed = derive_dataset(TraceSet.load(example_dataset), root, config.shapes(PAGE_SIZE),
                             CPU_SOURCE_SOLUTIONS.values())
    return {renamed[d]: s.replace(d, renamed[d]) for d, s in CPU_SOURCE_SOLUTIONS.items()}


@contextlib.contextmanager
def mode_context(mode: str, dataset: Optional[Path], choices: Mapping[str, str]) -> Iterator[None]:
    """Installs kernelarena's FlashInfer integration for the patched modes, for the block's duration."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected one of {MODES}")
    if not mode.startswith("patched"):
        yield
        return
    from ..integrations import flashinfer as ka_flashinfer

    with ka_flashinfer.installed(dataset, config=named_routing(choices)):
        yield


def make_backends(mode: str, config: LlamaConfig, cache: PagedKVCache):
    """(attention, norms) for ``mode``."""
    if mode == "torch":
        return TorchAttention(cache), TorchNorms()
    attention = FlashInferAttention(cache, config.num_heads, config.num_kv_heads, config.head_dim,
                                    use_cuda_graph=mode.endswith("_graph"))
    return attention, FlashInferNorms()


def run_mode(mode: str, model: LlamaModel, prompts: Sequence[Sequence[int]], max_new_tokens: int, *,
             dataset: Optional[Path] = None, choices: Mapping[str, str] = {}) -> GenerationResult:
    """Generate greedily in ``mode``; ``dataset``/``choices`` route the patched modes."""
    config = model.config
    device = model.w["lm_head.weight"].device
    max_tokens = max(len(p) for p in prompts) + max_new_tokens
    cache = PagedKVCache(config.num_layers, len(prompts), max_tokens, config.num_kv_heads, config.head_dim,
                         page_size=PAGE_SIZE, dtype=model.w["lm_head.weight"].dtype, device=device)
    with mode_context(mode, dataset, choices):
        attention, norms = make_backends(mode, config, cache)
        return generate(model, prompts, max_new_tokens, cache=cache, attention=attention, norms=norms,
                        cuda_graph=mode.endswith("_graph"))


def random_prompts(batch: int, length: int, vocab: int, seed: int = 0) -> list:
    """``batch`` prompts of ``length`` random token ids (lengths vary by request: length - r % 7)."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, (max(1, length - r % 7),), generator=generator).tolist() for r in range(batch)]


__all__ = ["MODES", "definition_name", "derived_choices", "gpu_choices", "make_backends", "mode_context",
           "run_mode", "random_prompts"]
