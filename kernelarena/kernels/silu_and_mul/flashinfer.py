"""FlashInfer's flashinfer.activation.silu_and_mul behind the dataset's entry (a baseline solution).

Self-contained (flashinfer): this file is the source of the dataset's FlashInfer silu_and_mul solutions.
"""

import flashinfer


def run(x, output):
    """Dataset entry (destination passing)."""
    flashinfer.activation.silu_and_mul(x, out=output)
