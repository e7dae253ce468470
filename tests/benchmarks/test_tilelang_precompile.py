"""benchmarks/tilelang_precompile.py's shape lists: every TileLang kernel the prefill sweeps and the GPU tests launch
(a shape missing here is compiled during the GPU call, tens of seconds each)."""

from __future__ import annotations

from benchmarks import tilelang_precompile
from benchmarks.bench_attention import TILELANG_SCHEDULES
from benchmarks.sweep_prefill_hopper import D64_VARIANTS, D256_VARIANTS, GPU_VARIANTS
from kernelarena.kernels.attention.prefill_hopper import TILELANG_CONFIG
from tests.kernels.test_attention_prefill_tilelang import DEFAULT_PAGED_CASES, GRAPH_CASES, PAGED_CASES, RAGGED_CASES


def _options(shape):
    return shape.overlap, shape.pingpong, bool(shape.ctas), shape.fast_math, shape.dynamic


def _config_options(config):
    return config.overlap, config.pingpong, config.persistent, config.fast_math, config.dynamic and config.persistent


def test_sweep_shapes_cover_each_tilelang_variant_paged_and_ragged():
    shapes = tilelang_precompile.sweep_shapes()
    for config in [c for c in GPU_VARIANTS if c.language == "tilelang"] + list(TILELANG_SCHEDULES.values()):
        options = _config_options(config)
        ours = [s for s in shapes if _options(s) == options]
        # The sweeps' layouts: interleaved pages of 16 (32 rows apart), and ragged rows.
        assert {(s.page_size, s.rows_per_page) for s in ours if s.causal} == {(16, 32), (0, 1)}, config.label
        assert all(not s.write_lse and s.head_dim in (64, 128, 256) for s in ours)
    # sweep_prefill_hopper --head-dim 256: its variants on interleaved pages of 16.
    for config in D256_VARIANTS:
        assert any(s.head_dim == 256 and s.block_n == config.block_n and s.page_size == 16 and
                   _options(s) == _config_options(config) for s in shapes), config.label
    # sweep_prefill_hopper --head-dim 64: its variants on interleaved pages of 16 and on ragged rows.
    for config in D64_VARIANTS:
        assert {s.page_size for s in shapes if s.head_dim == 64 and _options(s) == _config_options(config)} == {
            16, 0}, config.label
    # bench_attention's row without a mask, for each schedule of its TileLang column.
    for config in TILELANG_SCHEDULES.values():
        assert any(not s.causal and _options(s) == _config_options(config) for s in shapes), config.label
    # Persistent kernels are compiled for the H200's multiprocessors (the sweeps time no other TileLang kernel).
    assert {s.ctas for s in shapes} == {tilelang_precompile.SMS} and len(set(shapes)) == len(shapes)


def test_test_shapes_cover_each_gpu_test_case():
    shapes = tilelang_precompile.test_shapes()
    assert len(set(shapes)) == len(shapes)
    for config, causal, as_tuple, head_dim, page_size in PAGED_CASES:
        rows = page_size if as_tuple else 2 * page_size  # separate caches, or K and V pages interleaved
        match = [s for s in shapes if (s.page_size, s.rows_per_page, s.head_dim, s.causal) ==
                 (page_size, rows, head_dim, causal) and _options(s) == _config_options(config)]
        assert {s.write_lse for s in match} == ({True, False} if as_tuple else {True})
    assert {(s.head_dim, s.causal) for s in shapes if s.page_size == 0} == {(d, c) for _, c, d in RAGGED_CASES}
    # The default path's kernels (TILELANG_CONFIG, causal, default scale): pages of 16 without lse, the extra cases
    # with lse, ragged with lse.
    default = [s for s in shapes if _options(s) == _config_options(TILELANG_CONFIG) and s.causal and not s.graph
               and s.head_dim == 128 and abs(s.scale_log2 - 128 ** -0.5 * 1.4426950408889634) < 1e-6]
    assert (16, 32, "bfloat16", False) in {(s.page_size, s.rows_per_page, s.dtype, s.write_lse) for s in default}
    for page_size, dtype, tilelang in DEFAULT_PAGED_CASES:
        assert (page_size, str(dtype).split(".")[-1], True) in {(s.page_size, s.dtype, s.write_lse) for s in default}
    assert any(s.page_size == 0 and s.write_lse for s in default)
    # The graph replays' kernels read the tile count on the device: persistent, separate from the others.
    graph = [s for s in shapes if s.graph]
    assert len(graph) == len(GRAPH_CASES) and all(s.ctas and s.write_lse and s.page_size == 16 for s in graph)
    assert {s.rows_per_page for s in graph} == {16 if as_tuple else 32 for _, as_tuple in GRAPH_CASES}
    assert not any(s.graph for s in tilelang_precompile.sweep_shapes())


def test_fresh_cache_keeps_kernels_of_this_source_and_drops_those_of_another(tmp_path, monkeypatch):
    source = tmp_path / "prefill_tilelang.py"
    source.write_text("version 1\n")
    monkeypatch.setattr(tilelang_precompile, "SOURCE", source)
    cache = tmp_path / "cache"
    tilelang_precompile.fresh_cache(cache)  # no cache yet: made, stamped
    (cache / "kernel_v1").write_text("cubin")
    tilelang_precompile.fresh_cache(cache)  # the same source: its kernels stay
    assert (cache / "kernel_v1").exists()
    source.write_text("version 2\n")
    tilelang_precompile.fresh_cache(cache)  # an edit: the old kernels go, the stamp follows the source
    assert sorted(p.name for p in cache.iterdir()) == [tilelang_precompile.SOURCE_STAMP]
    (cache / "kernel_v2").write_text("cubin")
    stamp = cache / tilelang_precompile.SOURCE_STAMP
    stamp.unlink()  # a cache of unknown source (made before the stamp existed) is emptied too
    tilelang_precompile.fresh_cache(cache)
    assert not (cache / "kernel_v2").exists() and stamp.exists()
