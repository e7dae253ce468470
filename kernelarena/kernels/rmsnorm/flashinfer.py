"""FlashInfer's RMSNorm behind the dataset's destination-passing entry points (a baseline solution).

Self-contained (torch, flashinfer): this file is the source of the dataset's FlashInfer solutions.
FlashInfer's fused_add_rmsnorm works in place, so the fused entry first copies its inputs into the outputs
(two extra copies: the price of leaving the inputs unchanged).
"""

import flashinfer

DATASET_EPS = 1e-6


def run_rmsnorm(hidden_states, weight, output):
    """Dataset entry for ``rmsnorm_h*``: output = rmsnorm(hidden_states) * weight, eps 1e-6."""
    flashinfer.norm.rmsnorm(hidden_states, weight, eps=DATASET_EPS, out=output)


def run_fused_add_rmsnorm(hidden_states, residual, weight, output, residual_out):
    """Dataset entry for ``fused_add_rmsnorm_h*`` (inputs left unchanged)."""
    output.copy_(hidden_states)
    residual_out.copy_(residual)
    flashinfer.norm.fused_add_rmsnorm(output, residual_out, weight, eps=DATASET_EPS)
