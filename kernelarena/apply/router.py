"""Router: the per-definition dispatch of one ApplyRuntime — the hot path and the first-seen-key path.

``Router.bind(fallback)`` returns the function an apply site calls with ``(args, kwargs)``. Its hot path,
once a key has been seen, is: arity check, key read (shapes, dtype, device of the key tensors), one dict
lookup, the call. Everything else (validating the call against the definition, looking the key up in the
table, building, adapting the calling convention) happens once per key in ``_resolve``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, Hashable, Optional, Protocol, Tuple

from ..errors import DispatchError
from .adapters import adapt
from .key import argument_device, key_positions, make_key_reader, merge_keywords, read_axes
from .table import DefinitionTable

logger = logging.getLogger("kernelarena.apply")

SiteDispatch = Callable[[tuple, dict], Any]


class _Fallback:
    """Marks a key whose calls go to the caller's fallback."""

    def __repr__(self) -> str:
        return "FALLBACK"


FALLBACK = _Fallback()


class RouterServices(Protocol):
    """What a router asks of its runtime (ApplyRuntime provides it): the config, built solutions,
    exclusions and once-only logging."""

    config: Any
    fallback_solutions: Any

    def runnable(self, solution: str, device: str) -> Optional[Any]: ...

    def exclude(self, solution: Optional[str], reason: str, error: Optional[BaseException] = None) -> None: ...

    def log_once(self, key: Hashable, level: int, message: str, *args, exc_info=None) -> None: ...


