"""Sampling a token per row from probabilities, after top-k and/or top-p filtering (FlashInfer-Trace's
top_k_sampling_from_probs, top_p_sampling_from_probs, top_k_top_p_sampling_from_probs)."""
