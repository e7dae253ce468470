"""torch.compile support: each routed site is registered as a torch.library custom op.

Dynamo cannot trace into a dispatch whose target is decided at run time (and may be a compiled extension),
so under torch.compile a site calls its custom op instead: one opaque graph node whose eager body is the
site's ordinary dispatch, and whose fake implementation computes output shapes from the definition (sizes
stay symbolic). A value-returning and a destination-passing op are registered per site, each once.
"""

from __future__ import annotations

import itertools
import logging
import re
from typing import Any, Callable, Optional, Protocol

from ..schema import Definition, torch_dtype
from .key import merge_keywords

logger = logging.getLogger("kernelarena.apply")

NAMESPACE = "kernelarena"
_library = None
_counter = itertools.count()
_SCALAR_SCHEMA = {"float32": "float", "float16": "float", "bfloat16": "float", "int64": "int", "int32": "int",
                  "int16": "int", "int8": "int", "bool": "bool"}


class DispatchingSite(Protocol):
    """What an op's eager body calls: an apply site's current dispatch."""

    def dispatch(self, args: tuple, kwargs: dict) -> Any: ...


class CompiledSiteOps:
    """The two custom ops of one site, and how a call's arguments reach them."""

    def __init__(self, definition: Definition, value_op: Callable[..., Any], dps_op: Callable[..., Any]):
        self.names = (*definition.inputs, *definition.outputs)
        self.n_inputs = len(definition.inputs)
        self.value_op = value_op
        self.dps_op = dps_op

    def merge(self, args: tuple, kwargs: dict) -> Optional[tuple]:
        """Positional arguments in definition order, or None when the call fits neither convention."""
        merged = merge_keywords(self.names, args, kwargs) if kwargs else args
        if merged is None or len(merged) not in (self.n_inputs, len(self.names)):
            return None
        return merged

    def __call__(self, *args):
        if len(args) == self.n_inputs:
            return self.value_op(*args)
        self.dps_op(*args)
        return None


def register_site_op(site: DispatchingSite, definition: Definition) -> Optional[CompiledSiteOps]:
    """Register the custom ops of ``site`` (whose calls follow ``definition``); None, logged, when the
    definition cannot be expressed as an op schema (torch.compile then traces the fallback)."""
    try:
        return _register(site, definition)
    except Exception:  # an exotic definition must not stop apply from being enabled
        logger.warning("apply: cannot register %s as a torch custom op; under torch.compile its calls run the "
                       "fallback", definition.name, exc_info=True)
        return None


def _register(site: DispatchingSite, definition: Definition) -> CompiledSiteOps:
    import torch

    global _library
    if _library is None:
        _library = torch.library.Library(NAMESPACE, "FRAGMENT")
    base = re.sub(r"\W", "_", definition.name) + f"_site{next(_counter)}"
    params = []
    for i, spec in enumerate(definition.inputs.values()):
        params.append(f"Tensor a{i}" if spec.shape is not None else f"{_SCALAR_SCHEMA[spec.dtype.value]} a{i}")
    n_out = len(definition.outputs)
    returns = "Tensor" if n_out == 1 else "(" + ", ".join(["Tensor"] * n_out) + ")"
    letters = "abcdefghijklmnopqrstuvwxyz"
    outs = [f"Tensor({letters[i]}!) o{i}" for i in range(n_out)]

    def run_value(*args):
        return site.dispatch(args, {})

    def run_dps(*args):
        site.dispatch(args, {})

    _library.define(f"{base}({', '.join(params)}) -> {returns}")
    _library.impl(base, run_value, "CompositeExplicitAutograd")
    torch.library.register_fake(f"{NAMESPACE}::{base}", _fake_outputs(definition), lib=_library)
    _library.define(f"{base}_dps({', '.join(params + outs)}) -> ()")
    _library.impl(f"{base}_dps", run_dps, "CompositeExplicitAutograd")
    torch.library.register_fake(f"{NAMESPACE}::{base}_dps", lambda *args: None, lib=_library)
    ops = getattr(torch.ops, NAMESPACE)
    return CompiledSiteOps(definition, getattr(ops, base), getattr(ops, f"{base}_dps"))


def _fake_outputs(definition: Definition) -> Callable[..., Any]:
    """Output tensors shaped from the inputs' (possibly symbolic) sizes and the definition's const axes."""
    import torch

    specs = [(spec.shape or [], torch_dtype(spec.dtype)) for spec in definition.outputs.values()]
    inputs = list(definition.inputs.values())

    def fake(*args):
        sizes: dict = dict(definition.const_axes)
        device = None
        for spec, value in zip(inputs, args):
            if spec.shape is None:
                continue
            device = device if device is not None else value.device
            for axis, size in zip(spec.shape, value.shape):
                sizes.setdefault(axis, size)
        outs = tuple(torch.empty([sizes[a] for a in shape], dtype=dtype, device=device) for shape, dtype in specs)
        return outs[0] if len(outs) == 1 else outs

    return fake
