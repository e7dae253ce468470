"""First look at a GPU machine: the GPU, the versions of what our runs import, and whether each FlashInfer entry
point our benchmarks and dataset call loads a prebuilt module (``.fi-cache``, unpacked by gpu_env.sh) instead of
compiling one — a JIT compile there takes minutes per module and would eat a call's time.

    FLASHINFER_DISABLE_JIT=1 python3 -m benchmarks.gpu_smoke

With FLASHINFER_DISABLE_JIT=1 (gpu_env.sh sets it) a missing module fails at once, naming the module. Prints one
line per entry point: ok and its first-call seconds, or the error.
"""

from __future__ import annotations

import importlib
import subprocess
import time


def versions() -> None:
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True)
        print(f"gpu: {gpu.stdout.strip() or gpu.stderr.strip()}")
    except FileNotFoundError:
        print("gpu: no nvidia-smi")
    for name in ("torch", "triton", "flashinfer", "flashinfer_bench", "ray", "landlock", "tilelang", "tvm_ffi",
                 "pydantic", "transformers"):
        try:
            module = importlib.import_module(name)
            print(f"{name}: {getattr(module, '__version__', 'imported')}")
        except Exception as e:  # report every package, present or not
            print(f"{name}: missing ({type(e).__name__}: {str(e)[:120]})")


def entry_points() -> dict:
    import flashinfer
    import torch

    dev, bf16 = "cuda", torch.bfloat16
    hq, hkv, d, page, batch, kv_len = 32, 8, 128, 16, 4, 256
    pages = kv_len // page
    indptr = torch.arange(0, batch + 1, dtype=torch.int32, device=dev) * pages
    indices = torch.randperm(batch * pages, device=dev).int()
    last = torch.full((batch,), page, dtype=torch.int32, device=dev)
    cache = torch.randn(batch * pages, 2, page, hkv, d, device=dev, dtype=bf16)
    workspace = torch.empty(128 << 20, dtype=torch.uint8, device=dev)
    x = torch.randn(8, 4096, device=dev, dtype=bf16)
    w = torch.randn(4096, device=dev, dtype=bf16)
    probs = torch.softmax(torch.randn(4, 128256, device=dev), -1)

    def decode(tc: bool):
        def call():
            wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace, "NHD", use_tensor_cores=tc)
            wrapper.plan(indptr, indices, last, hq, hkv, d, page, q_data_type=bf16)
            wrapper.run(torch.randn(batch, hq, d, device=dev, dtype=bf16), cache)
        return call

    def prefill(backend: str):
        def call():
            qo = torch.arange(0, batch + 1, dtype=torch.int32, device=dev) * 64
            wrapper = flashinfer.BatchPrefillWithPagedKVCacheWrapper(workspace, "NHD", backend=backend)
            wrapper.plan(qo, indptr, indices, last, hq, hkv, d, page, causal=True, q_data_type=bf16)
            wrapper.run(torch.randn(batch * 64, hq, d, device=dev, dtype=bf16), cache)
        return call

    def ragged(backend: str):
        def call():
            qo = torch.tensor([0, 64, 128], dtype=torch.int32, device=dev)
            wrapper = flashinfer.BatchPrefillWithRaggedKVCacheWrapper(workspace, "NHD", backend=backend)
            wrapper.plan(qo, qo, hq, hkv, d, causal=True, q_data_type=bf16)
            k = torch.randn(128, hkv, d, device=dev, dtype=bf16)
            wrapper.run(torch.randn(128, hq, d, device=dev, dtype=bf16), k, k.clone())
        return call

    def rope():
        q = torch.randn(8, 32 * 128, device=dev, dtype=bf16)
        k = torch.randn(8, 8 * 128, device=dev, dtype=bf16)
        cos_sin = torch.randn(4096, 128, device=dev, dtype=torch.float32)
        flashinfer.rope.apply_rope_with_cos_sin_cache_inplace(torch.arange(8, device=dev), q, k, 128, cos_sin,
                                                              is_neox=True)

    return {
        "norm.rmsnorm": lambda: flashinfer.norm.rmsnorm(x, w, eps=1e-6),
        "norm.fused_add_rmsnorm": lambda: flashinfer.norm.fused_add_rmsnorm(x, x.clone(), w, eps=1e-6),
        "decode (cuda cores)": decode(False),
        "decode (tensor cores)": decode(True),
        "paged prefill fa2": prefill("fa2"),
        "paged prefill fa3": prefill("fa3"),
        "paged prefill auto": prefill("auto"),
        "ragged prefill fa2": ragged("fa2"),
        "ragged prefill fa3": ragged("fa3"),
        "activation.silu_and_mul": lambda: flashinfer.activation.silu_and_mul(
            torch.randn(8, 2 * 14336, device=dev, dtype=bf16)),
        "rope.apply_rope_with_cos_sin_cache_inplace": rope,
        "sampling.top_k": lambda: flashinfer.sampling.top_k_sampling_from_probs(probs, 50),
        "sampling.top_p": lambda: flashinfer.sampling.top_p_sampling_from_probs(probs, 0.9),
        "sampling.top_k_top_p": lambda: flashinfer.sampling.top_k_top_p_sampling_from_probs(probs, 50, 0.9),
    }


def main() -> None:
    versions()
    import torch

    if not torch.cuda.is_available():
        print("no GPU: entry points not tried")
        return
    for name, call in entry_points().items():
        started = time.perf_counter()
        try:
            call()
            torch.cuda.synchronize()
            print(f"{name}: ok, first call {time.perf_counter() - started:.1f} s")
        except Exception as e:  # each entry point on its own: one missing module does not hide the others
            print(f"{name}: FAILED after {time.perf_counter() - started:.1f} s: {type(e).__name__}: "
                  f"{' '.join(str(e).split())[:300]}")


if __name__ == "__main__":
    main()
