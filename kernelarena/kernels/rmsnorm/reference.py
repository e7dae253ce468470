"""Plain-PyTorch RMSNorm: the "torch" backend (float32 math) and the float64 reference for tests."""

from __future__ import annotations

import torch


def rmsnorm_reference(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6,
                      compute_dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """x * rsqrt(mean(x^2) + eps) * weight over the last dim, computed in ``compute_dtype``; returns that dtype."""
    xc = x.to(compute_dtype)
    return xc * torch.rsqrt(xc.pow(2).mean(dim=-1, keepdim=True) + eps) * weight.to(compute_dtype)


def fused_add_rmsnorm_reference(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6,
                                compute_dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, residual_sum) in ``compute_dtype``: s = x + residual, out = rmsnorm(s) * weight."""
    s = x.to(compute_dtype) + residual.to(compute_dtype)
    return rmsnorm_reference(s, weight, eps, compute_dtype), s


def rmsnorm_torch(x: torch.Tensor, weight: torch.Tensor, eps: float, out: torch.Tensor) -> None:
    """The "torch" backend: float32 math, result written into ``out``."""
    out.copy_(rmsnorm_reference(x, weight, eps, torch.float32))


def fused_add_rmsnorm_torch(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float,
                            out: torch.Tensor, residual_out: torch.Tensor) -> None:
    """The "torch" backend of the fused op: the norm uses the float32 sum (as the kernels do)."""
    normed, s = fused_add_rmsnorm_reference(x, residual, weight, eps, torch.float32)
    residual_out.copy_(s)
    out.copy_(normed)
