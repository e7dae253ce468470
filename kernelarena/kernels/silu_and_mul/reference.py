"""Plain-PyTorch silu_and_mul: x [batch, 2d] -> silu(x[:, :d]) * x[:, d:] in float32, cast to x's dtype."""

import torch


def run(x):
    d = x.shape[-1] // 2
    gate, up = x[..., :d].to(torch.float32), x[..., d:].to(torch.float32)
    return (torch.nn.functional.silu(gate) * up).to(x.dtype)
