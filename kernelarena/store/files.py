"""Crash-safe file primitives: atomic JSON writes, locked JSONL appends, and reads that name file and line."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Tuple

from filelock import FileLock

from ..errors import DatasetError


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a torn one.

    The text goes to a temporary file in the same folder, is flushed to disk, then renamed over ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def lock_for(path: Path) -> FileLock:
    """The inter-process lock guarding ``path``: a hidden ``.<name>.lock`` file beside it, which stays
    (removing a lock file while another process waits on it would let two writers in)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path.with_name(f".{path.name}.lock")))


def append_lines(path: Path, lines: Iterable[str]) -> None:
    """Append JSONL ``lines`` under the file's lock, each on its own line, flushed to disk before returning.

    Several processes may append to one file at once: the lock serializes them, and a file whose last line
    lacks its newline (a writer that crashed mid-line) gets one first, so the torn line stays alone and
    every later record stays readable.
    """
    payload = "".join(line.rstrip("\n") + "\n" for line in lines)
    if not payload:
        return
    with lock_for(path):
        with open(path, "a+b") as f:
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    payload = "\n" + payload
            f.write(payload.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())


def read_json(path: Path) -> dict:
    """Parse a JSON file; DatasetError naming the file and line when it is not valid JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read: {e}", file=path) from e
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetError(f"malformed JSON: {e.msg} (column {e.colno})", file=path, line=e.lineno) from e
    if not isinstance(value, dict):
        raise DatasetError("expected a JSON object at the top level", file=path)
    return value


def ends_without_newline(path: Path) -> int:
    """The number of the last line of ``path`` when the file does not end with a newline (a write that
    stopped mid-line), else 0."""
    try:
        data = path.read_bytes()
    except OSError:
        return 0
    if not data or data.endswith(b"\n"):
        return 0
    return data.count(b"\n") + 1


def iter_jsonl(path: Path) -> Iterator[Tuple[int, object]]:
    """Yield ``(line_number, parsed object or DatasetError)`` for each non-empty line of a JSONL file.

    A bad line is yielded as a DatasetError (not raised) so that a caller can keep the good lines.
    """
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as e:
                    yield number, DatasetError(f"malformed JSON line: {e.msg}", file=path, line=number)
                    continue
                if not isinstance(value, dict):
                    yield number, DatasetError("expected a JSON object", file=path, line=number)
                    continue
                yield number, value
    except (OSError, UnicodeDecodeError) as e:
        yield 0, DatasetError(f"cannot read: {e}", file=path)
