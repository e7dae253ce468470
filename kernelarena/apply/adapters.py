"""Calling a solution in the caller's convention when the solution uses the other one.

A caller is value-returning when it passes only the inputs, destination-passing (DPS) when it passes the
inputs and then the outputs. Adapters are made once per key, so output shapes are already known then.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ..schema import Definition, torch_dtype


def adapt(run: Callable[..., Any], solution_dps: bool, caller_dps: bool, definition: Definition,
          axes: Mapping[str, int], device: Any) -> Callable[..., Any]:
    """``run`` itself when the conventions agree; otherwise a function taking the caller's arguments.

    ``axes`` (variable-axis values of the key) and ``device`` size and place the outputs allocated for a
    DPS solution called value-returning.
    """
    if solution_dps == caller_dps:
        return run
    if caller_dps:
        return value_as_destination_passing(run, len(definition.inputs), len(definition.outputs))
    return destination_passing_as_value(run, definition, axes, device)


def value_as_destination_passing(run: Callable[..., Any], n_inputs: int, n_outputs: int) -> Callable[..., None]:
    """Call a value-returning ``run`` on the inputs and copy its result(s) into the given outputs."""
    if n_outputs == 1:
        def call(*args):
            args[n_inputs].copy_(run(*args[:n_inputs]))
    else:
        def call(*args):
            for out, value in zip(args[n_inputs:], run(*args[:n_inputs]), strict=True):
                out.copy_(value)
    return call


def destination_passing_as_value(run: Callable[..., Any], definition: Definition, axes: Mapping[str, int],
                                 device: Any) -> Callable[..., Any]:
    """Allocate the outputs (shapes and dtypes from the definition), call a DPS ``run``, return them: one
    tensor for one output, a tuple for several (the reference's convention)."""
    import torch

    shapes = definition.shapes(axes, "outputs")
    specs = [(shapes[name] or (), torch_dtype(spec.dtype)) for name, spec in definition.outputs.items()]
    if len(specs) == 1:
        (shape, dtype), = specs

        def call_one(*args):
            out = torch.empty(shape, dtype=dtype, device=device)
            run(*args, out)
            return out

        return call_one

    def call_many(*args):
        outs = tuple(torch.empty(shape, dtype=dtype, device=device) for shape, dtype in specs)
        run(*args, *outs)
        return outs

    return call_many
