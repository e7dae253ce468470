"""Hook points for the floors above apply: tracing and integrations register here when they are imported.

apply never imports them. A hook is a plain callable kept in a list, run in registration order:

- ``on_startup(callback)``: ``callback(environ)`` runs once per process, when apply first reads its
  environment (the first routed call, or enable_apply); tracing starts itself from KERNELARENA_TRACE there.
- ``on_change(callback)``: ``callback(runtime)`` runs after apply is enabled or disabled (``runtime`` is the
  one now routing, or None), so that a layer holding decisions made from the old table (an integration's
  planned attention call) can drop them.

A hook that raises is logged and skipped: the process it runs in did not ask for us.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, List, Mapping, Optional

logger = logging.getLogger("kernelarena.apply")

StartupHook = Callable[[Mapping[str, str]], None]
ChangeHook = Callable[[Optional[Any]], None]

_startup: List[StartupHook] = []
_change: List[ChangeHook] = []


def on_startup(callback: StartupHook) -> StartupHook:
    """Run ``callback(os.environ)`` when apply reads its environment (once per process). Registering twice
    is a no-op. Returns the callback, so it can decorate."""
    if callback not in _startup:
        _startup.append(callback)
    return callback


def on_change(callback: ChangeHook) -> ChangeHook:
    """Run ``callback(current_runtime)`` after every enable_apply / disable_apply. Registering twice is a
    no-op. Returns the callback."""
    if callback not in _change:
        _change.append(callback)
    return callback


def remove(callback: Callable[..., Any]) -> None:
    """Unregister ``callback`` from every hook list (no error when absent)."""
    for hooks in (_startup, _change):
        if callback in hooks:
            hooks.remove(callback)


def run_startup(environ: Mapping[str, str]) -> None:
    for callback in list(_startup):
        _run(callback, environ)


def run_change(runtime: Optional[Any]) -> None:
    for callback in list(_change):
        _run(callback, runtime)


def _run(callback: Callable[..., Any], argument: Any) -> None:
    try:
        callback(argument)
    except Exception:
        logger.exception("apply: hook %r failed; continuing without it", callback)
