"""Adapters for flashinfer.norm: rmsnorm, fused_add_rmsnorm and their Gemma variants, routed by apply().

A call names its definition as FlashInfer-Trace does (``rmsnorm_h{H}``, ``fused_add_rmsnorm_h{H}``; Gemma:
``gemma_rmsnorm_h{H}``, ``gemma_fused_add_rmsnorm_h{H}``) and goes through one apply site per definition,
with FlashInfer's original as the site's fallback. What the definitions cannot express runs the original:
an eps other than the definitions' 1e-6 and unknown keyword arguments (logged once each here), input that is
not [tokens, hidden] (the apply site finds it does not fit and logs it).
``enable_pdl`` is a launch hint, not part of the result, and is dropped on a routed call.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

from ...apply import apply
from .support import run_original

DEFINITION_EPS = 1e-6
"""The eps every FlashInfer-Trace rmsnorm definition fixes in its reference."""


def routed_rmsnorm(original: Callable[..., Any], prefix: str) -> Callable[..., Any]:
    """A drop-in for ``flashinfer.norm.rmsnorm`` (``prefix="rmsnorm"``) or ``gemma_rmsnorm``."""
    sites: Dict[int, Callable[..., Any]] = {}
    api = f"flashinfer.norm.{prefix}"

    def site_for(hidden: int) -> Callable[..., Any]:
        def fallback(input, weight, out=None):
            return original(input, weight, DEFINITION_EPS, out)

        site = sites[hidden] = apply(f"{prefix}_h{hidden}")(fallback)
        return site

    # The hot path: an eps check, one shape read and a dict lookup before the apply site. Input that is not
    # [tokens, hidden] is not checked here: the site finds it does not fit the definition and runs the fallback.
    def rmsnorm(input, weight, eps=1e-6, out=None, enable_pdl=None, **unknown):
        if unknown or eps != DEFINITION_EPS:
            run_original(api, _reason(unknown, eps))
            return original(input, weight, eps, out, enable_pdl, **unknown)
        hidden = input.shape[-1]
        site = sites.get(hidden) or site_for(hidden)
        if out is None:
            return site(input, weight)
        site(input, weight, out)
        return out

    rmsnorm.__wrapped__ = original
    rmsnorm.__doc__ = original.__doc__
    return rmsnorm


def routed_fused_add_rmsnorm(original: Callable[..., Any], prefix: str) -> Callable[..., Any]:
    """A drop-in for ``flashinfer.norm.fused_add_rmsnorm`` (in place: ``residual += input``, then
    ``input = rmsnorm(residual)``), routed destination-passing with the outputs aliasing the inputs."""
    sites: Dict[int, Callable[..., Any]] = {}
    api = f"flashinfer.norm.{prefix}"

    def site_for(hidden: int) -> Callable[..., Any]:
        def fallback(input, residual, weight, output, residual_out):
            # Only ever called with output is input and residual_out is residual (see below).
            original(input, residual, weight, DEFINITION_EPS)

        site = sites[hidden] = apply(f"{prefix}_h{hidden}")(fallback)
        return site

    def fused_add_rmsnorm(input, residual, weight, eps=1e-6, enable_pdl=None, **unknown):
        if unknown or eps != DEFINITION_EPS:
            run_original(api, _reason(unknown, eps))
            return original(input, residual, weight, eps, enable_pdl, **unknown)
        hidden = input.shape[-1]
        site = sites.get(hidden) or site_for(hidden)
        site(input, residual, weight, input, residual)

    fused_add_rmsnorm.__wrapped__ = original
    fused_add_rmsnorm.__doc__ = original.__doc__
    return fused_add_rmsnorm


def _reason(unknown: dict, eps: float) -> str:
    if unknown:
        return f"unknown arguments {sorted(unknown)}"
    return f"eps={eps} (the definitions fix eps={DEFINITION_EPS})"
