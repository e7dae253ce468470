"""Solution: one implementation of a definition — language, entry point, and its source files."""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from pathlib import PurePosixPath, PureWindowsPath
from typing import List, Optional

from pydantic import Field, field_validator, model_validator

from .base import NonEmptyString, Record, SafeName


class Language(str, Enum):
    PYTHON = "python"
    TRITON = "triton"
    CUDA = "cuda"
    CPP = "cpp"
    TILELANG = "tilelang"


class Binding(str, Enum):
    """How compiled C++/CUDA is called from Python."""

    TORCH = "torch"
    TVM_FFI = "tvm-ffi"


class SourceFile(Record):
    """One file of a solution; ``path`` is relative and stays inside the solution's folder."""

    path: NonEmptyString
    content: NonEmptyString

    @field_validator("path")
    @classmethod
    def _relative_inside(cls, path: str) -> str:
        posix = PurePosixPath(path)
        if posix.is_absolute() or PureWindowsPath(path).is_absolute() or PureWindowsPath(path).drive:
            raise ValueError(f"source path {path!r} is absolute; it must be relative to the solution folder")
        if ".." in posix.parts or ".." in PureWindowsPath(path).parts:
            raise ValueError(f"source path {path!r} leaves the solution folder ('..')")
        return path


class BuildSpec(Record):
    """How to build and call a solution."""

    language: Language
    target_hardware: List[NonEmptyString] = Field(min_length=1)
    """Where it runs: "cuda", "cpu", or device names such as "NVIDIA_H100"."""
    entry_point: NonEmptyString
    """``file::function``, e.g. ``main.py::run`` or ``kernel.cu::run``."""
    dependencies: List[NonEmptyString] = Field(default_factory=list)
    destination_passing_style: bool = True
    """True: outputs are passed as the last arguments and written in place. False: outputs are returned."""
    binding: Optional[Binding] = None
    """For cuda/cpp: ``torch`` (PyTorch extension) or ``tvm-ffi``; None means tvm-ffi."""

    @field_validator("entry_point")
    @classmethod
    def _entry_format(cls, entry: str) -> str:
        file, sep, symbol = entry.partition("::")
        if not sep or not file or not symbol or "::" in symbol or not symbol.isidentifier():
            raise ValueError(f"entry_point {entry!r} must look like 'file.py::function'")
        return entry


class Solution(Record):
    """An implementation of ``definition``."""

    name: SafeName
    definition: SafeName
    author: NonEmptyString
    spec: BuildSpec
    sources: List[SourceFile] = Field(min_length=1)
    description: Optional[str] = None

    @model_validator(mode="after")
    def _check_sources(self) -> "Solution":
        paths = [s.path for s in self.sources]
        dupes = sorted({p for p in paths if paths.count(p) > 1})
        if dupes:
            raise ValueError(f"sources: duplicate paths {dupes}")
        if self.entry_file not in paths:
            raise ValueError(f"spec.entry_point: file {self.entry_file!r} is not among the sources {paths}")
        return self

    @property
    def entry_file(self) -> str:
        return self.spec.entry_point.split("::")[0]

    @property
    def entry_symbol(self) -> str:
        return self.spec.entry_point.split("::")[1]

    def content_hash(self) -> str:
        """SHA-256 of everything that changes what gets built (spec and sources, not name or author)."""
        payload = json.dumps(
            {"spec": self.spec.model_dump(mode="json"), "sources": [[s.path, s.content] for s in self.sources]},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()
