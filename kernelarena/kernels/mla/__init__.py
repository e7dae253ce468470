"""Multi-head latent attention (MLA, DeepSeek) decode over a paged compressed KV cache: 16 query heads share
one 512-wide compressed KV and a 64-wide rotary key per token (the absorbed form FlashInfer computes)."""
