"""One entry point for ``kernelarena report``: add trace files to a dataset, render HTML or Markdown, write it."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Optional, Union

from ..errors import KernelArenaError
from ..store import TraceSet

FORMATS = ("html", "md")


def render_report(dataset: TraceSet, fmt: str = "html", trace_files: Iterable[Union[str, Path]] = (),
                  definitions: Optional[List[str]] = None, title: Optional[str] = None) -> str:
    """The report of ``dataset`` plus the traces in ``trace_files`` (JSONL, e.g. a GPU run's results kept
    outside the dataset) as a string. Invalid records are skipped and counted in a note at the top.

    Raises KernelArenaError for an unknown format, DatasetError for a missing trace file, KeyError for an
    unknown definition.
    """
    if fmt not in FORMATS:
        raise KernelArenaError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    for file in trace_files:
        dataset.read_trace_file(file)
    notes = []
    if dataset.problems:
        first = dataset.problems[0]
        notes.append(f"{len(dataset.problems)} invalid records skipped (first: {first}); "
                     "kernelarena validate lists them all.")
    if fmt == "md":
        from .markdown import render_markdown

        return render_markdown(dataset, title, definitions, notes)
    from .html import render_html

    return render_html(dataset, title, definitions, notes)


def write_report(text: str, path: Union[str, Path]) -> Path:
    """Write a rendered report to ``path`` (its folder is created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
