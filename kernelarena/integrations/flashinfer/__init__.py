"""Route FlashInfer's Python API through kernelarena's apply(): norms and batch attention wrappers.

    from kernelarena.integrations import flashinfer as ka_flashinfer
    ka_flashinfer.install("examples/dataset")    # or install() to use what KERNELARENA_APPLY enabled
    ...                                          # flashinfer.norm.rmsnorm, wrappers' plan/run now routed
    ka_flashinfer.uninstall()                    # FlashInfer's originals back, exactly
    with ka_flashinfer.installed("examples/dataset"): ...

Patched: ``flashinfer.norm.rmsnorm``, ``fused_add_rmsnorm``, ``gemma_rmsnorm``, ``gemma_fused_add_rmsnorm``
(in ``flashinfer.norm`` and re-exported at ``flashinfer``), and ``plan``/``run`` (and ``__init__``, so a
wrapper can be built where FlashInfer itself cannot set up, such as a CPU) of
``BatchDecodeWithPagedKVCacheWrapper``, ``BatchPrefillWithPagedKVCacheWrapper`` and
``BatchPrefillWithRaggedKVCacheWrapper``. Patch before the serving code does ``from flashinfer import
rmsnorm`` (a name bound earlier keeps the original); the wrapper classes are patched in place, so wrappers
work whenever they were made. See norms.py and attention.py for what is routed and what runs the original.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import Iterator, Optional, Union

from ...apply import ApplyRuntime, current_runtime, disable_apply, enable_apply, hooks
from ...store import TraceSet
from .attention import KINDS, patch_wrapper, routed_solution
from .norms import routed_fused_add_rmsnorm, routed_rmsnorm
from .patching import PatchSet
from .support import logged_reasons

logger = logging.getLogger("kernelarena.integrations.flashinfer")

NORMS = {"rmsnorm": routed_rmsnorm, "gemma_rmsnorm": routed_rmsnorm,
         "fused_add_rmsnorm": routed_fused_add_rmsnorm, "gemma_fused_add_rmsnorm": routed_fused_add_rmsnorm}
"""flashinfer.norm function -> the maker of its routed drop-in (given the original and the name)."""

_lock = threading.Lock()
_patches: Optional[PatchSet] = None
_runtime: Optional[ApplyRuntime] = None

__all__ = ["install", "installed", "is_installed", "logged_reasons", "routed_solution", "uninstall"]


def install(dataset: Union[str, Path, TraceSet, None] = None, **enable_options) -> None:
    """Patch FlashInfer so its calls route through apply().

    ``dataset``: a folder or a loaded TraceSet, enabled now with ``enable_apply(dataset, **enable_options)``
    (and disabled by uninstall()); None uses whatever apply uses (enable_apply, or KERNELARENA_APPLY). Calling
    install() again while installed changes nothing but the dataset (idempotent). Raises ImportError when
    flashinfer is not installed.
    """
    global _patches, _runtime
    import flashinfer
    import flashinfer.norm

    with _lock:
        if dataset is not None:
            if _runtime is not None:
                disable_apply(_runtime)
            _runtime = enable_apply(dataset, **enable_options)
        if _patches is not None:
            return
        patches = PatchSet()
        for name, make in NORMS.items():
            original = flashinfer.norm.__dict__.get(name)
            if original is None:
                continue
            routed = make(original, name)
            patches.replace(flashinfer.norm, name, routed)
            if flashinfer.__dict__.get(name) is original:
                patches.replace(flashinfer, name, routed)
        for class_name, kind in KINDS.items():
            cls = getattr(flashinfer, class_name, None)
            if cls is not None:
                patch_wrapper(patches, cls, kind)
        _patches = patches
    _flashinfer_solutions_are_the_fallback(current_runtime())
    logger.info("flashinfer integration installed (flashinfer %s)", getattr(flashinfer, "__version__", "?"))


@hooks.on_change
def _flashinfer_solutions_are_the_fallback(runtime: Optional[ApplyRuntime]) -> None:
    """While installed, a solution that calls FlashInfer itself is what the patched function's fallback
    already is; routing to it would call the patched function again. Such picks run the fallback."""
    if runtime is None or _patches is None:
        return
    runtime.treat_as_fallback(name for name, solution in runtime.traceset.solutions.items()
                              if "flashinfer" in (solution.spec.dependencies or ()))


def uninstall() -> None:
    """Restore FlashInfer's originals and disable the dataset install() enabled; a no-op when not installed.
    A wrapper planned while installed must be planned again before its next run()."""
    global _patches, _runtime
    with _lock:
        if _patches is not None:
            _patches.restore()
            _patches = None
        if _runtime is not None:
            disable_apply(_runtime)
            _runtime = None


def is_installed() -> bool:
    return _patches is not None


@contextlib.contextmanager
def installed(dataset: Union[str, Path, TraceSet, None] = None, **enable_options) -> Iterator[None]:
    """install() for the duration of a ``with`` block, then uninstall()."""
    install(dataset, **enable_options)
    try:
        yield
    finally:
        uninstall()