class Router:
    """Routes the calls of one definition for one runtime."""

    def __init__(self, runtime: RouterServices, table: DefinitionTable):
        self.runtime = runtime
        self.table = table
        self.definition = table.definition
        self.n_inputs = len(self.definition.inputs)
        self.n_arguments = self.n_inputs + len(self.definition.outputs)
        self.names = (*self.definition.inputs, *self.definition.outputs)
        self.read_key = make_key_reader(self.definition)
        # One cache per caller convention: the same shapes need a different adapter in each.
        self.value_entries: Dict[Hashable, Any] = {}
        self.dps_entries: Dict[Hashable, Any] = {}
        self.chosen: Dict[Tuple[bool, Hashable], Tuple[Optional[str], Tuple[int, ...], str]] = {}
        self._lock = threading.RLock()

    def bind(self, fallback: Optional[Callable[..., Any]]) -> SiteDispatch:
        """The dispatch function of a site whose fallback is ``fallback`` (None: a call that cannot be
        routed raises DispatchError)."""
        if fallback is None:
            fallback = self._no_fallback
        n_inputs, n_arguments = self.n_inputs, self.n_arguments
        value_entries, dps_entries = self.value_entries, self.dps_entries
        read_key, resolve, failed = self.read_key, self._resolve, self._failed
        route_keywords = self._route_keywords

        def dispatch(args, kwargs):
            if kwargs:
                return route_keywords(dispatch, args, kwargs, fallback)
            if len(args) == n_inputs:
                entries = value_entries
            elif len(args) == n_arguments:
                entries = dps_entries
            else:
                return fallback(*args)
            try:
                key = read_key(args)
            except (AttributeError, IndexError):
                return fallback(*args)
            entry = entries.get(key)
            if entry is None:
                entry = resolve(entries, key, args)
            if entry is FALLBACK:
                return fallback(*args)
            try:
                return entry(*args)
            except Exception as error:  # a bad kernel must not take the serving process down
                return failed(entries, key, error, fallback, args)

        return dispatch

    def fast_path(self) -> Optional[Tuple[Dict[int, dict], int]]:
        """``({argument count: key cache}, key argument position)`` for a site to read its cache directly (see
        ApplySite), or None when the key spans several tensors and only ``bind``'s dispatch reads it."""
        positions = key_positions(self.definition)
        if len(positions) != 1:
            return None
        return {self.n_inputs: self.value_entries, self.n_arguments: self.dps_entries}, positions[0]

    def choose(self, axes_key: Tuple[int, ...], device: str) -> Tuple[Optional[str], Optional[Any], str]:
        """``(solution, runnable, how)`` the table picks for a call with these variable-axis values on
        ``device``: the first candidate that builds and can run there; ``(None, None, how)`` means the
        fallback. For callers that decide once and call many times (a planned attention batch)."""
        route = self.table.lookup(tuple(axes_key))
        for name in route.candidates:
            if name in self.runtime.fallback_solutions:
                return None, None, f"{route.how}, {name} is the fallback"
            runnable = self.runtime.runnable(name, device)
            if runnable is not None:
                return name, runnable, route.how
        return None, None, route.how

    def failed(self, entries: dict, error: Exception, fallback, args: tuple) -> Any:
        """``_failed`` for a caller that did not keep the key."""
        return self._failed(entries, self.read_key(args), error, fallback, args)

    # ------------------------------------------------------------------ slow paths
    def _route_keywords(self, dispatch: SiteDispatch, args: tuple, kwargs: dict, fallback) -> Any:
        merged = merge_keywords(self.names, args, kwargs)
        if merged is None:
            return fallback(*args, **kwargs)
        # The fallback keeps the caller's own spelling of the call.
        return self.bind(lambda *_: fallback(*args, **kwargs))(merged, {})

    def _resolve(self, entries: dict, key: Hashable, args: tuple) -> Any:
        """Decide, once, what calls with this key run; remember it in ``entries``."""
        with self._lock:
            caller_dps = entries is self.dps_entries
            inputs = args[:self.n_inputs]
            entry, solution, axes_key, how = FALLBACK, None, (), "fallback"
            try:
                axes = read_axes(self.definition, inputs)
            except ValueError as e:
                self.runtime.log_once(("misfit", self.definition.name, key), logging.INFO,
                                      "%s; calls of this shape run the fallback", e)
            else:
                axes_key = tuple(axes[a] for a in self.definition.var_axes)
                route = self.table.lookup(axes_key)
                how = route.how
                device = self.runtime.config.device or argument_device(self.definition, inputs)
                out_device = next((a.device for a in inputs if hasattr(a, "device")), device)
                for name in route.candidates:
                    if name in self.runtime.fallback_solutions:
                        how = f"{how}, {name} is the fallback"
                        break
                    runnable = self.runtime.runnable(name, device)
                    if runnable is None:
                        continue
                    # Runnable.entry is the solution's own function: calling it skips a forwarding frame.
                    entry = adapt(getattr(runnable, "entry", runnable), runnable.destination_passing_style,
                                  caller_dps, self.definition, axes, out_device)
                    solution = name
                    break
            if len(entries) >= self.runtime.config.max_cached_keys:
                entries.clear()
                self.chosen = {k: v for k, v in self.chosen.items() if k[0] != caller_dps}
            entries[key] = entry
            self.chosen[(caller_dps, key)] = (solution, axes_key, how)
            return entry

    def _failed(self, entries: dict, key: Hashable, error: Exception, fallback, args: tuple) -> Any:
        """A solution raised: log it once, exclude it everywhere, and answer this call with the fallback.

        Only the key tensors are checked per call, so first make sure the call fits the definition: one that
        does not (a weight of the wrong size, say) is the caller's mistake, not the kernel's, and only goes to
        the fallback, which answers it as it would without apply."""
        try:
            read_axes(self.definition, args[:self.n_inputs])
        except ValueError:
            return fallback(*args)
        solution = self.chosen.get((entries is self.dps_entries, key), (None,))[0]
        self.runtime.exclude(solution, f"raised {type(error).__name__} on {self.definition.name}", error)
        return fallback(*args)

    def forget(self) -> None:
        """Drop every remembered key (after an exclusion), so that the next calls choose again."""
        with self._lock:
            self.value_entries.clear()
            self.dps_entries.clear()
            self.chosen.clear()

    def _no_fallback(self, *args, **kwargs):
        raise DispatchError(f"definition {self.definition.name}: no solution for this call and no fallback "
                            "given")

    def routes(self) -> Dict[Tuple[int, ...], Optional[str]]:
        """Axis key -> solution chosen (None: the fallback), for keys seen so far."""
        return {axes_key: solution for solution, axes_key, _ in self.chosen.values()}
