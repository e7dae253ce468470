"""Evaluators per op family: lowbit's matched ratio, and the sampling check's stated false-failure rate and
its power against samplers that are subtly wrong."""

import pytest
import torch

from kernelarena.bench.evaluators import (
    compare_lowbit,
    compare_sampling,
    compare_with,
    filtered_distribution,
    resolve_evaluator,
    tvd_threshold,
)
from kernelarena.schema import Definition, EvaluatorSpec, Status

VOCAB = 2000


def _definition(op_type="sampling", evaluator=None, dtype="float32"):
    return Definition.model_validate({
        "name": "d", "op_type": op_type, "reference": "def run(probs, top_k, top_p):\n    return probs\n",
        "axes": {"batch_size": {"type": "var"}, "vocab_size": {"type": "const", "value": VOCAB}},
        "inputs": {"probs": {"shape": ["batch_size", "vocab_size"], "dtype": dtype},
                   "top_k": {"shape": ["batch_size"], "dtype": "int32"},
                   "top_p": {"shape": ["batch_size"], "dtype": "float32"}},
        "outputs": {"samples": {"shape": ["batch_size"], "dtype": "int64"}}, "evaluator": evaluator})


def _inputs(rows=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(rows, VOCAB, generator=g) * 3, dim=-1)
    return {"probs": probs, "top_k": torch.tensor([50, 0][:rows], dtype=torch.int32),
            "top_p": torch.tensor([0.9, 0.8][:rows])}


def _draw(distribution, draws, generator):
    return torch.multinomial(distribution, draws, replacement=True, generator=generator).T


def test_filtered_distribution_follows_the_reference_rules():
    probs = torch.tensor([[0.4, 0.3, 0.2, 0.1]] * 4, dtype=torch.float64)
    top_k = torch.tensor([3, 0, 3, 4], dtype=torch.int32)
    top_p = torch.tensor([1.0, 0.5, 0.5, 0.0])
    got = filtered_distribution(probs, top_k, top_p)
    assert torch.allclose(got[0], torch.tensor([4, 3, 2, 0.]).double() / 9, atol=1e-12)  # top-k only
    assert torch.allclose(got[1], torch.tensor([4, 3, 0, 0.]).double() / 7, atol=1e-12)  # 0.4 + 0.3 crosses 0.5: kept
    # top-k, then top-p on 0.44/0.33
    assert torch.allclose(got[2], torch.tensor([4, 3, 0, 0.]).double() / 7, atol=1e-12)
    assert torch.equal(got[3], torch.tensor([1.0, 0, 0, 0], dtype=torch.float64))  # top_p 0: the largest only


def test_a_correct_sampler_fails_no_more_often_than_stated():
    inputs = _inputs()
    target = filtered_distribution(inputs["probs"], inputs["top_k"], inputs["top_p"]).float()
    generator = torch.Generator().manual_seed(1)
    stated = 0.05
    spec = EvaluatorSpec(kind="sampling", false_failure_rate=stated, bins=20)
    failures = sum(compare_sampling(_definition(), inputs, _draw(target, 1000, generator), spec).status
                   != Status.PASSED for _ in range(200))
    assert failures <= 200 * stated  # the bound is conservative: in practice far fewer
    default = EvaluatorSpec(kind="sampling")
    assert all(compare_sampling(_definition(), inputs, _draw(target, 1000, generator), default).status
               == Status.PASSED for _ in range(50))


@pytest.mark.parametrize("wrong", ["ignores_top_p", "uniform_in_support", "too_sharp"])
def test_subtly_wrong_samplers_fail(wrong):
    inputs = _inputs()
    target = filtered_distribution(inputs["probs"], inputs["top_k"], inputs["top_p"])
    if wrong == "ignores_top_p":
        bad = filtered_distribution(inputs["probs"], inputs["top_k"], None)
    elif wrong == "uniform_in_support":
        bad = (target > 0).double()
    else:  # probabilities squared before sampling: the right support, the wrong weights
        bad = target ** 1.5
    samples = _draw((bad / bad.sum(-1, keepdim=True)).float(), 10000, torch.Generator().manual_seed(2))
    result = compare_sampling(_definition(), inputs, samples, EvaluatorSpec(kind="sampling"))
    assert result.status == Status.INCORRECT_NUMERICAL, result
    assert ("excludes" in result.message) == (wrong == "ignores_top_p")


def test_threshold_shrinks_with_draws():
    assert tvd_threshold(20, 10000, 1, 1e-4) == pytest.approx(0.5 * ((19 / 1e4) ** 0.5 + (2 * 9.2103 / 1e4) ** 0.5),
                                                               rel=1e-4)
    assert tvd_threshold(20, 40000, 1, 1e-4) == pytest.approx(tvd_threshold(20, 10000, 1, 1e-4) / 2)


