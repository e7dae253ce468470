"""JIT-compile the FlashInfer kernels our benchmarks compare against, and pack them for later GPU calls.

FlashInfer compiles each kernel family on first use (1-2 minutes each on a fresh GPU machine). This script
calls every FlashInfer entry point the benchmarks use, with the benchmarks' settings, then packs the built
shared objects as FlashInfer AOT modules (``<name>/<name>.so``) into ``$OUT/flashinfer_aot.tar.xz``
(3 MB for head_dim 128).
Unpacked into ``flashinfer/data/aot/`` (``benchmarks/gpu_env.sh`` does it) they load without compiling.

Usage on the GPU machine: ``python3 benchmarks/flashinfer_warmup.py``; copy the result into ``.fi-cache/``
(git-ignored) and carry ``.fi-cache`` with ``.gpu-deps``. Measured 2026-11-24 on an H100: norm 52 s, attention
(decode, paged prefill fa2+sm90, ragged) about 2.5 min per head_dim.
"""

import glob
import os
import tarfile
import time

import torch


def warm_norm() -> None:
    import flashinfer

    for hidden in (4096, 8192):
        x = torch.randn(8, hidden, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(hidden, device="cuda", dtype=torch.bfloat16)
        r = torch.randn_like(x)
        flashinfer.norm.rmsnorm(x, w, eps=1e-6)
        flashinfer.norm.fused_add_rmsnorm(x, r, w, eps=1e-6)


def paged_table(batch: int, kv_len: int, page: int):
    pages_per = (kv_len + page - 1) // page
    indptr = torch.arange(0, batch + 1, dtype=torch.int32, device="cuda") * pages_per
    indices = torch.randperm(batch * pages_per, device="cuda").int()
    last = torch.full((batch,), kv_len - (pages_per - 1) * page, dtype=torch.int32, device="cuda")
    return indptr, indices, last


def warm_attention() -> None:
    import flashinfer

    hq, hkv, page = 32, 8, 16
    workspace = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    for d in (128,):
        batch, kv_len = 4, 256
        indptr, indices, last = paged_table(batch, kv_len, page)
        cache = torch.randn(batch * kv_len // page, 2, page, hkv, d, device="cuda", dtype=torch.bfloat16)
        for tc in (False, True):
            dec = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace, "NHD", use_tensor_cores=tc)
            dec.plan(indptr, indices, last, hq, hkv, d, page, q_data_type=torch.bfloat16)
            dec.run(torch.randn(batch, hq, d, device="cuda", dtype=torch.bfloat16), cache)
        qo_len = 64
        qo_indptr = torch.arange(0, batch + 1, dtype=torch.int32, device="cuda") * qo_len
        pre = flashinfer.BatchPrefillWithPagedKVCacheWrapper(workspace, "NHD")
        pre.plan(qo_indptr, indptr, indices, last, hq, hkv, d, page, causal=True,
                 q_data_type=torch.bfloat16)
        pre.run(torch.randn(batch * qo_len, hq, d, device="cuda", dtype=torch.bfloat16), cache)
    d = 128
    rag = flashinfer.BatchPrefillWithRaggedKVCacheWrapper(workspace, "NHD")
    qo_indptr = torch.tensor([0, 64, 128], dtype=torch.int32, device="cuda")
    rag.plan(qo_indptr, qo_indptr, hq, hkv, d, causal=True, q_data_type=torch.bfloat16)
    q = torch.randn(128, hq, d, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(128, hkv, d, device="cuda", dtype=torch.bfloat16)
    rag.run(q, k, k.clone())


def warm_decode_step_ops() -> None:
    """The other ops of a decode step that the example dataset compares against (activation, rope, sampling).
    Each is tried on its own: one that fails to build is reported and the rest still warm."""
    import flashinfer

    def silu() -> None:
        flashinfer.activation.silu_and_mul(torch.randn(8, 2 * 14336, device="cuda", dtype=torch.bfloat16))

    def rope() -> None:
        q = torch.randn(8, 32 * 128, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(8, 8 * 128, device="cuda", dtype=torch.bfloat16)
        cache = torch.randn(4096, 128, device="cuda", dtype=torch.float32)
        pos = torch.arange(8, device="cuda")
        flashinfer.rope.apply_rope_with_cos_sin_cache(pos, q, k, 128, cache, is_neox=True)

    def sampling() -> None:
        probs = torch.softmax(torch.randn(4, 128256, device="cuda"), -1)
        flashinfer.sampling.top_k_sampling_from_probs(probs, 50)
        flashinfer.sampling.top_p_sampling_from_probs(probs, 0.9)
        flashinfer.sampling.top_k_top_p_sampling_from_probs(probs, 50, 0.9)

    for op in (silu, rope, sampling):
        try:
            op()
        except Exception as e:  # report and go on: the other families still warm
            print(f"warm {op.__name__}: failed: {type(e).__name__}: {e}")


def pack(out_dir: str) -> None:
    sos = glob.glob(os.path.expanduser("~/.cache/flashinfer/*/*/cached_ops/*/*.so"))
    path = os.path.join(out_dir, "flashinfer_aot.tar.xz")
    with tarfile.open(path, "w:xz") as tar:
        for so in sos:
            name = os.path.basename(os.path.dirname(so))
            tar.add(so, arcname=f"{name}/{os.path.basename(so)}")
    print(f"packed {len(sos)} modules into {path} ({os.path.getsize(path) / 1e6:.1f} MB)")


if __name__ == "__main__":
    for step in (warm_norm, warm_attention, warm_decode_step_ops):
        t0 = time.time()
        step()
        torch.cuda.synchronize()
        print(f"{step.__name__}: {time.time() - t0:.1f} s")
    pack(os.environ.get("OUT", "."))
