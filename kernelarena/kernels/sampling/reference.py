"""Plain-PyTorch top-k / top-p sampling as FlashInfer-Trace's sampling references define it.

Per row: probabilities in float32; top-k (when 0 < k < vocabulary) keeps the k largest and renormalizes;
then top-p keeps the largest tokens while the mass before them is at most p (the token that crosses p is
kept; p <= 0 keeps the largest only) and renormalizes; one token is drawn from what is left. The three
definitions differ only in which of top_k and top_p they take.
"""

import torch


def filter_row(row: torch.Tensor, k=None, p=None) -> torch.Tensor:
    """One row's distribution after top-k then top-p filtering (float32, sums to 1)."""
    vocab = row.numel()
    if k is not None and 0 < k < vocab:
        kept = torch.zeros_like(row)
        top = torch.topk(row, k).indices
        kept[top] = row[top]
        row = kept / kept.sum()
    if p is not None:
        if p <= 0:
            only = torch.zeros_like(row)
            only[torch.argmax(row)] = 1.0
            return only
        if p < 1:
            values, order = torch.sort(row, descending=True)
            row = row.clone()
            row[order[(torch.cumsum(values, 0) - values) > p]] = 0
    return row / row.sum()


def sample(probs, top_k=None, top_p=None):
    """One token per row of ``probs`` [batch, vocabulary], int64."""
    rows = probs.to(torch.float32)
    samples = torch.empty(rows.shape[0], dtype=torch.int64, device=probs.device)
    for i in range(rows.shape[0]):
        row = filter_row(rows[i], None if top_k is None else int(top_k[i]), None if top_p is None else float(top_p[i]))
        samples[i] = torch.multinomial(row, 1)[0]
    return samples
