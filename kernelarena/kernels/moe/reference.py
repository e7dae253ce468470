"""Plain-PyTorch bf16 MoE with DeepSeek-V3 no-aux routing, laid out as FlashInfer-Trace's
moe_fp8_block_scale_ds_routing_* definitions (same input names, without the fp8 scales):

- routing: s = sigmoid(logits); s + bias picks 4 of 8 expert groups (a group's score: the sum of its top 2)
  and then the top 8 experts within them; the weights are s (without bias) of those 8, normalized to sum 1
  and multiplied by routed_scaling_factor;
- experts local_expert_offset .. local_expert_offset + num_local_experts - 1 are computed here:
  gemm1_weights[e] = [up; gate] ([2 * intermediate, hidden]), silu(gate) * up, then gemm2_weights[e];
- every step in float32 (the intermediate too); the output is the routing-weighted sum, cast to bf16.
"""

import torch

TOP_K = 8
N_GROUP = 8
TOPK_GROUP = 4


def route(routing_logits, routing_bias, routed_scaling_factor):
    """(expert ids [seq_len, 8] (global), routing weights [seq_len, 8] float32)."""
    scores = torch.sigmoid(routing_logits.to(torch.float32))
    biased = scores + routing_bias.to(torch.float32)
    tokens, experts = scores.shape
    grouped = biased.view(tokens, N_GROUP, experts // N_GROUP)
    group_scores = grouped.topk(2, dim=2).values.sum(dim=2)
    groups = group_scores.topk(TOPK_GROUP, dim=1).indices
    kept = torch.zeros_like(group_scores, dtype=torch.bool).scatter_(1, groups, True)
    kept = kept.unsqueeze(2).expand(tokens, N_GROUP, experts // N_GROUP).reshape(tokens, experts)
    ids = biased.masked_fill(~kept, float("-inf")).topk(TOP_K, dim=1).indices
    weights = scores.gather(1, ids)
    weights = weights / (weights.sum(dim=1, keepdim=True) + 1e-20) * routed_scaling_factor
    return ids, weights


@torch.no_grad()
def run(routing_logits, routing_bias, hidden_states, gemm1_weights, gemm2_weights, local_expert_offset,
        routed_scaling_factor):
    ids, weights = route(routing_logits, routing_bias, routed_scaling_factor)
    x = hidden_states.to(torch.float32)
    out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
    inter = gemm1_weights.shape[1] // 2
    for local in range(gemm1_weights.shape[0]):
        hit = ids == int(local_expert_offset) + local
        tokens = hit.any(dim=1).nonzero().squeeze(1)
        if tokens.numel() == 0:
            continue
        gate_up = x[tokens] @ gemm1_weights[local].to(torch.float32).T
        act = torch.nn.functional.silu(gate_up[:, inter:]) * gate_up[:, :inter]
        down = act @ gemm2_weights[local].to(torch.float32).T
        out.index_add_(0, tokens, down * (weights * hit).sum(dim=1)[tokens, None])
    return out.to(torch.bfloat16)
