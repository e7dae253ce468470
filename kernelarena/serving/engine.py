"""The serving loop: prefill a batch of prompts, then greedy decode steps, eager or from a CUDA graph.

    result = generate(model, prompts, max_new_tokens=8, attention=..., norms=...)
    result.tokens      # [batch, max_new_tokens] greedy tokens
    result.logits      # [max_new_tokens, batch, vocab] float32 logits that chose them

A decode step plans the attention batch once (host work, outside any graph), then runs the model on one
token per request. With ``cuda_graph=True`` the first decode step's forward is captured once (inputs in
fixed buffers) and each later step only plans, fills the buffers and replays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import torch

from .attention import PagedKVCache
from .model import LlamaModel, NormOps


@dataclass
class GenerationResult:
    tokens: torch.Tensor
    logits: torch.Tensor


def generate(model: LlamaModel, prompts: Sequence[Sequence[int]], max_new_tokens: int, *, cache: PagedKVCache,
             attention, norms: NormOps, cuda_graph: bool = False) -> GenerationResult:
    """Greedy generation for ``prompts`` (lists of token ids) through ``attention`` over ``cache``."""
    device = cache.device
    lens = [len(p) for p in prompts]
    step = cache.table(lens, lens)
    attention.plan(step)
    tokens = torch.tensor([t for p in prompts for t in p], dtype=torch.int64, device=device)
    positions = torch.cat([torch.arange(n) for n in lens]).to(device)
    logits = model.forward(tokens, positions, attention, norms)[step.qo_indptr[1:].long().to(device) - 1]
    chosen: List[torch.Tensor] = [logits.argmax(-1)]
    all_logits = [logits]
    decoder = DecodeStep(model, attention, norms, len(prompts), device, cuda_graph)
    for _ in range(max_new_tokens - 1):
        positions = torch.tensor(lens, dtype=torch.int64)
        lens = [n + 1 for n in lens]
        attention.plan(cache.table(lens, [1] * len(lens)))
        logits = decoder(chosen[-1], positions.to(device))
        chosen.append(logits.argmax(-1))
        all_logits.append(logits)
    return GenerationResult(torch.stack(chosen, dim=1).cpu(), torch.stack(all_logits).cpu())


class DecodeStep:
    """One decode forward, eager or replayed from a CUDA graph captured at the first call."""

    def __init__(self, model: LlamaModel, attention, norms: NormOps, batch: int, device, cuda_graph: bool):
        self.model, self.attention, self.norms, self.cuda_graph = model, attention, norms, cuda_graph
        self.tokens = torch.zeros(batch, dtype=torch.int64, device=device)
        self.positions = torch.zeros(batch, dtype=torch.int64, device=device)
        self.graph = None
        self.logits = None

    def __call__(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if not self.cuda_graph:
            return self.model.forward(tokens, positions, self.attention, self.norms)
        self.tokens.copy_(tokens)
        self.positions.copy_(positions)
        if self.graph is None:
            self._capture()
        self.graph.replay()
        return self.logits.clone()

    def _capture(self) -> None:
        # Warm up on a side stream (allocator pools, lazy builds, Triton autotuning) before capturing. The
        # warm-up writes the same K/V at the same slots that the replay will write again, so it changes nothing.
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self.model.forward(self.tokens, self.positions, self.attention, self.norms)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self.model.forward(self.tokens, self.positions, self.attention, self.norms)


def first_divergence(reference: GenerationResult, other: GenerationResult, tolerance: float):
    """Compare two greedy generations of the same batch step by step.

    Returns None when every token agrees. Otherwise ``(step, request, margin)`` of the first disagreement,
    where ``margin`` is the gap between the reference's two best logits there: a disagreement at a margin
    under ``tolerance`` (what two correct bf16 kernels may differ by) is a near-tie, not an error, and the
    steps after it are not comparable since the sequences differ.
    """
    differs = (reference.tokens != other.tokens).nonzero()
    if len(differs) == 0:
        return None
    step = int(differs[:, 1].min())
    request = int(differs[differs[:, 1] == step][0, 0])
    top2 = reference.logits[step, request].topk(2).values
    return step, request, float(top2[0] - top2[1])
