"""Dataset solutions (FlashInfer-Trace Solution records) for the paged-attention definitions.

Sources are read from this package's files at call time, so the dataset carries exactly the kernels the
wrappers run (one copy of each). Every embedded file imports only torch, triton, numpy, the standard library, its
siblings and the packages its record lists (tilelang, which brings tvm).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
DECODE = "gqa_paged_decode_h32_kv8_d128_ps16"
PREFILL = "gqa_paged_prefill_causal_h32_kv8_d128_ps16"
TRITON_SOURCES = ("solution_common.py", "kernel_config.py", "scheduler.py", "paged_kernel.py")
# prefill_tilelang.py takes LOG2E from paged_kernel.py and the plan's layout from scheduler.py.
TILELANG_SOURCES = ("prefill_tilelang.py", "scheduler.py", "paged_kernel.py")
TILELANG_DESCRIPTION = ("kernelarena's TileLang Hopper prefill kernel (sm90: H100/H200), the prefill wrappers' default "
                        "there: a producer warpgroup gathers K/V pages by TMA, two consumer warpgroups run FA3's "
                        "overlapped, ping-ponged wgmma schedule, persistent blocks take query tiles from a counter.")


def _sources(*names: str) -> list[dict]:
    return [{"path": name, "content": (HERE / name).read_text()} for name in names]


def _record(name: str, definition: str, description: str, language: str, hardware: list[str], entry: str,
            sources: list[dict], dependencies: list[str]) -> dict:
    return {
        "name": name,
        "definition": definition,
        "author": "kernelarena",
        "description": description,
        "spec": {"language": language, "target_hardware": hardware, "entry_point": entry,
                 "destination_passing_style": True, "binding": None, "dependencies": dependencies},
        "sources": sources,
    }


def solution_records() -> list[dict]:
    """Triton (ours), FlashInfer-wrapper and PyTorch-reference solutions for the decode and prefill definitions, and
    our TileLang one for prefill on sm90."""
    ours = ("kernelarena's persistent Triton paged-attention kernel: host-planned work list of (query tile, "
            "KV chunk) items, GQA group packed into the tile rows, split KV merged by log-sum-exp.")
    planning = "(run() plans on every call; plan() once per page table)."
    return [
        _record(f"kernelarena_triton_{DECODE}", DECODE, ours, "triton", ["cuda", "cpu"],
                "solution_decode.py::run", _sources("solution_decode.py", *TRITON_SOURCES), []),
        _record(f"kernelarena_triton_{PREFILL}", PREFILL, ours, "triton", ["cuda", "cpu"],
                "solution_prefill.py::run", _sources("solution_prefill.py", *TRITON_SOURCES), []),
        _record(f"kernelarena_tilelang_{PREFILL}", PREFILL, TILELANG_DESCRIPTION, "tilelang", ["H100", "H200"],
                "solution_prefill_tilelang.py::run", _sources("solution_prefill_tilelang.py", *TILELANG_SOURCES),
                ["tilelang"]),
        _record(f"flashinfer_wrapper_{DECODE}", DECODE, "FlashInfer's BatchDecodeWithPagedKVCacheWrapper "
                f"{planning}", "python", ["cuda"], "flashinfer_decode.py::run", _sources("flashinfer_decode.py"),
                ["flashinfer"]),
        _record(f"flashinfer_wrapper_{PREFILL}", PREFILL, "FlashInfer's BatchPrefillWithPagedKVCacheWrapper, "
                f"causal {planning}", "python", ["cuda"], "flashinfer_prefill.py::run",
                _sources("flashinfer_prefill.py"), ["flashinfer"]),
        _record(f"torch_reference_{DECODE}", DECODE, "Plain PyTorch, float64, one request at a time.", "python",
                ["cuda", "cpu"], "reference.py::run_decode", _sources("reference.py"), []),
        _record(f"torch_reference_{PREFILL}", PREFILL, "Plain PyTorch, float64, one request at a time.",
                "python", ["cuda", "cpu"], "reference.py::run_prefill_causal", _sources("reference.py"), []),
    ]
