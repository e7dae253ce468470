"""An end-to-end serving loop: a Llama-architecture model with random weights, a paged KV cache (pages of
16), prefill then greedy decode, attention through FlashInfer's wrappers and norms through flashinfer.norm
as SGLang calls them; with kernelarena's FlashInfer integration installed or not (see modes.py)."""

from .attention import FlashInferAttention, PagedKVCache, TorchAttention
from .engine import GenerationResult, first_divergence, generate
from .model import LlamaConfig, LlamaModel, random_weights
from .modes import MODES, derived_choices, gpu_choices, random_prompts, run_mode

__all__ = ["FlashInferAttention", "GenerationResult", "LlamaConfig", "LlamaModel", "MODES", "PagedKVCache",
           "TorchAttention", "derived_choices", "first_divergence", "generate", "gpu_choices", "random_prompts",
           "random_weights",
           "run_mode"]
