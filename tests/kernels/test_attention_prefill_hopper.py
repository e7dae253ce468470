"""The Hopper prefill kernel (prefill_hopper.py) through the wrappers, on the CPU (Triton's interpreter, small
sizes) against the float64 reference; the backend table's choice of it; and the GPU sweep's CPU dry run (here,
not under tests/benchmarks, because this folder's conftest makes Triton interpret before the kernels import)."""

from __future__ import annotations

import pytest
import torch

from kernelarena.errors import UnsupportedError
from kernelarena.kernels.attention import (
    BatchDecodeWithPagedKVCacheWrapper,
    BatchPrefillWithPagedKVCacheWrapper,
    BatchPrefillWithRaggedKVCacheWrapper,
    HopperPrefillConfig,
    prefill_hopper,
)
from kernelarena.kernels.attention.backends import TABLE, AttentionProblem, choose
from kernelarena.kernels.attention.page_table import pages_to_nhd
from kernelarena.kernels.attention.reference import batch_attention_reference, ragged_attention_reference
from kernelarena.kernels.attention.scheduler import RAGGED_PAGE_SIZE
from tests.kernels.test_attention import DEVICE, check, indptr, make_cache, workspace

CONFIGS = [
    HopperPrefillConfig(32, 16, 4, 1, pack_gqa=True, use_tma=True),
    HopperPrefillConfig(16, 16, 4, 1, pack_gqa=False, use_tma=True),
    HopperPrefillConfig(32, 16, 4, 1, pack_gqa=True, use_tma=False),
    HopperPrefillConfig(16, 32, 4, 1, pack_gqa=False, use_tma=False),
]

PAGED_CASES = [
    # qo_lens, kv_lens, hq, hkv, d, page_size, causal, layout, dtype
    ([3, 0, 9, 20], [5, 0, 17, 33], 4, 2, 64, 4, True, "NHD", torch.bfloat16),
    ([7, 12], [7, 40], 4, 1, 64, 16, False, "HND", torch.bfloat16),
    ([12, 5], [30, 5], 8, 2, 64, 8, True, "NHD", torch.float16),
    ([6, 4], [3, 0], 2, 1, 64, 4, True, "NHD", torch.bfloat16),  # more queries than keys: rows that see nothing
    ([40], [70], 6, 2, 64, 16, True, "NHD", torch.bfloat16),  # group 3: no power of two, Q/O through pointers
]


def _config_id(c: HopperPrefillConfig) -> str:
    return c.label.replace(" ", "-")


@pytest.mark.parametrize("config", CONFIGS, ids=_config_id)
@pytest.mark.parametrize("qo_lens,kv_lens,hq,hkv,d,page_size,causal,layout,dtype", PAGED_CASES)
def test_paged_prefill_matches_reference(config, qo_lens, kv_lens, hq, hkv, d, page_size, causal, layout, dtype):
    table, cache = make_cache(kv_lens, page_size, hkv, d, layout=layout, dtype=dtype, seed=sum(qo_lens))
    qo = indptr(qo_lens)
    q = torch.randn(int(qo[-1]), hq, d).to(dtype).to(DEVICE)
    wrapper = BatchPrefillWithPagedKVCacheWrapper(workspace(), layout, config=config)
    wrapper.plan(qo, table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), hq, hkv, d, page_size,
                 causal=causal, q_data_type=dtype, sm_scale=0.2)
    assert wrapper._runner._hopper is not None, "the HopperPrefillConfig did not select the Hopper kernel"
    out = torch.full_like(q, float("nan"))
    lse = torch.full(q.shape[:2], float("nan"), device=DEVICE)
    wrapper.run(q, cache, out=out, lse=lse, return_lse=True)
    k, v = pages_to_nhd(cache, layout)
    ref_out, ref_lse = batch_attention_reference(q, k, v, qo, table.kv_indptr, table.kv_indices,
                                                 table.kv_last_page_len, causal=causal, sm_scale=0.2)
    check(out, lse, ref_out, ref_lse, dtype)


