"""Definition: what a kernel computes — named axes, typed inputs and outputs, and a PyTorch reference."""

from __future__ import annotations

import ast
from enum import Enum
from functools import cached_property
from typing import Annotated, Any, Dict, List, Literal, Mapping, Optional, Sequence, Union

from pydantic import Field, model_validator

from .base import NonEmptyString, NonNegativeInt, Record, SafeName
from .constraints import ConstraintError, constraint_names, evaluate_constraint


class DType(str, Enum):
    """Element types a tensor may have (the FlashInfer-Trace names)."""

    FLOAT32 = "float32"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"
    FLOAT8_E4M3FN = "float8_e4m3fn"
    FLOAT8_E5M2 = "float8_e5m2"
    FLOAT4_E2M1 = "float4_e2m1"
    INT64 = "int64"
    INT32 = "int32"
    INT16 = "int16"
    INT8 = "int8"
    BOOL = "bool"


class AxisConst(Record):
    """An axis whose size is fixed by the definition (a hidden size, a head count)."""

    type: Literal["const"] = "const"
    value: NonNegativeInt
    """The fixed size."""
    description: Optional[str] = None


class AxisVar(Record):
    """An axis whose size each workload chooses (a batch size, a sequence length)."""

    type: Literal["var"] = "var"
    description: Optional[str] = None


class TensorSpec(Record):
    """One input or output: its shape as axis names (``None`` for a Python scalar, ``[]`` for 0-d) and dtype."""

    shape: Optional[List[NonEmptyString]]
    dtype: DType
    description: Optional[str] = None


Axis = Annotated[Union[AxisConst, AxisVar], Field(discriminator="type")]


class Tolerance(Record):
    """Correctness tolerance: an element passes when ``|out - ref| <= atol + rtol * |ref|``. (kernelarena)"""

    atol: float = Field(ge=0)
    rtol: float = Field(ge=0)


class EvaluatorSpec(Record):
    """How outputs are judged (kernelarena; FlashInfer-Bench ignores it). ``kind``:

    - ``default``: every element within the tolerance;
    - ``lowbit``: at least ``required_matched_ratio`` of the elements within the tolerance (quantized kernels);
    - ``sampling``: outputs are random draws; many draws are compared with the distribution the reference
      defines (total variation distance over ``bins`` equal-mass bins), wrongly failing a correct sampler with
      probability at most ``false_failure_rate``; every draw must lie where that distribution is non-zero.
    Unset fields take the evaluator's defaults.
    """

    kind: Literal["default", "lowbit", "sampling"] = "default"
    required_matched_ratio: Optional[float] = Field(default=None, gt=0, le=1)
    draws: Optional[int] = Field(default=None, ge=100)
    """Sampling: draws per batch row (default 10000 on a GPU, 200 on the CPU)."""
    bins: Optional[int] = Field(default=None, ge=2)
    false_failure_rate: Optional[float] = Field(default=None, gt=0, lt=1)


class Roofline(Record):
    """What one call must move and compute, as expressions over the axes (kernelarena; FlashInfer-Bench ignores
    it). Either may be left out: ``bytes`` then defaults to the sizes of all inputs and outputs, ``flops`` to 0
    (a memory-bound op). Used for speed of light: the least time the device's measured ceilings allow. Both must
    be lower bounds, what every correct implementation moves and computes (a gather touches only the rows it
    indexes; an MoE may route to no local expert): a latency under the bound fails as impossible."""

    bytes: Optional[NonEmptyString] = None
    """Bytes read plus written by one call, e.g. ``"2 * batch_size * hidden_size * 2"``."""
    flops: Optional[NonEmptyString] = None
    """Floating-point operations of one call, e.g. ``"2 * m * n * k"``."""


