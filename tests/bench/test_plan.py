"""Plan apart from run: the plan step is found beside the entry, called outside the timed region, its host time
recorded apart, and a plan that computes the answer early is caught."""

import tempfile

import pytest

from kernelarena.bench import RunConfig, TimingConfig, run
from kernelarena.bench.evaluate import Case
from kernelarena.bench.plan import PlanError, find_plan, plan_case, plan_name
from kernelarena.schema import Definition, Solution, Trace, Workload
from kernelarena.store import TraceSet

REFERENCE = """
import torch

def run(x, offsets):
    return x * offsets.sum()
"""

# The reference may plan too: here it reads the structure input once, at plan time.
REFERENCE_WITH_PLAN = REFERENCE + """
def plan(x, offsets):
    total = offsets.sum()
    return lambda x, offsets: x * total
"""

PLANNED = """
import torch

def plan(x, offsets):
    total = float(offsets.sum())
    def planned(x, offsets, y):
        y.copy_(x * total)
    return planned

def run(x, offsets, y):
    plan(x, offsets)(x, offsets, y)
"""

# Computes the output from x at plan time: right only while x keeps the values the plan saw.
EARLY = """
def plan(x, offsets):
    answer = x * float(offsets.sum())
    def planned(x, offsets, y):
        y.copy_(answer)
    return planned

def run(x, offsets, y):
    plan(x, offsets)(x, offsets, y)
"""

PLAN_RAISES = """
def plan(x, offsets):
    raise ValueError("page table too long")

def run(x, offsets, y):
    y.copy_(x * offsets.sum())
"""

PLAN_RETURNS_NONE = """
def plan(x, offsets):
    return None

def run(x, offsets, y):
    y.copy_(x * offsets.sum())
"""


def _definition(reference: str = REFERENCE, **extra) -> Definition:
    return Definition.model_validate({
        "name": "scaled", "op_type": "elementwise", "axes": {"n": {"type": "var"}, "k": {"type": "const", "value": 4}},
        "inputs": {"x": {"shape": ["n"], "dtype": "float32"}, "offsets": {"shape": ["k"], "dtype": "float32"}},
        "outputs": {"y": {"shape": ["n"], "dtype": "float32"}}, "reference": reference, "plan_inputs": ["offsets"],
        **extra})


def _solution(name: str, source: str) -> Solution:
    return Solution.model_validate({
        "name": name, "definition": "scaled", "author": "tests",
        "spec": {"language": "python", "target_hardware": ["cpu"], "entry_point": "main.py::run"},
        "sources": [{"path": "main.py", "content": source}]})


def _evaluate(source: str, reference: str = REFERENCE, name: str = "s"):
    config = RunConfig(devices=("cpu",), correctness_rounds=2, timing=TimingConfig(warmup=1, reps=4))
    workload = Workload(uuid="w", axes={"n": 16}, inputs={"x": {"type": "random"}, "offsets": {"type": "random"}})
    return _run_one(_definition(reference), _solution(name, source), workload, config)


def _run_one(definition: Definition, solution: Solution, workload: Workload, config: RunConfig) -> Trace:
    """The one trace of ``solution`` on ``workload`` through the run loop (its own processes)."""
    with tempfile.TemporaryDirectory() as root:
        dataset = TraceSet(root)
        dataset.add_definition(definition)
        dataset.add_solution(solution)
        dataset.add_workloads([Trace(definition=definition.name, workload=workload)])
        (trace,) = run(dataset, config, save=False).traces
    return trace


def test_plan_names_follow_the_entry():
    assert plan_name("run") == "plan"
    assert plan_name("run_decode") == "plan_decode"
    assert plan_name("forward") is None


def test_find_plan_looks_beside_the_entry_even_when_aliased():
    namespace = {}
    exec("def plan(x):\n    return x\ndef _impl(x):\n    return x\nrun = _impl\n", namespace)
    assert find_plan(namespace["run"]) is namespace["plan"]
    exec("def run(x):\n    return x\n", bare := {})
    assert find_plan(bare["run"]) is None
    assert find_plan(len) is None  # a builtin (like a compiled entry) has no plan step