@pytest.mark.parametrize("config", CONFIGS, ids=_config_id)
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("contiguous_heads", [True, False])
def test_ragged_prefill_matches_reference(config, causal, contiguous_heads):
    """Ragged K/V with contiguous heads go through tensor descriptors (use_tma); a K/V view whose heads are not
    contiguous rows falls back to pointer loads."""
    qo_lens, kv_lens, hq, hkv, d = [4, 11, 0, 23], [9, 30, 5, 23], 4, 2, 64
    qo, kv = indptr(qo_lens), indptr(kv_lens)
    q = torch.randn(int(qo[-1]), hq, d).to(torch.bfloat16).to(DEVICE)
    kv_rows = torch.randn(int(kv[-1]), hkv, 2 * d).to(torch.bfloat16).to(DEVICE)
    if contiguous_heads:
        k, v = kv_rows[..., :d].contiguous(), kv_rows[..., d:].contiguous()
    else:
        k, v = kv_rows[..., :d], kv_rows[..., d:]  # head stride 2 x d
    wrapper = BatchPrefillWithRaggedKVCacheWrapper(workspace(), config=config)
    wrapper.plan(qo, kv, hq, hkv, d, causal=causal)
    out = torch.full_like(q, float("nan"))
    lse = torch.full(q.shape[:2], float("nan"), device=DEVICE)
    wrapper.run(q, k, v, out=out, lse=lse, return_lse=True)
    ref_out, ref_lse = ragged_attention_reference(q, k, v, qo, kv, causal=causal)
    check(out, lse, ref_out, ref_lse)


def test_replan_and_rerun_reuse_the_wrapper():
    config = CONFIGS[0]
    wrapper = BatchPrefillWithPagedKVCacheWrapper(workspace(), config=config)
    for seed, (qo_lens, kv_lens) in enumerate((([5, 9], [20, 9]), ([30], [47]))):
        table, cache = make_cache(kv_lens, 8, 2, 64, seed=seed)
        qo = indptr(qo_lens)
        q = torch.randn(int(qo[-1]), 4, 64).to(torch.bfloat16).to(DEVICE)
        wrapper.plan(qo, table.kv_indptr, table.kv_indices, table.kv_last_page_len, 4, 2, 64, 8, causal=True)
        k, v = pages_to_nhd(cache, "NHD")
        ref, _ = batch_attention_reference(q, k, v, qo, table.kv_indptr, table.kv_indices, table.kv_last_page_len,
                                           causal=True)
        for _ in range(2):
            check(wrapper.run(q, cache), None, ref, None)


@pytest.mark.parametrize("options,message", [
    ({"window_left": 4}, "sliding window"),
    ({"logits_soft_cap": 30.0}, "soft-capping"),
    ({"kv_chunk_size": 16}, "kv_chunk_size"),
])
def test_a_given_config_refuses_what_the_kernel_lacks(options, message):
    table, _ = make_cache([20], 4, 2, 64)
    wrapper = BatchPrefillWithPagedKVCacheWrapper(workspace(), config=CONFIGS[0])
    with pytest.raises(UnsupportedError, match=message):
        wrapper.plan(indptr([6]), table.kv_indptr, table.kv_indices, table.kv_last_page_len, 4, 2, 64, 4,
                     causal=True, **options)


def test_a_given_config_refuses_decode_and_graphs():
    table, _ = make_cache([20], 4, 2, 64)
    decode = BatchDecodeWithPagedKVCacheWrapper(workspace(), config=CONFIGS[0])
    with pytest.raises(UnsupportedError, match="prefill only"):
        decode.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 4, 2, 64, 4)
    with pytest.raises(UnsupportedError, match="use_cuda_graph"):
        BatchPrefillWithPagedKVCacheWrapper(workspace(), config=CONFIGS[0], use_cuda_graph=True)


