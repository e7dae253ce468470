"""Plain-PyTorch top-k / top-p sampling as FlashInfer-Trace's sampling references define it.

Per row (all rows at once): probabilities in float32; top-k (when 0 < k < vocabulary) keeps the k largest and
renormalizes; then top-p keeps the largest tokens while the mass before them is at most p (the token that crosses p is
kept; p <= 0 keeps the largest only) and renormalizes; one token is drawn from what is left. The three
definitions differ only in which of top_k and top_p they take.
"""

import torch


def filtered(probs: torch.Tensor, top_k=None, top_p=None):
    """Every row filtered at once: (kept probabilities in descending order [batch, vocabulary], float32, not
    renormalized; the token id of each position). A whole batch in a few kernels instead of a loop over rows:
    the sampling check draws 10000 times per row."""
    values, order = torch.sort(probs.to(torch.float32), dim=-1, descending=True)
    vocab = values.shape[-1]
    if top_k is not None:
        k = top_k.to(device=values.device, dtype=torch.int64).reshape(-1, 1)
        k = torch.where((k > 0) & (k < vocab), k, torch.full_like(k, vocab))
        values = torch.where(torch.arange(vocab, device=values.device) < k, values, torch.zeros_like(values))
        values = values / values.sum(-1, keepdim=True)
    if top_p is not None:
        p = top_p.to(device=values.device, dtype=torch.float32).reshape(-1, 1)
        drop = (torch.cumsum(values, -1) - values > p) & (p < 1)  # the token crossing p is kept
        drop[:, 0] = False  # p <= 0 keeps the largest only
        values = torch.where(drop, torch.zeros_like(values), values)
    return values, order


def sample(probs, top_k=None, top_p=None):
    """One token per row of ``probs`` [batch, vocabulary], int64."""
    values, order = filtered(probs, top_k, top_p)
    return order.gather(-1, torch.multinomial(values, 1)).reshape(-1)
