"""Comparing a solution's outputs with the reference's: shape, dtype, NaN/Inf, and per-dtype tolerances."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import torch

from ..schema import Definition, Status, Tolerance, torch_dtype
from . import spent

# Default tolerances by output dtype; a definition's ``tolerance`` or the run's overrides them. Half-precision
# outputs are rounded to 8 (bf16) or 11 (fp16) mantissa bits, so one rounding step is ~4e-3 / 5e-4 relative.
DEFAULT_TOLERANCES: Dict[str, Tolerance] = {
    "bfloat16": Tolerance(atol=1e-2, rtol=1e-2),
    "float16": Tolerance(atol=1e-3, rtol=1e-3),
    "float32": Tolerance(atol=1e-3, rtol=1e-3),
    "float8_e4m3fn": Tolerance(atol=1e-1, rtol=1e-1),
    "float8_e5m2": Tolerance(atol=2e-1, rtol=2e-1),
}
_EXACT = Tolerance(atol=0.0, rtol=0.0)


@dataclass
class Comparison:
    """Outcome of comparing one set of outputs."""

    status: Status
    max_absolute_error: float = 0.0
    max_relative_error: float = 0.0
    message: str = ""

    def merge(self, other: "Comparison") -> "Comparison":
        """The worse status, the larger errors, both messages."""
        order = [Status.PASSED, Status.INCORRECT_NUMERICAL, Status.INCORRECT_DTYPE, Status.INCORRECT_SHAPE]
        status = max(self.status, other.status, key=order.index)
        return Comparison(status, _nanmax(self.max_absolute_error, other.max_absolute_error),
                          _nanmax(self.max_relative_error, other.max_relative_error),
                          "; ".join(m for m in (self.message, other.message) if m))


def _nanmax(a: float, b: float) -> float:
    return math.nan if math.isnan(a) or math.isnan(b) else max(a, b)


def tolerance_for(definition: Definition, dtype: str, override: Optional[Tolerance]) -> Tolerance:
    if override is not None:
        return override
    if definition.tolerance is not None:
        return definition.tolerance
    return DEFAULT_TOLERANCES.get(dtype, _EXACT)


def compare_outputs(definition: Definition, outputs: Sequence, expected: Sequence,
                    override: Optional[Tolerance] = None) -> Comparison:
    """Check ``outputs`` against the reference's ``expected``, in the definition's output order."""
    names = list(definition.outputs)
    if len(outputs) != len(names):
        return Comparison(Status.INCORRECT_SHAPE, message=f"expected {len(names)} outputs {names}, got {len(outputs)}")
    result = Comparison(Status.PASSED)
    for name, out, ref in zip(names, outputs, expected):
        spec = definition.outputs[name]
        tolerance = tolerance_for(definition, spec.dtype.value, override)
        result = result.merge(_compare_one(name, out, ref, spec.dtype.value, tolerance))
    return result


def _compare_one(name: str, out, ref, dtype: str, tol: Tolerance) -> Comparison:
    if not isinstance(out, torch.Tensor):
        out = torch.as_tensor(out)
    ref = torch.as_tensor(ref)
    if tuple(out.shape) != tuple(ref.shape):
        return Comparison(Status.INCORRECT_SHAPE, message=f"output {name!r}: shape {tuple(out.shape)}, "
                                                          f"expected {tuple(ref.shape)}")
    if out.dtype != torch_dtype(dtype):
        return Comparison(Status.INCORRECT_DTYPE, message=f"output {name!r}: dtype {out.dtype}, expected {dtype}")
    if out.numel() == 0:
        return Comparison(Status.PASSED)
    # To the reference's device first, in its own dtype, then widened there: widening a bf16 output on the host
    # first would copy four times its bytes. The copy is a step of its own in the run's closing line (a payload's
    # mapped pages are read from the page cache here).
    out = out.detach()
    if out.device != ref.device:
        with spent.timed("outputs to device"):
            out = out.to(device=ref.device)
    o = out.to(torch.float64)
    r = ref.detach().to(torch.float64)
    diff = (o - r).abs()
    same_special = (o == r) | (o.isnan() & r.isnan())  # equal infinities and NaN where the reference has NaN
    diff = torch.where(same_special, torch.zeros_like(diff), diff)
    bad_special = ~torch.isfinite(o) & ~same_special
    rel = torch.where(same_special, torch.zeros_like(diff), diff / r.abs().clamp_min(1e-12))
    failing = (diff > tol.atol + tol.rtol * r.abs()) | bad_special
    # One read back for every figure: each read waits for the device, and on a GPU that other processes keep busy
    # (the other lanes' solutions) a wait lasts until this process's turn on it comes.
    any_bad, max_abs, max_rel, count = _read_back(torch.stack([
        bad_special.any().to(torch.float64), diff.max(), rel.max(), failing.sum().to(torch.float64)]))
    if any_bad or max_abs == math.inf:
        max_abs = max_rel = math.inf
    if count:
        where = tuple(int(i) for i in torch.nonzero(failing)[0].tolist())
        message = (f"output {name!r}: {int(count)} of {o.numel()} elements outside atol={tol.atol} rtol={tol.rtol} "
                   f"(first at {where}: got {float(o[where])}, expected {float(r[where])})")
        return Comparison(Status.INCORRECT_NUMERICAL, max_abs, max_rel, message)
    return Comparison(Status.PASSED, max_abs, max_rel)


def _read_back(values: torch.Tensor) -> list:
    """A small device tensor's values on the host (one wait for the device: the comparison's kernels, and on a
    GPU shared with other processes their turns first; a step of its own in the run's closing line)."""
    with spent.timed("comparison read-back"):
        return values.tolist()


def inputs_changed(before: Dict, after: Dict) -> Optional[str]:
    """The name of the first tensor input whose contents changed, or None."""
    for name, old in before.items():
        new = after[name]
        if isinstance(old, torch.Tensor) and not torch.equal(old, new):
            if not (old.is_floating_point() and torch.equal(old.isnan(), new.isnan())
                    and torch.equal(old.nan_to_num(), new.nan_to_num())):
                return name
    return None