def test_one_draw_is_checked_for_support_only():
    inputs = _inputs(rows=1)
    target = filtered_distribution(inputs["probs"], inputs["top_k"], inputs["top_p"])
    allowed, excluded = int(target[0].argmax()), int((target[0] == 0).nonzero()[0])
    spec = resolve_evaluator(_definition())
    expected = (torch.tensor([0]),)
    assert compare_with(spec, _definition(), (torch.tensor([allowed]),), expected, inputs).status == Status.PASSED
    assert compare_with(spec, _definition(), (torch.tensor([excluded]),), expected, inputs).status \
        == Status.INCORRECT_NUMERICAL
    assert compare_with(spec, _definition(), (torch.tensor([allowed], dtype=torch.int32),), expected,
                        inputs).status == Status.INCORRECT_DTYPE


def test_lowbit_needs_the_required_ratio_of_matching_elements():
    d = Definition.model_validate({
        "name": "m", "op_type": "moe", "reference": "def run(x):\n    return x\n",
        "axes": {"n": {"type": "const", "value": 100}},
        "inputs": {"x": {"shape": ["n"], "dtype": "float8_e4m3fn"}},
        "outputs": {"y": {"shape": ["n"], "dtype": "bfloat16"}}})
    spec = resolve_evaluator(d)
    assert spec.kind == "lowbit"
    ref = torch.ones(100, dtype=torch.bfloat16)
    few_off, many_off = ref.clone(), ref.clone()
    few_off[:4], many_off[:10] = 3.0, 3.0
    assert compare_lowbit(d, (few_off,), (ref,), spec).status == Status.PASSED
    failed = compare_lowbit(d, (many_off,), (ref,), spec)
    assert failed.status == Status.INCORRECT_NUMERICAL and "0.9000 of the elements" in failed.message
    assert compare_lowbit(d, (many_off,), (ref,), spec.model_copy(update={"required_matched_ratio": 0.9})).status \
        == Status.PASSED


def test_evaluator_comes_from_the_run_then_the_definition_then_the_op_type():
    assert resolve_evaluator(_definition()).kind == "sampling"
    assert resolve_evaluator(_definition(op_type="gemm")).kind == "default"
    assert resolve_evaluator(_definition(op_type="gemm", evaluator={"kind": "lowbit"})).kind == "lowbit"
    assert resolve_evaluator(_definition(evaluator={"kind": "lowbit"}), EvaluatorSpec()).kind == "default"


def test_cli_evaluator_option_is_checked(example_dataset):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "kernelarena.cli", "run", str(example_dataset), "--evaluator",
                             "statistical", "--no-save"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--evaluator" in result.stdout + result.stderr


def test_sampling_draws_are_made_in_calls_of_bounded_size(example_dataset, monkeypatch):
    """The distribution check repeats the batch to draw many samples per call; the repeat was sized for one row,
    so a batch of 64 rows asked for 64x the budget (32 GiB of probabilities on the H200: out of memory, in the
    solutions' processes, recorded as their RUNTIME_ERROR). Every call now stays within the budget."""
    from kernelarena.bench import RunConfig, evaluate
    from kernelarena.bench.evaluate import SolutionEvaluator
    from kernelarena.bench.inputs import materialize_inputs
    from kernelarena.build import build_solution
    from kernelarena.store import TraceSet

    example_dataset = TraceSet.load(example_dataset)
    name = "top_k_sampling_from_probs_v128256"
    definition = example_dataset.definitions[name]
    workload = next(w for w in example_dataset.workloads_for(name) if w.axes["batch_size"] == 16)
    solution = example_dataset.solutions[f"{name}_pytorch"]
    budget = 8 << 20
    monkeypatch.setitem(evaluate._DRAW_BATCH_BYTES, "cpu", budget)
    sizes = []
    runnable = build_solution(solution, device="cpu")

    def measured(*args, **kwargs):
        probs = args[0]
        sizes.append(probs.numel() * probs.element_size())
        return runnable(*args, **kwargs)

    measured.destination_passing_style = runnable.destination_passing_style
    evaluator = SolutionEvaluator("cpu", RunConfig(), example_dataset.root)
    inputs = materialize_inputs(definition, workload, "cpu", 1, example_dataset.root)
    samples = evaluator._draw_samples(definition, workload, measured, runnable.destination_passing_style, inputs, 5)
    assert tuple(samples.shape) == (5, 16)
    assert sizes and max(sizes) <= budget


def test_random_top_k_is_at_least_one(example_dataset):
    """k = 0 means no top-k filter to the definitions but makes FlashInfer's kernel return token 0; on the H200 a
    timed call met it (one row in 64 did), so random inputs keep k in [1, 64]."""
    from kernelarena.bench.inputs import materialize_inputs
    from kernelarena.store import TraceSet

    dataset = TraceSet.load(example_dataset)
    name = "top_k_top_p_sampling_from_probs_v128256"
    workload = next(w for w in dataset.workloads_for(name) if w.axes["batch_size"] == 64)
    ks = torch.cat([materialize_inputs(dataset.definitions[name], workload, "cpu", seed, dataset.root)["top_k"]
                    for seed in range(20)])
    assert int(ks.min()) >= 1 and int(ks.max()) <= 64 and len(set(ks.tolist())) > 32
