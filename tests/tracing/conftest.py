"""Each tracing test starts with apply and tracing off and a build cache of its own."""

from tests.apply.conftest import apply_off  # noqa: F401
