"""FlashInfer's apply_rope_with_cos_sin_cache_inplace (NeoX style) behind the dataset's entry (a baseline).

Self-contained (flashinfer): this file is the source of the dataset's FlashInfer RoPE solutions. FlashInfer
rotates in place, so q and k are first copied into the outputs (the price of leaving the inputs unchanged).
"""

import flashinfer


def run(q, k, cos_sin_cache, positions, q_out, k_out):
    """Dataset entry (destination passing)."""
    q_out.copy_(q)
    k_out.copy_(k)
    tokens, _, head_size = q.shape
    flashinfer.rope.apply_rope_with_cos_sin_cache_inplace(positions, q_out.view(tokens, -1), k_out.view(tokens, -1),
                                                          head_size, cos_sin_cache, is_neox=True)
