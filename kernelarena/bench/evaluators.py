"""Evaluators per op family: how a solution's outputs are judged against what the reference defines.

Each is a pure function of (definition, outputs, expected or inputs). Which one applies is set by the
definition's ``evaluator`` field, else by its op_type (``EVALUATORS_BY_OP_TYPE``), and a run may override
both (RunConfig.evaluator).

- default: every element within the tolerance (bench/correctness.py).
- lowbit: a required ratio of the elements within the tolerance, for quantized kernels whose rounding differs
  from the reference's in a few places.
- sampling: the outputs are random draws. Every draw must be a token the reference's distribution allows, and
  the draws' distribution must be close to it in total variation distance (TVD).

The sampling threshold and its false-failure rate. The tokens a row allows are grouped into at most ``bins``
bins of about equal probability (largest first), and the TVD between the observed bin frequencies of ``n``
draws and the bins' probabilities is compared with

    T = 0.5 * (sqrt((M - 1) / n) + sqrt(2 * ln(rows / delta) / n))        (M: bins actually used)

For a correct sampler the L1 distance of the empirical distribution has mean at most sqrt((M - 1) / n)
(Cauchy-Schwarz over the bins), and one draw changes it by at most 2 / n, so by McDiarmid's inequality it
exceeds its mean by eps with probability at most exp(-n eps^2 / 2). Each row therefore fails wrongly with
probability at most delta / rows, and the whole check at most delta (``false_failure_rate``, default 1e-4).
With n = 10000 and M = 20 bins, T is about 0.05 for one row: a sampler whose binned distribution is off by
more than that fails (tests/bench/test_evaluators.py measures both rates).
"""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Sequence

import torch

from ..schema import Definition, EvaluatorSpec, Status, Tolerance
from .correctness import Comparison, _compare_one, compare_outputs, tolerance_for

EVALUATORS_BY_OP_TYPE: Dict[str, EvaluatorSpec] = {
    "sampling": EvaluatorSpec(kind="sampling"),
}
"""The evaluator of an op_type whose definitions do not name one."""
_LOW_BIT_DTYPES = {"float8_e4m3fn", "float8_e5m2", "float4_e2m1"}
_DEFAULT_RATIO = 0.95
_DEFAULT_BINS = 20
_DEFAULT_FALSE_FAILURE_RATE = 1e-4
# A token at the edge of the top-k / top-p set may be in or out depending on float rounding of the
# cumulative sum; draws of such tokens are not counted as out of support.
_EDGE_SLACK = 1e-5


def resolve_evaluator(definition: Definition, override: Optional[EvaluatorSpec] = None) -> EvaluatorSpec:
    """The evaluator for ``definition``: the run's ``override``, else the definition's own, else by op_type
    (MoE definitions with 8- or 4-bit float inputs: lowbit), else the default."""
    if override is not None:
        return override
    if definition.evaluator is not None:
        return definition.evaluator
    if definition.op_type in EVALUATORS_BY_OP_TYPE:
        return EVALUATORS_BY_OP_TYPE[definition.op_type]
    if definition.op_type == "moe" and any(s.dtype.value in _LOW_BIT_DTYPES for s in definition.inputs.values()):
        return EvaluatorSpec(kind="lowbit")
    return EvaluatorSpec()


def default_draws(spec: EvaluatorSpec, device: str) -> int:
    """Draws per row for a sampling check: the spec's, else 10000 on a GPU and 200 on the CPU (where runs
    exercise the pipeline; the support check still catches every excluded token, the distance only coarse
    errors: a binned TVD above ~0.3)."""
    return spec.draws or (10000 if device.startswith("cuda") else 200)


def compare_lowbit(definition: Definition, outputs: Sequence, expected: Sequence, spec: EvaluatorSpec,
                   override: Optional[Tolerance] = None) -> Comparison:
    """Pass when, for every output, at least ``spec.required_matched_ratio`` (default 0.95) of the elements are
    within the tolerance; shapes and dtypes must still match exactly."""
    ratio = spec.required_matched_ratio or _DEFAULT_RATIO
    names = list(definition.outputs)
    if len(outputs) != len(names):
        return Comparison(Status.INCORRECT_SHAPE, message=f"expected {len(names)} outputs {names}, got {len(outputs)}")
    result = Comparison(Status.PASSED)
    for name, out, ref in zip(names, outputs, expected):
        dtype = definition.outputs[name].dtype.value
        tol = tolerance_for(definition, dtype, override)
        one = _compare_one(name, out, ref, dtype, tol)
        if one.status == Status.INCORRECT_NUMERICAL:
            o = torch.as_tensor(out).detach().to(torch.float64).cpu()
            r = torch.as_tensor(ref).detach().to(torch.float64).cpu()
            within = ((o - r).abs() <= tol.atol + tol.rtol * r.abs()) | (o == r) | (o.isnan() & r.isnan())
            matched = float(within.double().mean())
            if matched >= ratio:
                one = Comparison(Status.PASSED, one.max_absolute_error, one.max_relative_error)
            else:
                one.message = (f"output {name!r}: {matched:.4f} of the elements within atol={tol.atol} "
                               f"rtol={tol.rtol}, {ratio} required")
        result = result.merge(one)
    return result


