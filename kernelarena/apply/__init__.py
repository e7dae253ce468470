"""apply(): route calls of a definition to its fastest verified solution, per argument shape.

Public: apply, enable_apply, disable_apply, ApplyConfig, RoutingPolicy, DispatchTable. See docs/apply.md.
"""

from .api import apply, current_runtime, disable_apply, enable_apply
from .config import ApplyConfig, RoutingPolicy
from .runtime import ApplyRuntime
from .table import DispatchTable

__all__ = ["ApplyConfig", "ApplyRuntime", "DispatchTable", "RoutingPolicy", "apply", "current_runtime",
           "disable_apply", "enable_apply"]
