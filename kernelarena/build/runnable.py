"""Runnable: a built solution, callable like its entry function."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from ..errors import UnsupportedError
from .toolchain import BuildTarget


class Runnable:
    """A built solution. ``runnable(*args)`` calls the entry function.

    Attributes: ``solution`` (name), ``destination_passing_style``, ``build_dir`` (the per-solution build
    folder), ``cache_key``, ``from_cache`` (True when nothing was compiled for this object), ``target`` (the
    BuildTarget it was built for), ``build_log`` (compiler output, possibly empty), ``unavailable_reason``
    (None when it can run on its target; else why not, e.g. a CUDA solution built on a CPU-only machine).
    """

    def __init__(
        self,
        *,
        solution: str,
        entry: Optional[Callable[..., Any]],
        destination_passing_style: bool,
        build_dir: Path,
        cache_key: str,
        from_cache: bool,
        target: BuildTarget,
        build_log: str = "",
        unavailable_reason: Optional[str] = None,
    ):
        if (entry is None) == (unavailable_reason is None):
            raise ValueError("a Runnable has either an entry function or a reason it cannot run, not both")
        self.solution = solution
        self.destination_passing_style = destination_passing_style
        self.build_dir = build_dir
        self.cache_key = cache_key
        self.from_cache = from_cache
        self.target = target
        self.build_log = build_log
        self.unavailable_reason = unavailable_reason
        self.entry: Callable[..., Any] = entry if entry is not None else self._refuse
        """The entry function itself; a timing loop may call it to skip the one forwarding frame."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.entry(*args, **kwargs)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise UnsupportedError(f"solution '{self.solution}': {self.unavailable_reason}")

    def can_run_on(self, device: str) -> bool:
        """True when this build can be called with tensors on ``device`` ("cpu", "cuda", "cuda:N")."""
        if self.unavailable_reason is not None:
            return False
        import torch

        dev = torch.device(device)
        if not self.target.is_cuda:
            return dev.type == "cpu"
        if dev.type != "cuda" or not torch.cuda.is_available():
            return False
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            return False
        return tuple(torch.cuda.get_device_capability(index)) == self.target.capability

    def as_cached(self) -> "Runnable":
        """The same build, marked ``from_cache=True`` (what a memory-cache hit returns)."""
        return Runnable(
            solution=self.solution,
            entry=None if self.unavailable_reason is not None else self.entry,
            destination_passing_style=self.destination_passing_style,
            build_dir=self.build_dir,
            cache_key=self.cache_key,
            from_cache=True,
            target=self.target,
            build_log=self.build_log,
            unavailable_reason=self.unavailable_reason,
        )

    def __repr__(self) -> str:
        state = "cached" if self.from_cache else "built"
        where = self.target.device if self.unavailable_reason is None else "nowhere here"
        return f"Runnable({self.solution!r}, {state}, runs on {where}, key={self.cache_key})"
