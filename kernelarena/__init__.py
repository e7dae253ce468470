"""kernelarena: LLM-inference kernels as interchangeable, verified, benchmarked parts.

The public surface is small; everything else is importable from its module.
"""

from .apply import apply, disable_apply, enable_apply
from .integrations import install_from_environment as _install_integrations
from .schema import Definition, Solution, Trace, Workload
from .store import TraceSet
from .tracing import disable_tracing, enable_tracing
from .version import __version__

__all__ = ["Definition", "Solution", "Trace", "TraceSet", "Workload", "__version__", "apply", "disable_apply",
           "disable_tracing", "enable_apply", "enable_tracing"]

_install_integrations()  # KERNELARENA_INTEGRATIONS: switch an unmodified process over (kernelarena.integrations)
