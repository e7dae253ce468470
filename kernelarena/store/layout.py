"""Where each record lives in a FlashInfer-Trace dataset folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """Paths of a dataset rooted at ``root``::

        definitions/<op_type>/<definition>.json
        solutions/<op_type>/<definition>/<solution>.json
        workloads/<op_type>/<definition>.jsonl
        traces/<op_type>/<definition>.jsonl
        blob/workloads/<op_type>/<definition>/<definition>_<uuid>.safetensors
    """

    root: Path

    @property
    def definitions(self) -> Path:
        return self.root / "definitions"

    @property
    def solutions(self) -> Path:
        return self.root / "solutions"

    @property
    def workloads(self) -> Path:
        return self.root / "workloads"

    @property
    def traces(self) -> Path:
        return self.root / "traces"

    @property
    def blob(self) -> Path:
        return self.root / "blob"

    def definition_file(self, op_type: str, name: str) -> Path:
        return self.definitions / op_type / f"{name}.json"

    def solution_file(self, op_type: str, definition: str, name: str) -> Path:
        return self.solutions / op_type / definition / f"{name}.json"

    def workload_file(self, op_type: str, definition: str) -> Path:
        return self.workloads / op_type / f"{definition}.jsonl"

    def trace_file(self, op_type: str, definition: str) -> Path:
        return self.traces / op_type / f"{definition}.jsonl"

    def blob_file(self, op_type: str, definition: str, uuid: str) -> Path:
        return self.blob / "workloads" / op_type / definition / f"{definition}_{uuid}.safetensors"

    def relative(self, path: Path) -> str:
        """``path`` relative to the root, with forward slashes (as records store it)."""
        return path.relative_to(self.root).as_posix()
