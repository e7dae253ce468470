"""A Llama-architecture decoder with random weights in Hugging Face's Llama weight layout.

Weights are named as transformers' LlamaForCausalLM names them (``model.layers.{i}.self_attn.q_proj.weight``,
...), so a real checkpoint's state dict loads into ``LlamaModel(config, weights)``. The forward pass is the
one SGLang runs: norms through ``norm_ops`` (fused residual add + RMSNorm between sub-layers), attention
through ``attention`` (which owns the paged KV cache), rotary embedding computed from the positions (so a
decode step can be captured in a CUDA graph).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Protocol

import torch


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float = 1e-6
    """1e-6: the eps FlashInfer-Trace's rmsnorm definitions fix (Llama-3 checkpoints use 1e-5)."""
    rope_theta: float = 500000.0

    @classmethod
    def tiny(cls) -> "LlamaConfig":
        """For CPU tests: hidden 256, 4 query / 2 KV heads of 64, 2 layers."""
        return cls(vocab_size=256, hidden_size=256, intermediate_size=512, num_layers=2, num_heads=4,
                   num_kv_heads=2, head_dim=64)

    @classmethod
    def llama3_8b_layers(cls, num_layers: int = 2, vocab_size: int = 32000) -> "LlamaConfig":
        """Llama-3-8B's layer shapes (hidden 4096, 32 query / 8 KV heads of 128, MLP 14336), fewer layers."""
        return cls(vocab_size=vocab_size, hidden_size=4096, intermediate_size=14336, num_layers=num_layers,
                   num_heads=32, num_kv_heads=8, head_dim=128)

    def shapes(self, page_size: int) -> Dict[str, int]:
        """The constants that name this model's FlashInfer-Trace definitions."""
        return dict(H=self.hidden_size, Hq=self.num_heads, Hkv=self.num_kv_heads, D=self.head_dim, P=page_size)


def random_weights(config: LlamaConfig, *, dtype=torch.bfloat16, device="cpu",
                   seed: int = 0) -> Dict[str, torch.Tensor]:
    """A state dict in transformers' LlamaForCausalLM layout, normal(0, 1/sqrt(fan_in)) so activations stay
    O(1) through the layers; norm weights near 1."""
    generator = torch.Generator().manual_seed(seed)
    c = config

    def linear(out_features: int, in_features: int) -> torch.Tensor:
        w = torch.randn(out_features, in_features, generator=generator) / in_features ** 0.5
        return w.to(dtype=dtype, device=device)

    def norm(size: int) -> torch.Tensor:
        return (1.0 + 0.1 * torch.randn(size, generator=generator)).to(dtype=dtype, device=device)

    weights = {"model.embed_tokens.weight": linear(c.vocab_size, c.hidden_size) * c.hidden_size ** 0.5,
               "model.norm.weight": norm(c.hidden_size), "lm_head.weight": linear(c.vocab_size, c.hidden_size)}
    for i in range(c.num_layers):
        p = f"model.layers.{i}."
        weights.update({
            p + "self_attn.q_proj.weight": linear(c.num_heads * c.head_dim, c.hidden_size),
            p + "self_attn.k_proj.weight": linear(c.num_kv_heads * c.head_dim, c.hidden_size),
            p + "self_attn.v_proj.weight": linear(c.num_kv_heads * c.head_dim, c.hidden_size),
            p + "self_attn.o_proj.weight": linear(c.hidden_size, c.num_heads * c.head_dim),
            p + "mlp.gate_proj.weight": linear(c.intermediate_size, c.hidden_size),
            p + "mlp.up_proj.weight": linear(c.intermediate_size, c.hidden_size),
            p + "mlp.down_proj.weight": linear(c.hidden_size, c.intermediate_size),
            p + "input_layernorm.weight": norm(c.hidden_size),
            p + "post_attention_layernorm.weight": norm(c.hidden_size),
        })
    return weights


class NormOps(Protocol):
    def rmsnorm(self, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor: ...

    def fused_add_rmsnorm(self, x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float) -> None:
        """In place: residual += x, then x = rmsnorm(residual)."""


class AttentionOps(Protocol):
    def append_kv(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None: ...

    def attend(self, layer: int, q: torch.Tensor) -> torch.Tensor:
        """q [tokens, Hq, D] -> [tokens, Hq, D] over the planned batch's cache."""


class TorchNorms:
    """RMSNorm in PyTorch, computed as the definitions' references compute it."""

    def rmsnorm(self, x, weight, eps):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps) * weight.float()).to(x.dtype)

    def fused_add_rmsnorm(self, x, residual, weight, eps):
        total = x.float() + residual.float()
        residual.copy_(total)
        x.copy_((total * torch.rsqrt(total.pow(2).mean(-1, keepdim=True) + eps) * weight.float()).to(x.dtype))


class FlashInferNorms:
    """flashinfer.norm, looked up at every call (so an installed integration is what runs)."""

    def __init__(self):
        import flashinfer.norm

        self.module = flashinfer.norm

    def rmsnorm(self, x, weight, eps):
        return self.module.rmsnorm(x, weight, eps)

    def fused_add_rmsnorm(self, x, residual, weight, eps):
        self.module.fused_add_rmsnorm(x, residual, weight, eps)


class LlamaModel:
    """Forward pass over a flat batch of tokens (prefill: many per request; decode: one per request)."""

    def __init__(self, config: LlamaConfig, weights: Dict[str, torch.Tensor]):
        self.config = config
        self.w = weights
        half = config.head_dim // 2
        device = weights["lm_head.weight"].device
        self.inv_freq = 1.0 / config.rope_theta ** (torch.arange(half, device=device, dtype=torch.float32) / half)

    def _rope(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Rotary embedding, Llama's rotate-half convention, in float32."""
        freqs = positions.float()[:, None] * self.inv_freq[None, :]
        cos, sin = freqs.cos()[:, None, :], freqs.sin()[:, None, :]
        x1, x2 = x.float().chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, attention: AttentionOps,
                norms: NormOps) -> torch.Tensor:
        """Logits [tokens, vocab] (float32) for ``tokens`` at ``positions``; K/V appended to the cache."""
        c, w, eps = self.config, self.w, self.config.rms_norm_eps
        h = w["model.embed_tokens.weight"][tokens]
        residual = None
        for i in range(c.num_layers):
            p = f"model.layers.{i}."
            if residual is None:
                residual, x = h, norms.rmsnorm(h, w[p + "input_layernorm.weight"], eps)
            else:
                norms.fused_add_rmsnorm(h, residual, w[p + "input_layernorm.weight"], eps)
                x = h
            n = x.shape[0]
            q = (x @ w[p + "self_attn.q_proj.weight"].T).view(n, c.num_heads, c.head_dim)
            k = (x @ w[p + "self_attn.k_proj.weight"].T).view(n, c.num_kv_heads, c.head_dim)
            v = (x @ w[p + "self_attn.v_proj.weight"].T).view(n, c.num_kv_heads, c.head_dim)
            q, k = self._rope(q, positions), self._rope(k, positions)
            attention.append_kv(i, k, v)
            o = attention.attend(i, q)
            h = o.reshape(n, -1) @ w[p + "self_attn.o_proj.weight"].T
            norms.fused_add_rmsnorm(h, residual, w[p + "post_attention_layernorm.weight"], eps)
            gate = torch.nn.functional.silu(h @ w[p + "mlp.gate_proj.weight"].T)
            h = (gate * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
        norms.fused_add_rmsnorm(h, residual, w["model.norm.weight"], eps)
        return (h @ w["lm_head.weight"].T).float()
