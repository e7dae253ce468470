"""Reading a call's dispatch key from its arguments.

The hot path keys its cache on the shapes of the few input tensors that bind the definition's variable
axes, plus the dtype and device of the first of them: a torch.Size is a tuple, so it hashes and compares as
one without building a new tuple of ints (reading ``t.shape`` costs about 90 ns here; ``t.shape[0]`` and
a new tuple cost more). Const axes, ranks, every dtype and the constraints are checked once per key, in
``read_axes``, when a key is first seen; a call that does not fit the definition falls back.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Callable, Dict, Hashable, List, Mapping, Optional, Sequence, Tuple

from ..schema import Definition, dtype_name

KeyReader = Callable[[Sequence[Any]], Hashable]

tensor_key = attrgetter("shape", "dtype", "device")
"""The key of a definition with one key tensor: ``(shape, dtype, device)`` read in C, no Python frame."""


def key_positions(definition: Definition) -> List[int]:
    """Argument positions of the inputs whose shapes make up the key: a small set of inputs that covers
    every variable axis, chosen greedily in input order; the first tensor input when there is no variable
    axis (its shape still tells a const-axis mismatch, its dtype a dtype mismatch); none without tensors."""
    names = list(definition.inputs)
    positions: List[int] = []
    covered = set()
    for axis in definition.var_axes:
        if axis in covered:
            continue
        for i, name in enumerate(names):
            shape = definition.inputs[name].shape
            if shape and axis in shape:
                positions.append(i)
                covered.update(a for a in shape if a in definition.var_axes)
                break
    if not positions:
        positions = [i for i, n in enumerate(names) if definition.inputs[n].shape is not None][:1]
    return sorted(positions)


def make_key_reader(definition: Definition) -> KeyReader:
    """A function ``args -> key`` specialized to the definition (one closure per count of key tensors, so
    the common cases run no loop). It raises IndexError or AttributeError when the arguments are too few
    or not tensors; the caller falls back then."""
    positions = key_positions(definition)
    if not positions:
        return lambda args: ()
    if len(positions) == 1:
        (i,) = positions

        return lambda args: tensor_key(args[i])
    if len(positions) == 2:
        i, j = positions

        def read_two(args):
            t = args[i]
            return (t.shape, args[j].shape, t.dtype, t.device)

        return read_two
    first = positions[0]

    def read_many(args):
        t = args[first]
        return (*[args[p].shape for p in positions], t.dtype, t.device)

    return read_many


def read_axes(definition: Definition, inputs: Sequence[Any]) -> Dict[str, int]:
    """Variable-axis values of a call whose inputs are ``inputs`` (definition order), after checking that it
    fits the definition: ranks, const axes, agreeing sizes, tensor dtypes and constraints.

    Raises ValueError saying what does not fit.
    """
    if len(inputs) != len(definition.inputs):
        raise ValueError(f"definition {definition.name}: {len(inputs)} inputs given, it has "
                         f"{len(definition.inputs)} ({', '.join(definition.inputs)})")
    axes = definition.infer_axes(dict(zip(definition.inputs, inputs)))
    for (name, spec), value in zip(definition.inputs.items(), inputs):
        if spec.shape is None:
            continue
        got = dtype_name(getattr(value, "dtype", type(value).__name__))
        if got != spec.dtype.value:
            raise ValueError(f"definition {definition.name}: input {name!r} is {got}, expected {spec.dtype.value}")
    violated = definition.violated_constraints(axes)
    if violated:
        raise ValueError(f"definition {definition.name}: constraints do not hold: {violated}")
    return axes


def merge_keywords(names: Sequence[str], args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> Optional[tuple]:
    """``args`` followed by ``kwargs`` in the order of ``names`` (the definition's inputs, then outputs), or
    None when a keyword is not one of the remaining names or a gap would be left."""
    rest = names[len(args):len(args) + len(kwargs)]
    if set(rest) != set(kwargs):
        return None
    return tuple(args) + tuple(kwargs[n] for n in rest)


def argument_device(definition: Definition, inputs: Sequence[Any]) -> str:
    """Device type ("cpu", "cuda") of the first tensor input; "cpu" when there is none."""
    for spec, value in zip(definition.inputs.values(), inputs):
        if spec.shape is not None and hasattr(value, "device"):
            return value.device.type
    return "cpu"
