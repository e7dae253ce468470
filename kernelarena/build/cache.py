"""The build cache: built solutions in memory (per process) and their artifacts on disk (shared).

Disk layout, under the cache root (``$KERNELARENA_CACHE_DIR`` or ``~/.cache/kernelarena``)::

    build/<key>/src/            the solution's sources as written
    build/<key>/out/            the builder's artifacts (.so, object files, ninja files)
    build/<key>/build.log       the compiler's output
    build/<key>/manifest.json   what was built with what; its presence means the folder is complete
    build/<key>.lock            file lock held while <key> is being built

A build happens in a private folder ``build/.<key>.<pid>.<random>`` and is renamed to ``build/<key>`` only
when complete, under the key's lock: a reader sees either no folder or a whole one, and processes building
the same solution at once compile it once. The key hashes the solution's content hash, its spec, the builder,
the toolchain versions and the target device.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

from filelock import FileLock

from ..errors import BuildError
from ..schema import Solution
from .builder import Builder
from .runnable import Runnable
from .sources import write_sources
from .toolchain import BuildTarget, default_cache_root

# Bump when the layout of a build folder or a builder's artifacts changes: old entries are then ignored.
CACHE_FORMAT = 1
MANIFEST = "manifest.json"


def build_key(solution: Solution, builder: Builder, target: BuildTarget) -> str:
    """``<builder>-<hash>``: the hash covers sources, spec, builder, toolchain versions and target device."""
    payload = {
        "format": CACHE_FORMAT,
        "builder": builder.name,
        "solution": solution.content_hash(),
        "spec": solution.spec.model_dump(mode="json"),
        "toolchain": builder.toolchain(solution, target),
        "target": target.cache_tag,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f"{builder.name}-{digest[:32]}"


class BuildCache:
    """Built solutions in memory and on disk.

    ``root``: the cache folder; None reads ``$KERNELARENA_CACHE_DIR`` (else the user cache folder) at each
    build, so the process default cache follows the environment.
    """

    def __init__(self, root: Union[str, Path, None] = None):
        self._root = Path(root).expanduser() if root is not None else None
        self._memory: Dict[Tuple[str, str], Runnable] = {}
        self._guard = threading.Lock()
        self._key_locks: Dict[Tuple[str, str], threading.Lock] = {}

    @property
    def root(self) -> Path:
        return self._root if self._root is not None else default_cache_root()

    def clear_memory(self) -> None:
        """Forget the in-memory builds (disk artifacts stay): the next build loads from disk."""
        with self._guard:
            self._memory.clear()

    def build(self, solution: Solution, builder: Builder, target: BuildTarget) -> Runnable:
        """Return the built ``solution`` for ``target``: from memory, else from disk, else compiled now.

        Raises BuildError when the builder's dependencies are missing or the build fails.
        """
        key = build_key(solution, builder, target)
        slot = (str(self.root), key)
        with self._guard:
            hit = self._memory.get(slot)
            key_lock = self._key_locks.setdefault(slot, threading.Lock())
        if hit is not None:
            return hit.as_cached()
        with key_lock:
            hit = self._memory.get(slot)
            if hit is not None:
                return hit.as_cached()
            runnable = self._build_or_load(solution, builder, target, key)
            with self._guard:
                self._memory[slot] = runnable
            return runnable

    def _build_or_load(self, solution: Solution, builder: Builder, target: BuildTarget, key: str) -> Runnable:
        builds = self.root / "build"
        final = builds / key
        compiled = False
        if not (final / MANIFEST).is_file():
            builds.mkdir(parents=True, exist_ok=True)
            with FileLock(str(builds / f"{key}.lock")):
                if not (final / MANIFEST).is_file():
                    self._compile_into(final, solution, builder, target, key)
                    compiled = True
        log_file = final / "build.log"
        build_log = log_file.read_text() if log_file.is_file() else ""
        common = dict(
            solution=solution.name,
            destination_passing_style=solution.spec.destination_passing_style,
            build_dir=final,
            cache_key=key,
            from_cache=not compiled,
            target=target,
            build_log=build_log,
        )
        reason = builder.unavailable_reason(solution, target)
        if reason is not None:
            return Runnable(entry=None, unavailable_reason=reason, **common)
        entry = builder.load(solution, target, final / "src", final / "out", _module_name(key))
        return Runnable(entry=entry, **common)

    @staticmethod
    def _compile_into(final: Path, solution: Solution, builder: Builder, target: BuildTarget, key: str) -> None:
        builder.check_available(solution, target)
        staging = final.parent / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        try:
            (staging / "out").mkdir(parents=True)
            write_sources(solution, staging / "src")
            started = time.perf_counter()
            log = builder.compile(solution, target, staging / "src", staging / "out", _module_name(key))
            seconds = time.perf_counter() - started
            (staging / "build.log").write_text(log)
            manifest = {
                "key": key,
                "solution": solution.name,
                "definition": solution.definition,
                "content_hash": solution.content_hash(),
                "builder": builder.name,
                "toolchain": builder.toolchain(solution, target),
                "target": target.cache_tag,
                "build_seconds": round(seconds, 3),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
            if final.exists():  # a folder without manifest: left by a build that died mid-rename
                shutil.rmtree(final)
            os.rename(staging, final)
        except BuildError:
            raise
        except Exception as exc:
            raise BuildError(solution.name, f"build failed: {type(exc).__name__}: {exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _module_name(key: str) -> str:
    """A Python module name unique to the cache key."""
    return "kernelarena_built_" + key.replace("-", "_")


_default_cache: Optional[BuildCache] = None
_default_guard = threading.Lock()


def default_cache() -> BuildCache:
    """The process-wide cache ``build_solution`` uses when given none."""
    global _default_cache
    with _default_guard:
        if _default_cache is None:
            _default_cache = BuildCache()
        return _default_cache
