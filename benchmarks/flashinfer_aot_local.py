"""Compile the FlashInfer modules our GPU runs load, for sm_90a, on a machine WITHOUT a GPU, and pack them as
``.fi-cache/flashinfer_aot.tar.xz`` (what ``benchmarks/gpu_env.sh`` unpacks), so that no GPU time goes to
FlashInfer's JIT (measured on the H200: minutes per module, over 7 for top-k).

    python3 -m benchmarks.flashinfer_aot_local [--only SUBSTRING ...] [--out .fi-cache]

Needs nvcc 13 (FlashInfer's modules load through TVM-FFI, not PyTorch, so the local PyTorch build does not
matter), ``libcudart.so`` and a ``libcuda.so`` stub on the linker path (``/usr/local/lib64`` and its ``stubs/``),
and the cuRAND and cuBLAS headers (``nvidia-curand`` and ``nvidia-cublas`` wheels' ``include/``) on the include
path, and for the GEMM module (``mm_bf16_cublaslt``, what the dataset's FlashInfer GEMM solutions load) that
wheel's ``libcublas.so``/``libcublasLt.so`` on the linker path; each failure prints the compiler's message. 2
cores: about 15 minutes for attention, norm, rope, sampling and activation, 12-21 more for top-k, seconds for
the GEMM (2026-12-02).

Which modules: FlashInfer names a module from the call's arguments, so the entry points our benchmarks and
solutions use are called here on CPU tensors with the capability queries answered for an H200 and the module
build intercepted; decode without tensor cores, norm, top-k, the bf16 GEMM and MLA decode are named directly
(their calls stop earlier on a CPU).
"""

from __future__ import annotations

import argparse
import os
import tarfile
import time
from pathlib import Path

os.environ.setdefault("FLASHINFER_CUDA_ARCH_LIST", "9.0a")

import torch  # noqa: E402


def _answer_as_h200() -> None:
    """FlashInfer asks the device for its capability and pins host buffers; answer as an sm_90 GPU would."""
    torch.cuda.get_device_capability = lambda *a, **k: (9, 0)
    empty = torch.empty

    def unpinned(*args, **kwargs):
        kwargs.pop("pin_memory", None)
        return empty(*args, **kwargs)

    torch.empty = unpinned


class _Named(Exception):
    pass


def module_specs() -> dict:
    """The JIT specs of the modules our runs load, by module name."""
    _answer_as_h200()
    import flashinfer
    from flashinfer.jit import core, gen_batch_mla_module
    from flashinfer.jit.attention.modules import gen_batch_decode_module
    from flashinfer.jit.gemm import gen_mm_bf16_cublaslt_module
    from flashinfer.jit.norm import gen_norm_module
    from flashinfer.jit.topk import gen_topk_module

    specs = {}

    def record(spec, *args, **kwargs):
        specs[spec.name] = spec
        raise _Named(spec.name)

    original = core.JitSpec.build_and_load
    core.JitSpec.build_and_load = record
    try:
        bf16, hq, hkv, d, page, batch = torch.bfloat16, 32, 8, 128, 16, 4
        workspace = torch.empty(16 << 20, dtype=torch.uint8)
        indptr = torch.arange(0, batch + 1, dtype=torch.int32) * 4
        indices = torch.arange(batch * 4, dtype=torch.int32)
        last = torch.full((batch,), page, dtype=torch.int32)
        qo = torch.arange(0, batch + 1, dtype=torch.int32) * 64
        calls = []
        for backend in ("fa2", "fa3"):
            calls.append(lambda b=backend: flashinfer.BatchPrefillWithPagedKVCacheWrapper(workspace, "NHD", backend=b)
                         .plan(qo, indptr, indices, last, hq, hkv, d, page, causal=True, q_data_type=bf16))
            calls.append(lambda b=backend: flashinfer.BatchPrefillWithRaggedKVCacheWrapper(workspace, "NHD", backend=b)
                         .plan(qo, qo, hq, hkv, d, causal=True, q_data_type=bf16))
        # head_dim 256 (sweep_prefill_hopper --head-dim 256: FA3 against the TileLang kernel's 64-key blocks).
        calls.append(lambda: flashinfer.BatchPrefillWithPagedKVCacheWrapper(workspace, "NHD", backend="fa3")
                     .plan(qo, indptr, indices, last, hq, hkv, 256, page, causal=True, q_data_type=bf16))
        # head_dim 64, paged and ragged (sweep_prefill_hopper --head-dim 64).
        calls.append(lambda: flashinfer.BatchPrefillWithPagedKVCacheWrapper(workspace, "NHD", backend="fa3")
                     .plan(qo, indptr, indices, last, hq, hkv, 64, page, causal=True, q_data_type=bf16))
        calls.append(lambda: flashinfer.BatchPrefillWithRaggedKVCacheWrapper(workspace, "NHD", backend="fa3")
                     .plan(qo, qo, hq, hkv, 64, causal=True, q_data_type=bf16))
        probs = torch.softmax(torch.randn(2, 1024), -1)
        calls += [
            lambda: flashinfer.activation.silu_and_mul(torch.randn(2, 256, dtype=bf16)),
            lambda: flashinfer.rope.apply_rope_with_cos_sin_cache(torch.arange(2), torch.randn(2, 256, dtype=bf16),
                                                                  torch.randn(2, 128, dtype=bf16), 128,
                                                                  torch.randn(16, 128), is_neox=True),
            lambda: flashinfer.sampling.top_k_sampling_from_probs(probs, 5),
        ]
        for call in calls:
            try:
                call()
            except _Named:
                pass
    finally:
        core.JitSpec.build_and_load = original
    for spec in (gen_batch_decode_module(bf16, bf16, bf16, torch.int32, d, d, 0, False, False), gen_norm_module(),
                 gen_topk_module(), gen_mm_bf16_cublaslt_module(),
                 # MLA decode (ckv 512, kpe 64) as the dataset's FlashInfer MLA solution plans it: FA3 on sm90, FA2
                 # where FA3 declines the plan.
                 *(gen_batch_mla_module(backend, bf16, bf16, bf16, torch.int32, 512, 64, False)
                   for backend in ("fa3", "fa2"))):
        specs[spec.name] = spec
    return specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="build only modules whose name contains one of these")
    parser.add_argument("--out", type=Path, default=Path(".fi-cache"))
    args = parser.parse_args()
    built = []
    for name, spec in sorted(module_specs().items()):
        if args.only and not any(part in name for part in args.only):
            continue
        started = time.time()
        try:
            spec.build(verbose=False)
            built.append(spec)
            print(f"built {name} ({time.time() - started:.0f} s)", flush=True)
        except Exception as e:  # the others still build; the message says what the compiler lacked
            print(f"FAILED {name}: {str(e)[-2000:]}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "flashinfer_aot.tar.xz"
    with tarfile.open(path, "w:xz") as tar:
        for spec in built:
            so = spec.jit_library_path
            tar.add(so, arcname=f"{so.parent.name}/{so.name}")
    print(f"packed {len(built)} modules into {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
