"""Compile the TileLang prefill kernels ahead, on a machine without a GPU, into TileLang's compile cache.

The first call of a TileLang kernel shape compiles it (10-30 s each); the GPU tests and the prefill sweeps use
about twenty shapes. Compiled here (the CPU machine has nvcc) and carried to the GPU machine with the cache folder
(TILELANG_CACHE_DIR), they cost the GPU run nothing: the kernels name their target (prefill_tilelang.device_arch),
so the cache's key is the same on both machines. A shape missing from the cache is compiled where it runs.

    python3 -m benchmarks.tilelang_precompile [--arch sm_90a] [--only sweep,tests,dataset]

compiles into .tl-build (TileLang's cache layout) and packs it as .tl-cache/tilelang_cache.tar.xz (about 20 KB
a kernel, compressed); carry ".tl-cache" and benchmarks/gpu_env.sh unpacks it and points TILELANG_CACHE_DIR there.

The shapes: the TileLang variants of sweep_prefill_hopper (its paged and ragged cases), bench_attention's TileLang
column (causal and non-causal paged, ragged), the GPU tests of tests/kernels/test_attention_prefill_tilelang.py, and
the example dataset's TileLang prefill solution on its workloads.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

import torch

HQ, HKV = 32, 8
PACK_DIR, CACHE_DIR = Path(".tl-cache"), Path(".tl-build")
SOURCE = Path(__file__).resolve().parents[1] / "kernelarena" / "kernels" / "attention" / "prefill_tilelang.py"
SOURCE_STAMP = "prefill_tilelang.sha256"  # in CACHE_DIR: the hash of the source its kernels were compiled from


SMS = 132  # the H200's multiprocessors: persistent kernels run one block on each


def _shape(config, *, head_dim=128, page_size=16, rows_per_page=32, causal=True, sm_scale=None, write_lse=False,
           graph=False, dtype=torch.bfloat16):
    from kernelarena.kernels.attention import prefill_tilelang

    return prefill_tilelang.kernel_shape(
        num_qo_heads=HQ, num_kv_heads=HKV, head_dim=head_dim, page_size=page_size, rows_per_page=rows_per_page,
        causal=causal, sm_scale=sm_scale if sm_scale is not None else 1 / math.sqrt(head_dim),
        block_m=config.block_m, block_n=config.block_n, num_stages=config.num_stages, dtype=dtype,
        write_lse=write_lse, overlap=config.overlap, pingpong=config.pingpong, ctas=SMS if config.persistent else 0,
        graph=graph, fast_math=config.fast_math, dynamic=config.dynamic)


def sweep_shapes() -> list:
    """sweep_prefill_hopper's TileLang variants (interleaved pages of 16: 32 rows apart; ragged; --head-dim 256: the
    paged ones; --head-dim 64: both) and bench_attention's TileLang columns (each --tilelang-schedule: the same
    pages, causal and not; ragged)."""
    from benchmarks.bench_attention import TILELANG_SCHEDULES
    from benchmarks.sweep_prefill_hopper import D64_VARIANTS, D256_VARIANTS, GPU_VARIANTS

    shapes = []
    for config in [c for c in GPU_VARIANTS if c.language == "tilelang"] + list(TILELANG_SCHEDULES.values()):
        shapes += [_shape(config), _shape(config, page_size=0, rows_per_page=1)]
    shapes += [_shape(config, causal=False) for config in TILELANG_SCHEDULES.values()]
    shapes += [_shape(config, head_dim=256) for config in D256_VARIANTS]  # sweep_prefill_hopper --head-dim 256
    for config in D64_VARIANTS:  # sweep_prefill_hopper --head-dim 64: paged and ragged
        shapes += [_shape(config, head_dim=64), _shape(config, head_dim=64, page_size=0, rows_per_page=1)]
    return list(dict.fromkeys(shapes))


def test_shapes() -> list:
    """The GPU tests' kernels: paged at sm_scale 0.1 with lse (interleaved pages; separate K and V caches also
    without lse), ragged at the default scale with lse, the graph replays' (paged, causal, default scale, lse), and
    the default path's (TILELANG_CONFIG, causal, default scale: interleaved pages of 16 without lse, the extra
    dtypes and page sizes with lse, ragged with lse)."""
    from kernelarena.kernels.attention.prefill_hopper import TILELANG_CONFIG
    from tests.kernels.test_attention_prefill_tilelang import (
        DEFAULT_PAGED_CASES,
        GRAPH_CASES,
        PAGED_CASES,
        RAGGED_CASES,
    )

    shapes = []
    for config, causal, as_tuple, head_dim, page_size in PAGED_CASES:
        rows = page_size if as_tuple else 2 * page_size
        for lse in (True, False) if as_tuple else (True,):
            shapes.append(_shape(config, head_dim=head_dim, page_size=page_size, rows_per_page=rows, causal=causal,
                                 sm_scale=0.1, write_lse=lse))
    for config, causal, head_dim in RAGGED_CASES:
        shapes.append(_shape(config, head_dim=head_dim, page_size=0, rows_per_page=1, causal=causal, write_lse=True))
    for config, as_tuple in GRAPH_CASES:
        shapes.append(_shape(config, rows_per_page=16 if as_tuple else 32, write_lse=True, graph=True))
    shapes.append(_shape(TILELANG_CONFIG))
    for page_size, dtype, tilelang in DEFAULT_PAGED_CASES:
        if tilelang:
            shapes.append(_shape(TILELANG_CONFIG, page_size=page_size, rows_per_page=2 * page_size, write_lse=True,
                                 dtype=dtype))
    shapes.append(_shape(TILELANG_CONFIG, page_size=0, rows_per_page=1, write_lse=True))
    shapes.append(_shape(TILELANG_CONFIG, write_lse=True))  # the dataset solution's test: interleaved pages, lse
    return list(dict.fromkeys(shapes))


def dataset_shapes() -> list:
    """The example dataset's TileLang prefill solution (solution_prefill_tilelang.py) on its workloads: separate K and
    V caches (pages 16 rows apart), lse, each workload's sm_scale as the workload stores it (the scale is part of the
    compiled kernel, so 1/sqrt(128) rounded otherwise is another kernel)."""
    from kernelarena.kernels.attention.prefill_hopper import TILELANG_CONFIG
    from kernelarena.kernels.attention.solutions import PREFILL
    from kernelarena.store import TraceSet

    dataset = TraceSet.load(Path(__file__).resolve().parents[1] / "examples" / "dataset")
    scales = sorted({float(w.inputs["sm_scale"].value) for w in dataset.workloads_for(PREFILL)})
    return [_shape(TILELANG_CONFIG, rows_per_page=16, sm_scale=scale, write_lse=True) for scale in scales]


def fresh_cache(cache: Path) -> None:
    """Empty ``cache`` when its kernels were compiled from another version of prefill_tilelang.py: the pack carries
    the folder whole, and every edit of the kernel would otherwise add a set of kernels nothing loads (the pack
    went from 0.6 to 2.7 MB over two edits, against a 64 MiB carry limit shared with the packages)."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    stamp = cache / SOURCE_STAMP
    if cache.exists() and not (stamp.exists() and stamp.read_text() == digest):
        shutil.rmtree(cache)
    cache.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="sm_90a")
    parser.add_argument("--only", default="sweep,tests,dataset", help="comma list of: sweep, tests, dataset")
    args = parser.parse_args(argv)
    cache = CACHE_DIR
    fresh_cache(cache)
    os.environ["TILELANG_CACHE_DIR"] = str(cache.resolve())  # read when TileLang is imported (below)
    from kernelarena.kernels.attention import prefill_tilelang

    groups = {"sweep": sweep_shapes, "tests": test_shapes, "dataset": dataset_shapes}
    shapes = list(dict.fromkeys(s for name in args.only.split(",") for s in groups[name]()))
    failures = 0
    for i, shape in enumerate(shapes, 1):
        t0 = time.perf_counter()
        try:
            prefill_tilelang.compiled_kernel(shape, args.arch)
            note = "ok"
        except Exception as exc:  # one shape failing to compile must not stop the rest
            failures += 1
            note = f"FAILED {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        print(f"[{i}/{len(shapes)}] {time.perf_counter() - t0:5.1f}s {note}: {shape}", flush=True)
    PACK_DIR.mkdir(exist_ok=True)
    pack = PACK_DIR / "tilelang_cache.tar.xz"
    with tarfile.open(pack, "w:xz") as tar:
        tar.add(cache, arcname=".")
    print(f"packed {cache} into {pack} ({pack.stat().st_size / 1e6:.1f} MB)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
