"""kernelarena: LLM-inference kernels as interchangeable, verified, benchmarked parts.

The public surface is small; everything else is importable from its module.
"""

from .schema import Definition, Solution, Trace, Workload
from .store import TraceSet

__version__ = "0.1.0"

__all__ = ["Definition", "Solution", "Trace", "TraceSet", "Workload", "__version__"]