def _problem(sm: int, **changes) -> AttentionProblem:
    fields = dict(decode=False, on_gpu=True, pairs=64, num_sms=132, fixed_config=False, q_dtype=torch.bfloat16,
                  head_dim=128, group=4, kv_rows=lambda: 0, sm=sm, page_size=16)
    fields.update(changes)
    return AttentionProblem(**fields)


def test_backend_table_picks_hopper_on_sm90_unless_switched_off(monkeypatch):
    from kernelarena.kernels.attention.prefill_hopper import tilelang_importable

    monkeypatch.setattr(prefill_hopper, "mode", "off")
    assert choose(_problem(90)) == "triton"
    assert "=0" in TABLE["hopper"].unavailable(_problem(90))
    monkeypatch.setattr(prefill_hopper, "mode", "on")
    assert choose(_problem(90)) == "hopper"
    assert choose(_problem(90, page_size=1)) == "hopper"  # "1" takes every plan the Hopper kernels serve
    for mode in ("on", "auto"):
        monkeypatch.setattr(prefill_hopper, "mode", mode)
        assert choose(_problem(80)) == "triton"
        assert choose(_problem(100)) == "triton"
        assert choose(_problem(90, decode=True)) != "hopper"  # small decode batches go to the CUDA kernel
        assert choose(_problem(90, fixed_config=True)) == "triton"
        assert choose(_problem(90, hopper_unsupported="no window")) == "triton"
        assert choose(_problem(0, on_gpu=False, hopper_config=True)) == "hopper"  # a given config: any device
    # auto, the default: the TileLang kernel where it serves the plan, the portable one elsewhere, saying why
    expected = "hopper" if tilelang_importable() else "triton"
    assert choose(_problem(90)) == expected
    assert choose(_problem(90, page_size=RAGGED_PAGE_SIZE)) == expected
    assert choose(_problem(90, head_dim=256, page_size=64)) == expected
    assert choose(_problem(90, head_dim=64, page_size=32)) == expected
    for changes, why in ((dict(page_size=1), "pages of 1 tokens"), (dict(page_size=8), "pages of 8 tokens"),
                         (dict(head_dim=96), "head_dim 96"), (dict(head_dim=256, page_size=128), "head_dim 256"),
                         (dict(kv_layout="HND"), "HND pages")):
        assert choose(_problem(90, **changes)) == "triton"
        assert why in TABLE["hopper"].unavailable(_problem(90, **changes))


def test_hopper_prefill_setting_reads_three_values_and_refuses_others(monkeypatch):
    from kernelarena import env

    for value, mode in ((None, "auto"), ("", "auto"), ("auto", "auto"), ("1", "on"), ("0", "off")):
        if value is None:
            monkeypatch.delenv(env.HOPPER_PREFILL, raising=False)
        else:
            monkeypatch.setenv(env.HOPPER_PREFILL, value)
        assert env.hopper_prefill_mode() == mode
    monkeypatch.setenv(env.HOPPER_PREFILL, "yes")
    with pytest.raises(ValueError, match="KERNELARENA_HOPPER_PREFILL='yes'"):
        env.hopper_prefill_mode()


def test_switch_picks_the_tilelang_kernel_where_it_imports_and_serves_the_head_size():
    from kernelarena.kernels.attention.prefill_hopper import (
        TILELANG_CONFIG,
        TILELANG_CONFIG_D256,
        choose_hopper_config,
        tilelang_importable,
    )

    triton_default = HopperPrefillConfig(128, 64, 8, 5, True, True)
    assert choose_hopper_config(128, True) == (TILELANG_CONFIG if tilelang_importable() else triton_default)
    assert choose_hopper_config(64, True, "triton") == triton_default
    assert choose_hopper_config(256, True, "triton") == HopperPrefillConfig(64, 64, 8, 5, True, True)
    assert choose_hopper_config(256, True) == (TILELANG_CONFIG_D256 if tilelang_importable() else
                                               HopperPrefillConfig(64, 64, 8, 5, True, True))
    assert choose_hopper_config(96, True) == HopperPrefillConfig(128, 64, 8, 5, True, True)  # no TileLang program
    assert choose_hopper_config(128, False).language == "triton"  # the CPU interpreter runs the Triton kernel
    assert TILELANG_CONFIG.graph_safe and TILELANG_CONFIG.overlap and TILELANG_CONFIG.pingpong