class Definition(Record):
    """A kernel's contract. ``reference`` is Python source defining ``run(*inputs) -> outputs``.

    The reference may also define ``make_inputs(axes, device, generator) -> dict`` to build inputs that random
    data would make invalid (sorted index pointers, page indices, lengths that must match axes); inputs it
    does not return are drawn at random. ``tolerance`` (ours; FlashInfer-Bench ignores it) overrides the
    per-dtype default of the correctness check.
    """

    name: SafeName
    op_type: SafeName
    """Category of the operation (rmsnorm, gqa_paged, gemm, ...); also the dataset sub-folder."""
    axes: Dict[NonEmptyString, Axis]
    inputs: Dict[NonEmptyString, TensorSpec]
    outputs: Dict[NonEmptyString, TensorSpec]
    reference: NonEmptyString
    tags: List[NonEmptyString] = Field(default_factory=list)
    description: Optional[str] = None
    constraints: List[NonEmptyString] = Field(default_factory=list)
    """Python expressions every workload must satisfy: over axis values alone (checked from the workload), or
    over input tensors too, e.g. ``num_kv_indices == kv_indptr[-1].item()`` (checked on the actual inputs)."""
    tolerance: Optional[Tolerance] = None
    roofline: Optional[Roofline] = None
    """Bytes and flops per call for speed of light (kernelarena; see Roofline)."""
    evaluator: Optional[EvaluatorSpec] = None
    """How outputs are judged (kernelarena; see EvaluatorSpec); unset: chosen by op_type."""
    plan_inputs: Optional[List[NonEmptyString]] = None
    """Inputs a solution's plan step may read (page tables, index pointers; kernelarena, FlashInfer-Bench ignores
    it). The correctness check refills every other input with fresh values between plan and run."""
    timing: Optional[Literal["cold", "events", "warm", "graph"]] = None
    """How calls are timed (kernelarena): "cold" L2 (the default; CUPTI device time), "events" (cold L2, CUDA
    events), "warm", or "graph" (CUDA-graph replay, for calls whose device work is shorter than their launches).
    A run's explicit timing mode overrides it."""

    @model_validator(mode="after")
    def _check(self) -> "Definition":
        for axis in self.axes:
            if not axis.isidentifier():
                raise ValueError(f"axes: axis name {axis!r} is not an identifier")
        overlap = set(self.inputs) & set(self.outputs)
        if overlap:
            raise ValueError(f"inputs and outputs share the names {sorted(overlap)}")
        for kind, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            for tensor, spec in tensors.items():
                for axis in spec.shape or []:
                    if axis not in self.axes:
                        raise ValueError(f"{kind}.{tensor}.shape: axis {axis!r} is not declared in axes")
        try:
            module = ast.parse(self.reference)
        except SyntaxError as e:
            raise ValueError(f"reference: not valid Python (line {e.lineno}: {e.msg})") from e
        if not any(isinstance(n, ast.FunctionDef) and n.name == "run" for n in module.body):
            raise ValueError("reference: must define a top-level function 'run'")
        unknown_plan = [name for name in self.plan_inputs or () if name not in self.inputs]
        if unknown_plan:
            raise ValueError(f"plan_inputs: {unknown_plan[0]!r} is not an input")
        for i, expression in enumerate(self.constraints):
            try:
                unknown = constraint_names(expression) - set(self.axes) - set(self.inputs)
            except ConstraintError as e:
                raise ValueError(f"constraints[{i}]: {e}") from e
            if unknown:
                raise ValueError(f"constraints[{i}]: {expression!r} names {sorted(unknown)}, which are neither "
                                 "axes nor inputs")
        return self

    @cached_property
    def const_axes(self) -> Dict[str, int]:
        """Constant axes and their sizes."""
        return {n: a.value for n, a in self.axes.items() if isinstance(a, AxisConst)}

    @cached_property
    def var_axes(self) -> List[str]:
        """Names of the variable axes, in declaration order."""
        return [n for n, a in self.axes.items() if isinstance(a, AxisVar)]

    def shapes(self, var_values: Mapping[str, int], which: str = "inputs") -> Dict[str, Optional[tuple]]:
        """Concrete shapes of ``which`` ("inputs" or "outputs") for the given variable-axis values.

        Raises ValueError naming the first variable axis that has no value.
        """
        values = {**self.const_axes, **var_values}
        out: Dict[str, Optional[tuple]] = {}
        for tensor, spec in getattr(self, which).items():
            if spec.shape is None:
                out[tensor] = None
                continue
            missing = [a for a in spec.shape if a not in values]
            if missing:
                raise ValueError(f"definition {self.name}: no value for axis {missing[0]!r} ({which}.{tensor})")
            out[tensor] = tuple(int(values[a]) for a in spec.shape)
        return out

    def infer_axes(self, inputs: Union[Mapping[str, Any], Sequence[Any]]) -> Dict[str, int]:
        """Variable-axis values read off input tensors (by name, or positionally in definition order).

        Raises ValueError when a tensor's rank differs from its spec, when two tensors give one axis different
        sizes, when a const axis does not match, or when a variable axis appears in no input.
        """
        if not isinstance(inputs, Mapping):
            inputs = dict(zip(self.inputs, inputs))
        found: Dict[str, tuple] = {}
        for tensor, spec in self.inputs.items():
            if spec.shape is None or tensor not in inputs:
                continue
            shape = tuple(getattr(inputs[tensor], "shape", ()))
            if len(shape) != len(spec.shape):
                raise ValueError(
                    f"definition {self.name}: input {tensor!r} has rank {len(shape)}, expected "
                    f"{len(spec.shape)} {list(spec.shape)}"
                )
            for dim, (axis, size) in enumerate(zip(spec.shape, shape)):
                size = int(size)
                if axis in self.const_axes and self.const_axes[axis] != size:
                    raise ValueError(
                        f"definition {self.name}: input {tensor!r} dim {dim} ({axis}) is {size}, "
                        f"the definition fixes it at {self.const_axes[axis]}"
                    )
                if axis in found and found[axis][0] != size:
                    raise ValueError(
                        f"definition {self.name}: axis {axis!r} is {found[axis][0]} in input {found[axis][1]!r} "
                        f"but {size} in input {tensor!r}"
                    )
                found.setdefault(axis, (size, tensor))
        missing = [a for a in self.var_axes if a not in found]
        if missing:
            raise ValueError(f"definition {self.name}: variable axes {missing} appear in no given input")
        return {a: found[a][0] for a in self.var_axes}

    @cached_property
    def constraint_inputs(self) -> Dict[str, frozenset]:
        """Per constraint, the inputs it reads (empty for a constraint over axes alone)."""
        return {c: frozenset(constraint_names(c) & set(self.inputs)) for c in self.constraints}

    def violated_constraints(self, var_values: Mapping[str, int],
                             inputs: Optional[Mapping[str, Any]] = None) -> List[str]:
        """The constraints that do not hold for these axis values and, where given, input values (by name).

        A constraint that reads an input is checked only when ``inputs`` holds every input it reads. Raises
        ConstraintError (a ValueError) when a constraint cannot be evaluated on the values, e.g. an index past
        the end of a tensor.
        """
        values = {**(inputs or {}), **self.const_axes, **var_values}
        return [c for c, needs in self.constraint_inputs.items()
                if needs <= values.keys() and not evaluate_constraint(c, values)]
