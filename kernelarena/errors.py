"""All exceptions kernelarena raises on purpose, in one hierarchy.

Every error names what is at fault (a file and line, a field, a solution), so the message alone says what
to fix. A solution's own exception is kept as ``__cause__``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union


class KernelArenaError(Exception):
    """Base class of every error kernelarena raises on purpose."""


class SchemaError(KernelArenaError, ValueError):
    """A record (definition, solution, workload, trace) breaks a rule of the schema."""


class DatasetError(KernelArenaError):
    """A problem in a dataset on disk: names the file, and where known the line and field."""

    def __init__(
        self,
        message: str,
        *,
        file: Union[str, Path, None] = None,
        line: Optional[int] = None,
        field: Optional[str] = None,
    ):
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.message = message
        super().__init__(self.location() + message)

    def location(self) -> str:
        """``file:line: field: `` prefix (the parts that are known)."""
        parts = []
        if self.file:
            parts.append(self.file + (f":{self.line}" if self.line else ""))
        if self.field:
            parts.append(self.field)
        return "".join(p + ": " for p in parts)


class BuildError(KernelArenaError):
    """A solution failed to build; ``log`` holds the compiler's output."""

    def __init__(self, solution: str, message: str, log: str = ""):
        self.solution = solution
        self.log = log
        super().__init__(f"solution '{solution}': {message}")


class ShapeError(KernelArenaError, ValueError):
    """Tensor shapes disagree with a definition's axes."""


class UnsupportedError(KernelArenaError):
    """A request outside what a kernel or builder supports (too large a hidden size, no GPU, ...)."""


class DispatchError(KernelArenaError):
    """apply() could not route a call and had no fallback to take."""


class EngineError(KernelArenaError):
    """An engine cannot run (no cluster at the address, no device slot in it, its package missing)."""
