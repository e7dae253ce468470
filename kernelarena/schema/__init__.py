"""The FlashInfer-Trace record types: Definition, Solution, Workload, Trace. Imports nothing of ours."""

from .base import Record
from .constraints import ConstraintError, evaluate_constraint
from .definition import AxisConst, AxisVar, Definition, DType, EvaluatorSpec, Roofline, TensorSpec, Tolerance
from .dtypes import dtype_name, torch_dtype
from .solution import Binding, BuildSpec, Language, Solution, SourceFile
from .trace import Correctness, Environment, Evaluation, Performance, SpeedOfLight, Status, TimingStats, Trace
from .workload import InputSpec, RandomInput, SafetensorsInput, ScalarInput, Workload

__all__ = [
    "AxisConst", "AxisVar", "Binding", "BuildSpec", "ConstraintError", "Correctness", "Definition", "DType",
    "Environment", "Evaluation", "EvaluatorSpec", "InputSpec", "Language", "Performance", "RandomInput", "Record",
    "Roofline", "SafetensorsInput", "ScalarInput", "Solution", "SpeedOfLight", "SourceFile", "Status", "TensorSpec",
    "TimingStats",
    "Tolerance", "Trace", "Workload", "dtype_name", "evaluate_constraint", "torch_dtype",
]
