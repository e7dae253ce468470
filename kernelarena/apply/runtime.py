"""ApplyRuntime: one enabled dataset — its dispatch table, built solutions, exclusions and routers."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, Hashable, Optional, Set, Tuple

from ..store import TraceSet
from .config import ApplyConfig
from .router import Router
from .table import DispatchTable

logger = logging.getLogger("kernelarena.apply")


class ApplyRuntime:
    """The state behind enable_apply(): created once per enable, read by every routed call.

    Use it as a context manager to disable apply on exit. ``routes(definition)`` tells which solution each
    key seen so far runs (None: the fallback). ``on_exit(runtime)`` is what leaving the context does
    (enable_apply passes disable_apply).
    """

    def __init__(self, traceset: TraceSet, config: ApplyConfig = ApplyConfig(), *,
                 on_exit: Optional[Callable[["ApplyRuntime"], None]] = None):
        self.traceset = traceset
        self._on_exit = on_exit
        self.config = config
        self.table = DispatchTable.build(traceset, config)
        self._routers: Dict[str, Router] = {}
        self._runnables: Dict[Tuple[str, str], Any] = {}
        self.excluded: Set[str] = set()
        self.fallback_solutions: Set[str] = set()
        """Solutions that, when the table picks them, mean "run the caller's fallback" (see treat_as_fallback)."""
        self._logged: Set[Hashable] = set()
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "ApplyRuntime":
        return self

    def __exit__(self, *exc) -> None:
        if self._on_exit is not None:
            self._on_exit(self)

    def warmup(self, device: Optional[str] = None) -> Dict[str, bool]:
        """Build every solution the table can choose, for ``device`` (default: the config's, else "cuda" when
        available, else "cpu"). Returns solution -> usable; failures are logged and excluded."""
        if device is None:
            device = self.config.device or _default_device()
        return {name: self.runnable(name, device) is not None
                for table in self.table.tables.values() for name in table.solutions()}

    # ------------------------------------------------------------------ used by routers (slow paths)
    def router(self, definition: str) -> Optional[Router]:
        """The router of ``definition``; None when the dataset lacks it (calls run the fallback)."""
        with self._lock:
            router = self._routers.get(definition)
            if router is None:
                table = self.table.get(definition)
                if table is None:
                    self.log_once(("unknown", definition), logging.WARNING,
                                  "apply: definition %r is not in the dataset %s; its calls run the fallback",
                                  definition, self.traceset.root)
                    return None
                router = self._routers[definition] = Router(self, table)
            return router

    def runnable(self, solution: str, device: str) -> Optional[Any]:
        """The built solution for ``device``, building it on first use; None when it is excluded, fails to
        build, or cannot run on ``device`` (each logged once)."""
        # Built already: no lock (an integration asks once per planned batch). A solution excluded meanwhile is
        # in ``excluded`` before anything reads its slot again.
        slot = (solution, device)
        if solution not in self.excluded and slot in self._runnables:
            return self._runnables[slot]
        with self._lock:
            slot = (solution, device)
            if solution in self.excluded:
                return None
            if slot in self._runnables:
                return self._runnables[slot]
            record = self.traceset.solutions.get(solution)
            runnable = None
            if record is None:
                self.exclude(solution, "is not in the dataset")
            else:
                from ..build import build_solution

                try:
                    runnable = build_solution(record, device=device)
                except Exception as error:  # BuildError, or a builder's own bug: never fatal while serving
                    self.exclude(solution, f"failed to build for {device}", error)
                    return None
                if not runnable.can_run_on(device):
                    self.log_once(("device", solution, device), logging.INFO,
                                  "apply: solution %s cannot run on %s; skipped there", solution, device)
                    runnable = None
            self._runnables[slot] = runnable
            return runnable

    def exclude(self, solution: Optional[str], reason: str, error: Optional[BaseException] = None) -> None:
        """Stop using ``solution`` for the rest of this runtime; logged once, with the error's traceback."""
        if solution is None:
            return
        with self._lock:
            self.excluded.add(solution)
            self.log_once(("excluded", solution), logging.ERROR,
                          "apply: solution %s %s; excluded, its calls now run the next candidate or the fallback",
                          solution, reason, exc_info=error)
            for router in self._routers.values():
                router.forget()

    def treat_as_fallback(self, solutions) -> None:
        """When the table picks one of ``solutions``, run the caller's fallback instead: an integration whose
        fallback *is* that solution (FlashInfer's own function, patched) would otherwise route into itself.
        Keys already resolved are resolved again."""
        with self._lock:
            self.fallback_solutions.update(solutions)
            for router in self._routers.values():
                router.forget()

    def log_once(self, key: Hashable, level: int, message: str, *args, exc_info=None) -> None:
        if key in self._logged:
            return
        self._logged.add(key)
        logger.log(level, message, *args, exc_info=exc_info)

    # ------------------------------------------------------------------ introspection
    def routes(self, definition: str) -> Dict[Tuple[int, ...], Optional[str]]:
        """Variable-axis key -> solution chosen (None: fallback) for the keys ``definition`` has seen."""
        router = self._routers.get(definition)
        return router.routes() if router else {}


def _default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"
