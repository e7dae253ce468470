"""FlashInfer's rejection samplers (flashinfer.sampling.*_sampling_from_probs) behind the dataset's entries.

Self-contained (flashinfer): this file is the source of the dataset's FlashInfer sampling solutions. FlashInfer
returns int32 token ids; the definitions' samples are int64.
"""

import flashinfer


def run_top_k(probs, top_k, samples):
    """Dataset entry of top_k_sampling_from_probs_* (destination passing)."""
    samples.copy_(flashinfer.sampling.top_k_sampling_from_probs(probs, top_k))


def run_top_p(probs, top_p, samples):
    """Dataset entry of top_p_sampling_from_probs_* (destination passing)."""
    samples.copy_(flashinfer.sampling.top_p_sampling_from_probs(probs, top_p))


def run_top_k_top_p(probs, top_k, top_p, samples):
    """Dataset entry of top_k_top_p_sampling_from_probs_* (destination passing; top-k applied first)."""
    samples.copy_(flashinfer.sampling.top_k_top_p_sampling_from_probs(probs, top_k, top_p,
                                                                      filter_apply_order="top_k_first"))