def filtered_distribution(probs: torch.Tensor, top_k: Optional[torch.Tensor] = None,
                          top_p: Optional[torch.Tensor] = None, slack: float = 0.0) -> torch.Tensor:
    """The distribution top-k then top-p sampling draws from, per row (float64, rows sum to 1).

    As FlashInfer-Trace's references define it: a row's probabilities renormalized; top-k (when 0 < k <
    vocabulary) keeps the k largest, ties at the k-th kept, and renormalizes; top-p keeps the largest tokens
    while the mass before them is at most p (so the token crossing p is kept) and renormalizes; top_p <= 0
    keeps the largest token only. ``slack`` widens both edges (for judging whether a draw is allowed).
    """
    p = probs.detach().to(torch.float64)
    p = p / p.sum(-1, keepdim=True)
    vocab = p.shape[-1]
    if top_k is not None:
        k = top_k.to(device=p.device, dtype=torch.int64).reshape(-1)
        active = (k > 0) & (k < vocab)
        kth = p.sort(-1, descending=True).values.gather(-1, (k.clamp(1, vocab) - 1)[:, None])
        keep = (p >= kth * (1 - slack)) | ~active[:, None]
        p = torch.where(keep, p, torch.zeros_like(p))
        p = p / p.sum(-1, keepdim=True)
    if top_p is not None:
        limit = top_p.to(device=p.device, dtype=torch.float64).reshape(-1, 1)
        values, order = p.sort(-1, descending=True)
        before = values.cumsum(-1) - values
        keep_sorted = (before <= limit + slack) | (limit >= 1)
        keep_sorted[:, 0] = True
        keep_sorted &= (limit > 0) | (torch.arange(vocab, device=p.device) == 0)
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        p = torch.where(keep, p, torch.zeros_like(p))
        p = p / p.sum(-1, keepdim=True)
    return p


def sampling_distribution(definition: Definition, inputs: Mapping[str, Any], reference_module=None,
                          slack: float = 0.0) -> torch.Tensor:
    """The distribution [rows, vocabulary] the reference samples from: its module's ``distribution(*inputs)``
    when it defines one, else top-k/top-p filtering of the inputs named ``probs``, ``top_k``, ``top_p``.

    Raises ValueError when neither applies.
    """
    custom = getattr(reference_module, "distribution", None)
    if custom is not None:
        return custom(*inputs.values()).to(torch.float64)
    if "probs" not in inputs:
        raise ValueError(f"definition {definition.name}: a sampling check needs an input named 'probs' or a "
                         "distribution(*inputs) function in the reference")
    return filtered_distribution(inputs["probs"], inputs.get("top_k"), inputs.get("top_p"), slack)


def tvd_threshold(bins_used: int, draws: int, rows: int, false_failure_rate: float) -> float:
    """The largest binned TVD a correct sampler reaches with probability above ``false_failure_rate`` (see the
    module docstring for the bound)."""
    return 0.5 * (math.sqrt(max(bins_used - 1, 0) / draws)
                  + math.sqrt(2 * math.log(rows / false_failure_rate) / draws))


