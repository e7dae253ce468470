"""Adapters for flashinfer.norm: rmsnorm, fused_add_rmsnorm and their Gemma variants, routed by apply().

A call names its definition as FlashInfer-Trace does (``rmsnorm_h{H}``, ``fused_add_rmsnorm_h{H}``; Gemma:
``gemma_rmsnorm_h{H}``, ``gemma_fused_add_rmsnorm_h{H}``) and goes through one apply site per definition,
with FlashInfer's original as the site's fallback. What the definitions cannot express runs the original:
an eps other than the definitions' 1e-6, input that is not [tokens, hidden], unknown keyword arguments.
``enable_pdl`` is a launch hint, not part of the result, and is dropped on a routed call.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict

from ...apply import apply
from .support import run_original

# A routed call whose solution is FlashInfer's own (a dataset's FlashInfer solution calls flashinfer.norm, which
# is patched) must reach the original, not route again: calls made while one is routed go straight to it.
_routing = threading.local()

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

    def rmsnorm(input, weight, eps=1e-6, out=None, enable_pdl=None, **unknown):
        if unknown or eps != DEFINITION_EPS or input.dim() != 2 or _routing.__dict__:
            if not _routing.__dict__:
                run_original(api, _reason(unknown, eps, input))
            return original(input, weight, eps, out, enable_pdl, **unknown)
        site = sites.get(input.shape[1]) or site_for(input.shape[1])
        _routing.active = True
        try:
            if out is None:
                return site(input, weight)
            site(input, weight, out)
            return out
        finally:
            del _routing.active

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
        if unknown or eps != DEFINITION_EPS or input.dim() != 2 or _routing.__dict__:
            if not _routing.__dict__:
                run_original(api, _reason(unknown, eps, input))
            return original(input, residual, weight, eps, enable_pdl, **unknown)
        site = sites.get(input.shape[1]) or site_for(input.shape[1])
        _routing.active = True
        try:
            site(input, residual, weight, input, residual)
        finally:
            del _routing.active

    fused_add_rmsnorm.__wrapped__ = original
    fused_add_rmsnorm.__doc__ = original.__doc__
    return fused_add_rmsnorm


def _reason(unknown: dict, eps: float, input) -> str:
    if unknown:
        return f"unknown arguments {sorted(unknown)}"
    if eps != DEFINITION_EPS:
        return f"eps={eps} (the definitions fix eps={DEFINITION_EPS})"
    return f"input of {input.dim()} dimensions (the definitions take [tokens, hidden])"
