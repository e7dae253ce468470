"""Writing a solution's sources into its build folder, and loading a folder of Python as a package."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import List, Set

from ..errors import BuildError
from ..schema import Solution

# sys.path and sys.modules are process-wide: one solution imports at a time.
_import_lock = threading.RLock()


def write_sources(solution: Solution, src_dir: Path) -> List[Path]:
    """Write every source file of ``solution`` under ``src_dir``; return their paths.

    Raises BuildError for a path that would land outside ``src_dir`` (the schema rejects those too; this is
    the second fence, since the build folder is where files get written).
    """
    root = src_dir.resolve()
    written = []
    for source in solution.sources:
        target = (root / source.path).resolve()
        if target == root or root not in target.parents:
            raise BuildError(solution.name, f"source path {source.path!r} leaves the build folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.content)
        written.append(target)
    return written


def import_entry(solution: Solution, src_dir: Path, package: str) -> ModuleType:
    """Import ``src_dir`` as the package ``package`` and return the entry file's module.

    The entry file can import its siblings relatively (``from .kernels import k``), and, as in
    FlashInfer-Bench, absolutely (``import kernels``): ``src_dir`` is on sys.path while the entry module is
    imported. Those absolute imports are then taken out of sys.modules, so another solution with a file of
    the same name gets its own. Raises BuildError with the traceback when the import fails.
    """
    entry = PurePosixPath(solution.entry_file)
    if entry.suffix != ".py":
        raise BuildError(solution.name, f"entry file {solution.entry_file!r} is not a Python file")
    module_name = ".".join((package, *entry.with_suffix("").parts))
    with _import_lock:
        _create_package(package, src_dir)
        shadowed = _top_level_names(solution)
        saved = {name: mod for name, mod in sys.modules.items() if _under(name, shadowed)}
        for name in saved:
            del sys.modules[name]
        sys.path.insert(0, str(src_dir))
        try:
            return importlib.import_module(module_name)
        except (Exception, SystemExit) as exc:
            for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
                del sys.modules[name]
            raise BuildError(solution.name, f"importing {solution.entry_file} failed: {exc!r}",
                             log=_format_traceback(exc)) from exc
        finally:
            if str(src_dir) in sys.path:  # the solution's own code may have taken it out already
                sys.path.remove(str(src_dir))
            for name in [n for n in sys.modules if _under(n, shadowed)]:
                del sys.modules[name]
            sys.modules.update(saved)


def entry_function(solution: Solution, module: ModuleType):
    """The entry symbol of ``module``; BuildError when it is missing or not callable."""
    symbol = solution.entry_symbol
    fn = getattr(module, symbol, None)
    if fn is None:
        raise BuildError(solution.name, f"{solution.entry_file} defines no {symbol!r}")
    if not callable(fn):
        raise BuildError(solution.name, f"{solution.entry_file}::{symbol} is not callable")
    return fn


def _create_package(package: str, src_dir: Path) -> None:
    init = src_dir / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(package, init, submodule_search_locations=[str(src_dir)])
    else:
        spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
        spec.submodule_search_locations = [str(src_dir)]
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module
    if spec.loader is not None:
        spec.loader.exec_module(module)


def _top_level_names(solution: Solution) -> Set[str]:
    """Names a plain ``import x`` of one of the solution's files would bind: ``x.py`` -> x, ``x/...`` -> x."""
    names = set()
    for source in solution.sources:
        parts = PurePosixPath(source.path).parts
        first = parts[0] if len(parts) > 1 else PurePosixPath(parts[0]).stem
        if first.isidentifier():
            names.add(first)
    return names


def _under(module_name: str, roots: Set[str]) -> bool:
    return module_name.split(".", 1)[0] in roots


def _format_traceback(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
