"""Log-sum-exp merge of partial attention results (split KV chunks), in plain torch.

Attention over KV split into chunks A and B merges exactly: with base-2 log-sum-exps s_a, s_b and chunk
outputs v_a, v_b, s = log2(2^s_a + 2^s_b) and v = (2^s_a v_a + 2^s_b v_b) / 2^s. The attention kernel applies
this rule itself (``paged_kernel._merge_chunks``: the chunk that finishes last merges); ``merge_states`` is
the same rule for any number of states, the reference the tests check it against.
"""

from __future__ import annotations

import torch


def merge_states(values: torch.Tensor, lses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge attention states over their first axis.

    values: [num_states, ..., head_dim] outputs of attention over disjoint KV segments; lses: [num_states, ...]
    their base-2 log-sum-exps (-inf for an empty segment). Returns (value, lse) as if attention had run over
    all segments at once; a row with every segment empty gets value 0 and lse -inf.
    """
    lses = lses.float()
    m = lses.max(dim=0).values
    m_use = torch.where(torch.isinf(m) & (m < 0), torch.zeros_like(m), m)
    weights = torch.exp2(lses - m_use)
    total = weights.sum(dim=0)
    value = (values.float() * weights[..., None]).sum(dim=0) / torch.where(total > 0, total, 1.0)[..., None]
    lse = torch.where(total > 0, m_use + torch.log2(torch.where(total > 0, total, 1.0)), float("-inf"))
    return value.to(values.dtype), lse
