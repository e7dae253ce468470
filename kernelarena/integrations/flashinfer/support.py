"""Why a FlashInfer call stays on FlashInfer: reasons are checked per call cheaply and logged once each."""

from __future__ import annotations

import logging
from typing import Hashable, Set

logger = logging.getLogger("kernelarena.integrations.flashinfer")

_logged: Set[Hashable] = set()


def run_original(api: str, reason: str) -> None:
    """Log, once per (api, reason), that calls of ``api`` run FlashInfer's own code because of ``reason``."""
    key = (api, reason)
    if key not in _logged:
        _logged.add(key)
        logger.info("flashinfer integration: %s runs FlashInfer's original: %s", api, reason)


def logged_reasons() -> Set[Hashable]:
    """The (api, reason) pairs logged so far (for tests and diagnostics)."""
    return set(_logged)


def forget_reasons() -> None:
    _logged.clear()
