"""The committed example dataset matches its generator, and each reference agrees with an independent
computation."""

import filecmp
import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "examples"))
make_dataset = importlib.import_module("make_dataset")


def load_reference(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "references" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(root: Path):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_committed_dataset_matches_the_generator(tmp_path, example_dataset):
    fresh = tmp_path / "fresh"
    make_dataset.write_dataset(fresh)
    assert _tree(fresh) == _tree(example_dataset)
    for rel in _tree(fresh):
        assert filecmp.cmp(fresh / rel, example_dataset / rel, shallow=False), f"{rel} is stale: run make_dataset.py"


def test_rmsnorm_reference_matches_float64_formula():
    ref = load_reference("rmsnorm")
    x = torch.randn(5, 64, dtype=torch.bfloat16)
    w = torch.randn(64, dtype=torch.bfloat16)
    x64, w64 = x.double(), w.double()
    expected = x64 / torch.sqrt((x64 ** 2).mean(-1, keepdim=True) + 1e-6) * w64
    torch.testing.assert_close(ref.run(x, w).double(), expected, atol=2e-2, rtol=2e-2)


def test_fused_add_rmsnorm_reference_matches_composition():
    ref = load_reference("fused_add_rmsnorm")
    x, r = torch.randn(3, 32, dtype=torch.bfloat16), torch.randn(3, 32, dtype=torch.bfloat16)
    w = torch.randn(32, dtype=torch.bfloat16)
    out, residual = ref.run(x, r, w)
    s = x.double() + r.double()
    torch.testing.assert_close(residual.double(), s, atol=2e-2, rtol=1e-2)
    torch.testing.assert_close(out.double(), F.rms_norm(s, (32,), w.double(), eps=1e-6), atol=3e-2, rtol=2e-2)


def _dense_attention(q, k, v, scale, causal):
    """torch's scaled_dot_product_attention on dense per-request K/V, as the independent computation."""
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    qt, kt, vt = (t.double().transpose(0, 1) for t in (q, k, v))  # heads first
    mask = None
    if causal:
        q_pos = torch.arange(q.shape[0]) + (k.shape[0] - q.shape[0])
        mask = torch.arange(k.shape[0])[None, :] <= q_pos[:, None]
    out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask, scale=scale).transpose(0, 1)
    logits = torch.einsum("hqd,hkd->hqk", qt, kt) * scale
    if mask is not None:
        logits = logits.masked_fill(~mask, -math.inf)
    return out, (torch.logsumexp(logits, -1) / math.log(2)).transpose(0, 1)


@pytest.mark.parametrize("causal", [False, True])
def test_paged_references_match_dense_attention(causal):
    name = "gqa_paged_prefill" if causal else "gqa_paged_decode"
    ref = load_reference(name)
    g = torch.Generator().manual_seed(3)
    batch, total_q = 3, (7 if causal else 3)
    axes = {"batch_size": batch, "total_q": total_q, "num_kv_indices": 9, "num_pages": 12, "len_indptr": batch + 1}
    table = ref.make_inputs(axes, "cpu", g)
    k_cache = torch.randn(12, 16, 2, 16, dtype=torch.bfloat16)
    v_cache = torch.randn(12, 16, 2, 16, dtype=torch.bfloat16)
    q = torch.randn(total_q, 8, 16, dtype=torch.bfloat16)
    scale = 0.25
    if causal:
        out, lse = ref.run(q, k_cache, v_cache, table["qo_indptr"], table["kv_indptr"], table["kv_indices"],
                           table["kv_last_page_len"], scale)
        qo = table["qo_indptr"].tolist()
    else:
        out, lse = ref.run(q, k_cache, v_cache, table["kv_indptr"], table["kv_indices"], table["kv_last_page_len"],
                           scale)
        qo = list(range(batch + 1))
    kv_indptr, indices, last = table["kv_indptr"].tolist(), table["kv_indices"].long(), table["kv_last_page_len"]
    assert len(set(indices.tolist())) == len(indices), "pages must be distinct"
    for b in range(batch):
        pages = indices[kv_indptr[b]:kv_indptr[b + 1]]
        n = (len(pages) - 1) * 16 + int(last[b])
        k = k_cache[pages].flatten(0, 1)[:n]
        v = v_cache[pages].flatten(0, 1)[:n]
        expected, expected_lse = _dense_attention(q[qo[b]:qo[b + 1]], k, v, scale, causal)
        torch.testing.assert_close(out[qo[b]:qo[b + 1]].double(), expected, atol=2e-2, rtol=2e-2)
        torch.testing.assert_close(lse[qo[b]:qo[b + 1]].double(), expected_lse, atol=1e-3, rtol=1e-3)
