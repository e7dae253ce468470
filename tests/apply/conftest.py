"""Each apply test starts with apply off and a build cache of its own."""

from __future__ import annotations

import pytest

from kernelarena.apply import api


@pytest.fixture(autouse=True)
def apply_off(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNELARENA_CACHE_DIR", str(tmp_path / "build-cache"))
    monkeypatch.delenv(api.APPLY_ENV, raising=False)
    monkeypatch.delenv(api.TRACE_ENV, raising=False)
    yield
    while api.current_runtime() is not None:
        api.disable_apply()
    api.set_observer(None)
