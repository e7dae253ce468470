"""Integrations: patches that route other libraries' kernel calls through apply().

Each integration is a module here with ``install()`` / ``uninstall()``; it registers with apply's hooks and
apply never imports it. ``KERNELARENA_INTEGRATIONS`` (comma-separated names, e.g. ``flashinfer``) installs
the named integrations when kernelarena is imported; with ``KERNELARENA_APPLY`` naming a dataset, an
unmodified process that imports kernelarena (or runs the startup file of ``startup.py``) is switched over.
"""

from __future__ import annotations

import importlib
import logging

from .. import env
from ..apply.api import INTEGRATIONS_ENV

logger = logging.getLogger("kernelarena.integrations")

KNOWN = {"flashinfer": "kernelarena.integrations.flashinfer"}
"""Integration name -> module providing install()/uninstall()."""


def install_from_environment(environ=None) -> list:
    """Install every integration ``KERNELARENA_INTEGRATIONS`` names; returns the names installed. An unknown
    name or a failed install is logged, never raised: the process did not ask for us."""
    environ = env.environment() if environ is None else environ
    installed = []
    for name in filter(None, (part.strip() for part in environ.get(INTEGRATIONS_ENV, "").split(","))):
        if name not in KNOWN:
            logger.error("integrations: %s names %r; known: %s", INTEGRATIONS_ENV, name, sorted(KNOWN))
            continue
        try:
            importlib.import_module(KNOWN[name]).install()
            installed.append(name)
        except Exception:
            logger.exception("integrations: cannot install %s (from %s)", name, INTEGRATIONS_ENV)
    return installed