def compare_sampling(definition: Definition, inputs: Mapping[str, Any], samples: torch.Tensor,
                     spec: EvaluatorSpec, reference_module=None) -> Comparison:
    """Judge ``samples`` [draws, rows] (token ids) against the reference's distribution on ``inputs``.

    INCORRECT_NUMERICAL when a draw is a token the distribution does not allow, or a row's binned TVD exceeds
    the threshold; max_absolute_error holds the largest TVD and max_relative_error the largest TVD / threshold.
    """
    samples = samples.detach().to(device="cpu", dtype=torch.int64).reshape(samples.shape[0], -1)
    problem = sampling_support_problem(definition, inputs, samples, reference_module)
    if problem is not None:
        return problem
    target = sampling_distribution(definition, inputs, reference_module).cpu()
    draws, rows = samples.shape
    bins = spec.bins or _DEFAULT_BINS
    rate = spec.false_failure_rate or _DEFAULT_FALSE_FAILURE_RATE
    worst_tvd, worst_ratio, message = 0.0, 0.0, ""
    for row in range(rows):
        bin_of, masses = _equal_mass_bins(target[row], bins)
        observed = torch.bincount(bin_of[samples[:, row]], minlength=len(masses)).double() / draws
        tvd = 0.5 * float((observed - masses).abs().sum())
        threshold = tvd_threshold(len(masses), draws, rows, rate)
        if tvd / threshold > worst_ratio:
            worst_tvd, worst_ratio = tvd, tvd / threshold
            message = (f"row {row}: total variation distance {tvd:.4f} over {len(masses)} equal-mass bins and "
                       f"{draws} draws, threshold {threshold:.4f} (false-failure rate {rate:g})")
    status = Status.INCORRECT_NUMERICAL if worst_ratio > 1 else Status.PASSED
    return Comparison(status, worst_tvd, worst_ratio, message if status != Status.PASSED else "")


def sampling_support_problem(definition: Definition, inputs: Mapping[str, Any], samples: torch.Tensor,
                             reference_module=None) -> Optional[Comparison]:
    """A failing Comparison when a draw in ``samples`` [draws, rows] is not a token the reference's distribution
    allows (or the rows do not match it); None when every draw is allowed."""
    target = sampling_distribution(definition, inputs, reference_module).cpu()
    allowed = sampling_distribution(definition, inputs, reference_module, slack=_EDGE_SLACK).cpu() > 0
    allowed |= target > 0
    samples = samples.detach().to(device="cpu", dtype=torch.int64).reshape(samples.shape[0], -1)
    rows, vocab = target.shape
    if samples.shape[1] != rows:
        return Comparison(Status.INCORRECT_SHAPE, message=f"{samples.shape[1]} sampled rows, the distribution has "
                                                          f"{rows}")
    outside = (samples < 0) | (samples >= vocab)
    if bool(outside.any()):
        return Comparison(Status.INCORRECT_NUMERICAL, math.inf, math.inf,
                          f"draw {int(samples[outside][0])} is not a token id (vocabulary {vocab})")
    hits = allowed.gather(1, samples.T)
    if bool(hits.all()):
        return None
    row, draw = (int(i) for i in torch.nonzero(~hits)[0])
    token = int(samples[draw, row])
    return Comparison(Status.INCORRECT_NUMERICAL, 1.0, math.inf,
                      f"row {row}: token {token} was drawn, which the reference's distribution excludes")


def _equal_mass_bins(row: torch.Tensor, bins: int):
    """Per token its bin (tokens largest first, cut at multiples of 1/bins of the mass), and each used bin's
    mass. Zero-probability tokens share the last bin's id but add no mass."""
    values, order = row.sort(descending=True)
    before = values.cumsum(0) - values
    raw = (before * bins).floor().clamp(max=bins - 1).to(torch.int64)
    _, dense = torch.unique(raw, return_inverse=True)  # renumber the bins actually used 0..M-1
    bin_of = torch.empty_like(dense).scatter_(0, order, dense)
    masses = torch.zeros(int(dense.max()) + 1, dtype=torch.float64).scatter_add_(0, dense, values)
    return bin_of, masses


def compare_with(spec: EvaluatorSpec, definition: Definition, outputs: Sequence, expected: Sequence,
                 inputs: Mapping[str, Any], override: Optional[Tolerance] = None, reference_module=None) -> Comparison:
    """One set of outputs judged by ``spec``. For sampling, ``outputs`` is one draw: only whether each drawn
    token is allowed is checked (the distribution needs many draws: compare_sampling)."""
    if spec.kind == "lowbit":
        return compare_lowbit(definition, outputs, expected, spec, override)
    if spec.kind == "sampling":
        name, out = list(definition.outputs)[0], torch.as_tensor(outputs[0])
        want = torch.as_tensor(expected[0])
        if len(outputs) != len(definition.outputs) or tuple(out.shape) != tuple(want.shape):
            return Comparison(Status.INCORRECT_SHAPE, message=f"output {name!r}: shape {tuple(out.shape)}, "
                                                              f"expected {tuple(want.shape)}")
        if out.dtype != want.dtype:
            return Comparison(Status.INCORRECT_DTYPE, message=f"output {name!r}: dtype {out.dtype}, expected "
                                                              f"{want.dtype}")
        problem = sampling_support_problem(definition, inputs, out.reshape(1, -1), reference_module)
        return problem or Comparison(Status.PASSED)
    return compare_outputs(definition, outputs, expected, override)
