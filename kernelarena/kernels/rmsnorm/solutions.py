"""The dataset's RMSNorm solutions as FlashInfer-Trace Solution records, with sources read from this package.

Each kernel lives once, in this package; a solution embeds its files verbatim. A Python-language solution
(Triton, TileLang, FlashInfer) embeds one module that defines both entry functions (``run_rmsnorm``,
``run_fused_add_rmsnorm``) and gets one appended line, ``run = run_<op>``, so that its ``run`` has the
definition's exact signature. The CUDA solutions embed rmsnorm.cuh beside a binding file: for the torch
binding one .cu whose ``run`` is overloaded on arity, for TVM-FFI one small entry file per operator (all
under cuda/; a solution's files keep their bare names).
"""

from __future__ import annotations

from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
AUTHOR = "kernelarena"

# Definition name -> (operator, hidden size); the definitions themselves live in the dataset.
DEFINITIONS = {
    "rmsnorm_h4096": ("rmsnorm", 4096),
    "rmsnorm_h8192": ("rmsnorm", 8192),
    "fused_add_rmsnorm_h4096": ("fused_add_rmsnorm", 4096),
    "fused_add_rmsnorm_h8192": ("fused_add_rmsnorm", 8192),
}

_ENTRY_ALIAS = ("\n\n# Entry point of this solution's definition (appended by kernelarena's solutions.py).\n"
                "run = run_{op}\n")


def _read(name: str) -> str:
    return (SOURCE_DIR / name).read_text()


def _python_entry(module_file: str, entry_file: str, op: str) -> list[dict]:
    return [{"path": entry_file, "content": _read(module_file) + _ENTRY_ALIAS.format(op=op)}]


def _spec(language: str, entry_point: str, binding: str | None = None, hardware: tuple[str, ...] = ("cuda",),
          dependencies: tuple[str, ...] = ()) -> dict:
    return {
        "language": language,
        "target_hardware": list(hardware),
        "entry_point": entry_point,
        "destination_passing_style": True,
        "binding": binding,
        "dependencies": list(dependencies),
    }


def _records_for(definition: str, op: str, hidden: int) -> list[dict]:
    what = "RMSNorm" if op == "rmsnorm" else "fused residual add + RMSNorm"
    tvm_entry = "rmsnorm_tvm_ffi.cu" if op == "rmsnorm" else "fused_add_rmsnorm_tvm_ffi.cu"
    return [
        {
            "name": f"{definition}_kernelarena_triton",
            "definition": definition,
            "author": AUTHOR,
            "description": f"{what} (hidden {hidden}) in Triton: whole rows in registers, one pass over memory, "
                           "heuristic rows per program and warps; runs on the CPU under TRITON_INTERPRET=1.",
            "spec": _spec("triton", "rmsnorm_triton.py::run", hardware=("cpu", "cuda")),
            "sources": _python_entry("triton.py", "rmsnorm_triton.py", op),
        },
        {
            "name": f"{definition}_kernelarena_cuda",
            "definition": definition,
            "author": AUTHOR,
            "description": f"{what} (hidden {hidden}) in CUDA C++: 16-byte vector loads all issued before a warp "
                           "shuffle + shared-memory row sum, float32 math; PyTorch extension binding.",
            "spec": _spec("cuda", "rmsnorm_torch.cu::run", binding="torch"),
            "sources": [{"path": "rmsnorm.cuh", "content": _read("cuda/rmsnorm.cuh")},
                        {"path": "rmsnorm_torch.cu", "content": _read("cuda/rmsnorm_torch.cu")}],
        },
        {
            "name": f"{definition}_kernelarena_cuda_tvm_ffi",
            "definition": definition,
            "author": AUTHOR,
            "description": f"{what} (hidden {hidden}): the same CUDA kernel as {definition}_kernelarena_cuda, "
                           "bound through TVM-FFI.",
            "spec": _spec("cuda", f"{tvm_entry}::run", binding="tvm-ffi"),
            "sources": [{"path": "rmsnorm.cuh", "content": _read("cuda/rmsnorm.cuh")},
                        {"path": "rmsnorm_tvm_ffi.cuh", "content": _read("cuda/rmsnorm_tvm_ffi.cuh")},
                        {"path": tvm_entry, "content": _read(f"cuda/{tvm_entry}")}],
        },
        {
            "name": f"{definition}_kernelarena_tilelang",
            "definition": definition,
            "author": AUTHOR,
            "description": f"{what} (hidden {hidden}) in TileLang: rows in register fragments, reduce_sum "
                           "all-reduce; compiled on first call for the batch-size-symbolic shape.",
            "spec": _spec("tilelang", "rmsnorm_tilelang.py::run"),
            "sources": _python_entry("tilelang.py", "rmsnorm_tilelang.py", op),
        },
        {
            "name": f"{definition}_flashinfer",
            "definition": definition,
            "author": AUTHOR,
            "description": f"Baseline: FlashInfer's flashinfer.norm.{op} (hidden {hidden})"
                           + ("; inputs copied into the outputs first, as it works in place." if op != "rmsnorm"
                              else "."),
            "spec": _spec("python", "rmsnorm_flashinfer.py::run", dependencies=("flashinfer",)),
            "sources": _python_entry("flashinfer.py", "rmsnorm_flashinfer.py", op),
        },
    ]


def solution_records() -> list[dict]:
    """FlashInfer-Trace Solution dicts for every RMSNorm definition: Triton, CUDA (torch binding), CUDA
    (TVM-FFI binding), TileLang and FlashInfer, five per definition."""
    return [record for definition, (op, hidden) in DEFINITIONS.items()
            for record in _records_for(definition, op, hidden)]