def test_plan_case_times_the_plan_and_rejects_a_non_callable():
    namespace = {}
    exec("def plan(a, b):\n    return lambda a, b: a + b\ndef run(a, b):\n    return a + b\n", namespace)
    call, host_us = plan_case(namespace["run"], Case({"a": 1, "b": 2}))
    assert call(1, 2) == 3 and host_us is not None and host_us >= 0
    assert plan_case(len, Case({"a": 1})) == (len, None)
    exec("def plan(a):\n    return 3\ndef run(a):\n    return a\n", bad := {})
    with pytest.raises(PlanError, match="returned int, not a callable"):
        plan_case(bad["run"], Case({"a": 1}))


def test_planned_solution_passes_with_plan_time_recorded_apart():
    trace = _evaluate(PLANNED)
    assert trace.evaluation.status.value == "PASSED", trace.evaluation.log
    timing = trace.evaluation.performance.solution_timing
    assert timing.plan_host_us is not None and timing.plan_host_us > 0
    assert timing.host_overhead_us is not None and timing.host_overhead_us > 0
    assert trace.evaluation.performance.reference_timing.plan_host_us is None  # the reference has no plan step


def test_reference_plan_step_is_used_for_its_timing():
    trace = _evaluate(PLANNED, reference=REFERENCE_WITH_PLAN)
    assert trace.evaluation.status.value == "PASSED", trace.evaluation.log
    assert trace.evaluation.performance.reference_timing.plan_host_us is not None


def test_plan_that_computes_the_answer_early_is_caught():
    trace = _evaluate(EARLY)
    assert trace.evaluation.status.value == "INCORRECT_NUMERICAL"


@pytest.mark.parametrize("source, message", [(PLAN_RAISES, "page table too long"),
                                             (PLAN_RETURNS_NONE, "returned NoneType, not a callable")])
def test_failing_plan_step_is_a_runtime_error(source, message):
    trace = _evaluate(source)
    assert trace.evaluation.status.value == "RUNTIME_ERROR"
    assert "in the plan step" in trace.evaluation.log and message in trace.evaluation.log


def test_plan_inputs_must_name_inputs():
    with pytest.raises(ValueError, match="plan_inputs: 'page_table' is not an input"):
        _definition(plan_inputs=["page_table"])


@pytest.mark.gpu
@pytest.mark.parametrize("timing, mode", [(None, "cupti-cold-l2"), ("events", "cuda-events-cold-l2"),
                                          ("graph", "cuda-graph")])
def test_planned_solution_on_the_gpu_in_the_definitions_timing_mode(timing, mode):
    definition = _definition(timing=timing) if timing else _definition()
    solution = Solution.model_validate({**_solution("s", PLANNED).model_dump(), "spec": {
        "language": "python", "target_hardware": ["cuda"], "entry_point": "main.py::run"}})
    workload = Workload(uuid="w", axes={"n": 4096}, inputs={"x": {"type": "random"}, "offsets": {"type": "random"}})
    config = RunConfig(devices=("cuda:0",), correctness_rounds=2, timing=TimingConfig(warmup=2, reps=20))
    trace = _run_one(definition, solution, workload, config)
    assert trace.evaluation.status.value == "PASSED", trace.evaluation.log
    timing_stats = trace.evaluation.performance.solution_timing
    assert timing_stats.mode == mode
    assert timing_stats.host_overhead_us > 0 and timing_stats.plan_host_us > 0


def test_the_example_datasets_flashinfer_wrappers_plan_apart_from_run(example_dataset):
    """Every FlashInfer wrapper solution of the example dataset (its host plan step is most of a call) defines a
    plan step beside its entry, with the entry's inputs, and its definition lists the inputs that plan may read;
    a solution with a plan step under a definition without plan_inputs would see its page table refilled."""
    import ast

    ds = TraceSet.load(example_dataset)
    wrappers = 0
    for name, solution in ds.solutions.items():
        definition = ds.definitions[solution.definition]
        path, function = solution.spec.entry_point.split("::")
        if not path.endswith(".py"):
            continue
        source = next(s.content for s in solution.sources if s.path == path)
        functions = {node.name: node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}
        plan = functions.get(plan_name(function) or "")
        if plan is not None:
            assert definition.plan_inputs, f"{name} plans, but {definition.name} lists no plan_inputs"
            assert [a.arg for a in plan.args.args] == list(definition.inputs), name
        if "flashinfer" in solution.spec.dependencies and "Wrapper(" in source:
            wrappers += 1
            assert plan is not None, f"{name} wraps a FlashInfer plan/run wrapper but has no plan step"
    assert wrappers >= 3  # decode, prefill, MLA
