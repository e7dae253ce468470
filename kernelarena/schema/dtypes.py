"""Mapping between FlashInfer-Trace dtype names and torch dtypes (torch imported lazily)."""

from __future__ import annotations

from typing import Any

from .definition import DType


def torch_dtype(dtype: DType | str) -> Any:
    """The torch dtype for a FlashInfer-Trace dtype name; ValueError if this torch lacks it."""
    import torch

    name = DType(dtype).value
    attr = {"float4_e2m1": "float4_e2m1fn_x2"}.get(name, name)
    if not hasattr(torch, attr):
        raise ValueError(f"dtype {name!r} is not supported by torch {torch.__version__}")
    return getattr(torch, attr)


def dtype_name(torch_dtype_value: Any) -> str:
    """The FlashInfer-Trace name of a torch dtype ("bfloat16" for torch.bfloat16)."""
    name = str(torch_dtype_value).removeprefix("torch.")
    return {"float4_e2m1fn_x2": "float4_e2m1"}.get(name, name)
