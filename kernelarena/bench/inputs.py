"""Inputs for a workload on a device: random (dtype-aware, seeded), scalar, safetensors from blob/, or built by
the definition's ``make_inputs`` for structured inputs; outputs preallocated and poisoned."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import torch

from ..schema import Definition, RandomInput, SafetensorsInput, ScalarInput, Workload, torch_dtype
from .evaluators import resolve_evaluator

_MODULES: Dict[str, types.ModuleType] = {}


def reference_module(definition: Definition) -> types.ModuleType:
    """The definition's reference source executed as a module (cached by source text)."""
    module = _MODULES.get(definition.reference)
    if module is None:
        module = types.ModuleType(f"kernelarena_reference_{definition.name}")
        module.__file__ = f"<reference of {definition.name}>"
        exec(compile(definition.reference, module.__file__, "exec"), module.__dict__)
        _MODULES[definition.reference] = module
    return module


def random_tensor(shape, dtype: torch.dtype, device: str, generator: torch.Generator) -> torch.Tensor:
    """Random data suited to ``dtype``, drawn on ``device`` by ``generator`` (which must live there): normal
    floats, small non-negative integers, fair booleans."""
    if dtype.is_floating_point:
        return torch.randn(shape, generator=generator, dtype=torch.float32, device=device).to(dtype)
    if dtype == torch.bool:
        return torch.rand(shape, generator=generator, device=device) < 0.5
    return torch.randint(0, 64, shape, generator=generator, dtype=torch.int64, device=device).to(dtype)


def materialize_inputs(definition: Definition, workload: Workload, device: str, seed: int,
                       root: Optional[Path] = None) -> Dict[str, Any]:
    """Every input of ``workload``, in definition order, on ``device``.

    Random inputs come from a generator seeded with ``seed``; the reference's ``make_inputs(axes, device,
    generator)``, when defined, supplies the inputs random data would make invalid. Safetensors inputs are read
    from ``root`` (the dataset folder). Raises ValueError naming the input that cannot be made, InvalidInputs
    when the inputs break a constraint over tensors (e.g. ``num_kv_indices == kv_indptr[-1].item()``).
    """
    generator = torch.Generator().manual_seed(seed)
    # Large tensors are drawn where they will live: drawing a GB of K/V cache on the CPU takes seconds.
    device_generator = generator if device == "cpu" else torch.Generator(device=device).manual_seed(seed)
    axes = {**definition.const_axes, **workload.axes}
    shapes = definition.shapes(workload.axes)
    made: Dict[str, Any] = {}
    maker: Optional[Callable] = getattr(reference_module(definition), "make_inputs", None)
    if maker is not None:
        made = dict(maker(axes, device, generator))
    values: Dict[str, Any] = {}
    for name, spec in definition.inputs.items():
        source = workload.inputs.get(name, RandomInput())
        if isinstance(source, ScalarInput):
            values[name] = source.value
        elif isinstance(source, SafetensorsInput):
            values[name] = _load_blob(source, root, name).to(device)
        elif name in made:
            values[name] = made[name]
        elif spec.shape is None:
            values[name] = float(torch.rand((), generator=generator)) if "float" in spec.dtype.value else 1
        else:
            values[name] = random_tensor(shapes[name], torch_dtype(spec.dtype), device, device_generator)
            if resolve_evaluator(definition).kind == "sampling":
                values[name] = _valid_sampling_input(name, values[name], device_generator)
    try:
        violated = definition.violated_constraints(workload.axes, values)
    except ValueError as e:
        raise InvalidInputs(f"workload {workload.uuid} of {definition.name}: {e}") from e
    if violated:
        raise InvalidInputs(f"workload {workload.uuid} of {definition.name}: its inputs break the constraints "
                            f"{violated} (store such inputs as safetensors blobs, or give the reference a "
                            "make_inputs that builds them)")
    return values


def _valid_sampling_input(name: str, value: Any, generator: torch.Generator) -> Any:
    """Random data made valid for a sampling definition (FlashInfer-Trace input names): ``probs`` rows
    normalized (softmax of the normal draw, sharpened to be peaked like a model's), ``top_p`` in (0.5, 1],
    ``top_k`` in [1, 64]. A k of 0 (the definitions read it as no top-k filter) is left out of random inputs:
    FlashInfer's kernel finds no token then and returns token 0, flagged invalid (sampling.cuh), and one row in
    64 would meet it; a workload that means to test k = 0 stores its inputs."""
    if name == "probs":
        return torch.softmax(value.float() * 3, dim=-1).to(value.dtype)
    if name == "top_k":
        return torch.randint(1, 65, value.shape, generator=generator, device=value.device).to(value.dtype)
    if name == "top_p":
        return 1 - 0.5 * torch.rand(value.shape, generator=generator, device=value.device).to(value.dtype)
    return value


class InvalidInputs(ValueError):
    """A workload's inputs (stored or generated) break the definition's constraints: the workload is at fault,
    not the solution."""


def _load_blob(source: SafetensorsInput, root: Optional[Path], name: str) -> torch.Tensor:
    if root is None:
        raise ValueError(f"input {name!r} is stored in {source.path}, but no dataset folder was given")
    from safetensors import safe_open

    path = (root / source.path).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ValueError(f"input {name!r}: {source.path} is outside the dataset")
    with safe_open(str(path), framework="pt") as f:
        return f.get_tensor(source.tensor_key)


def poison_value(dtype: torch.dtype):
    """What unwritten output elements hold: NaN for floats, an unlikely extreme for integers, True for bools."""
    if dtype.is_floating_point:
        return float("nan")
    if dtype == torch.bool:
        return True
    return torch.iinfo(dtype).min + 7


def input_bytes(inputs: Dict[str, Any]) -> int:
    """Bytes of an input set's tensors (what TimingConfig.copies_for weighs)."""
    return sum(v.numel() * v.element_size() for v in inputs.values() if isinstance(v, torch.Tensor))


def allocate_outputs(definition: Definition, workload: Workload, device: str) -> Dict[str, torch.Tensor]:
    """Output tensors of the right shapes and dtypes, filled with the poison value."""
    shapes = definition.shapes(workload.axes, "outputs")
    out = {}
    for name, spec in definition.outputs.items():
        dtype = torch_dtype(spec.dtype)
        out[name] = torch.full(shapes[name] or (), poison_value(dtype), dtype=dtype, device=device)
    return out


def snapshot(values: Dict[str, Any]) -> Dict[str, Any]:
    """A copy of every tensor (scalars kept), to detect a solution writing into its inputs."""
    return {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in values.items()}


def as_tuple(result: Any) -> tuple:
    """A callable's result as a tuple of outputs (a lone tensor becomes a 1-tuple)."""
    if isinstance(result, (tuple, list)):
        return tuple(result)
    if isinstance(result, dict):
        return tuple(result.values())
    return (result,)
