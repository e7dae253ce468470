"""Plain-PyTorch RoPE with a cos/sin cache, NeoX style, as FlashInfer's apply_rope_with_cos_sin_cache defines it.

cos_sin_cache [max_seq_len, rotary_dim] holds cos in its first half and sin in its second; a token at
position p rotates the pairs (x[i], x[i + rotary_dim / 2]) of its first rotary_dim features by the angles of
row p; features past rotary_dim pass through. Math in float32, results in the inputs' dtype.
"""

import torch


def _rotate(x, cos, sin):
    half = cos.shape[-1]
    x1, x2 = x[..., :half].float(), x[..., half:2 * half].float()
    rotated = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    return torch.cat((rotated.to(x.dtype), x[..., 2 * half:]), dim=-1)


def run(q, k, cos_sin_cache, positions):
    cos, sin = cos_sin_cache[positions.long()].float().chunk(2, dim=-1)
    cos, sin = cos[:, None, :], sin[:, None, :]
    return _rotate(q, cos, sin), _rotate(k, cos, sin)


def make_inputs(axes, device, generator):
    """Positions within the cache (random data would index past max_seq_len)."""
    positions = torch.randint(0, axes["max_seq_len"], (axes["num_tokens"],), generator=generator)
    return {"positions": positions.to(device)}
