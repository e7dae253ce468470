"""Checks that need more than one record: a workload against its definition, blob paths against the root."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from pydantic import ValidationError

from ..errors import DatasetError
from ..schema import Definition, SafetensorsInput, ScalarInput, Workload


def validation_errors(error: ValidationError, file: Path, line: Optional[int] = None,
                      prefix: str = "") -> List[DatasetError]:
    """One DatasetError per pydantic error, with the dotted field path."""
    found = []
    for item in error.errors():
        field = prefix + ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        found.append(DatasetError(message, file=file, line=line, field=field or None))
    return found


def workload_problems(definition: Definition, workload: Workload, root: Optional[Path]) -> List[str]:
    """What is wrong with ``workload`` for ``definition``: axes, inputs, constraints, blob files."""
    problems = []
    declared = set(definition.var_axes)
    missing = [a for a in definition.var_axes if a not in workload.axes]
    if missing:
        problems.append(f"axes: no value for variable axes {missing}")
    for axis in workload.axes:
        if axis not in definition.axes:
            problems.append(f"axes.{axis}: not an axis of definition {definition.name}")
        elif axis not in declared and workload.axes[axis] != definition.const_axes[axis]:
            problems.append(f"axes.{axis}: {workload.axes[axis]} but the definition fixes it at "
                            f"{definition.const_axes[axis]}")
    for name, spec in workload.inputs.items():
        if name not in definition.inputs:
            problems.append(f"inputs.{name}: not an input of definition {definition.name}")
            continue
        is_scalar = definition.inputs[name].shape is None
        if isinstance(spec, ScalarInput) and not is_scalar:
            problems.append(f"inputs.{name}: a scalar value for a tensor input")
        if isinstance(spec, SafetensorsInput) and root is not None:
            problems += _blob_problems(name, spec, root)
    if not missing:
        try:
            violated = definition.violated_constraints({a: workload.axes[a] for a in definition.var_axes},
                                                       _stored_inputs(definition, workload, root, problems))
        except ValueError as e:
            violated = [f"({e})"]
        problems += [f"axes: constraint {c!r} does not hold" for c in violated]
    return problems


def _stored_inputs(definition: Definition, workload: Workload, root: Optional[Path], problems: List[str]) -> dict:
    """The inputs that constraints read and the workload fixes (scalars, readable blobs): enough to check
    constraints over tensors at validation; the rest are checked on the generated inputs when run."""
    wanted = set().union(*definition.constraint_inputs.values()) if definition.constraints else set()
    found = {}
    for name in wanted:
        spec = workload.inputs.get(name)
        if isinstance(spec, ScalarInput):
            found[name] = spec.value
        elif isinstance(spec, SafetensorsInput) and root is not None and not problems:
            from safetensors import safe_open

            with safe_open(str((root / spec.path).resolve()), framework="pt") as f:
                found[name] = f.get_tensor(spec.tensor_key)
    return found


def _blob_problems(name: str, spec: SafetensorsInput, root: Path) -> List[str]:
    path = (root / spec.path).resolve()
    if not path.is_relative_to(root.resolve()):
        return [f"inputs.{name}.path: {spec.path!r} is outside the dataset"]
    if not path.is_file():
        return [f"inputs.{name}.path: {spec.path!r} does not exist"]
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            if spec.tensor_key not in f.keys():
                return [f"inputs.{name}.tensor_key: {spec.tensor_key!r} is not in {spec.path}"]
    except Exception as e:  # a corrupt header raises various types; report it as the problem
        return [f"inputs.{name}.path: {spec.path!r} is not a readable safetensors file ({e})"]
    return []