def test_runner_stays_portable_off_sm90(monkeypatch):
    """On this machine (CPU, or a GPU that is not sm90) neither the default nor the switch selects the Hopper
    kernel; on an H100/H200 both do for this plan where TileLang imports (pages of 16, head_dim 64)."""
    from kernelarena.kernels.attention.prefill_hopper import tilelang_importable

    for mode in ("auto", "on"):
        monkeypatch.setattr(prefill_hopper, "mode", mode)
        table, _ = make_cache([40], 16, 2, 64)
        wrapper = BatchPrefillWithPagedKVCacheWrapper(workspace())
        wrapper.plan(indptr([40]), table.kv_indptr, table.kv_indices, table.kv_last_page_len, 4, 2, 64, 16,
                     causal=True)
        on_hopper = wrapper._runner.sm == 90 and (mode == "on" or tilelang_importable())
        assert (wrapper._runner._hopper is not None) == on_hopper
    # The wrapper's layout reaches the choice (HND pages stay portable under auto).
    assert BatchPrefillWithPagedKVCacheWrapper(workspace(), "HND")._runner.kv_layout == "HND"


def test_sweep_dry_run_checks_and_times_every_variant(tmp_path):
    from benchmarks import sweep_prefill_hopper as sweep

    rows = sweep.main(["--dry-run", "--out", str(tmp_path), "--variants", "2"])
    hopper = [r for r in rows if r["variant"].startswith("hopper")]
    assert {r["case"] for r in rows} == {c.name for c in sweep.CPU_CASES}
    assert len(hopper) == 2 * len(sweep.CPU_CASES)
    for row in rows:
        assert "note" not in row, row
        assert float(row["err"]) < sweep.TOLERANCE and row["us"] > 0
    # This run's rows, beside the committed table's rows of other machines (the H200's).
    table = (tmp_path / "sweep_prefill_hopper.md").read_text().splitlines()
    here = [line for line in table if "hopper m" in line and "H200" not in line]
    assert len(here) == len(hopper)


@pytest.mark.gpu
@pytest.mark.parametrize("pack_gqa", [True, False])
def test_default_gpu_config_matches_reference_on_sm90(pack_gqa):
    """The sweep's shapes, smaller: the compiled kernel (TMA for Q/O) with the default tile sizes."""
    if torch.cuda.get_device_capability()[0] != 9:
        pytest.skip("the Hopper prefill kernel's GPU configs target sm90")
    from kernelarena.kernels.attention.prefill_hopper import choose_hopper_config

    config = HopperPrefillConfig(**{**choose_hopper_config(128, True, "triton").__dict__, "pack_gqa": pack_gqa})
    qo_lens, kv_lens = [300, 129, 1], [700, 129, 64]
    table, cache = make_cache(kv_lens, 16, 8, 128, seed=3)
    qo = indptr(qo_lens)
    q = torch.randn(int(qo[-1]), 32, 128).to(torch.bfloat16).to(DEVICE)
    wrapper = BatchPrefillWithPagedKVCacheWrapper(workspace(), config=config)
    wrapper.plan(qo, table.kv_indptr.cpu(), table.kv_indices, table.kv_last_page_len.cpu(), 32, 8, 128, 16,
                 causal=True)
    out, lse = wrapper.run(q, cache, return_lse=True)
    k, v = pages_to_nhd(cache, "NHD")
    ref_out, ref_lse = batch_attention_reference(q, k, v, qo, table.kv_indptr, table.kv_indices,
                                                 table.kv_last_page_len, causal=True)
    check(out, lse, ref_out, ref_lse)
