"""Example 02: write a Definition, Workloads and a Solution in Python and as JSON, save them as a dataset,
validate it, and evaluate the solution.

    python examples/02_trace_schema/trace_schema.py [--out DIR]

The operator is SiLU-and-mul, the activation of Llama's MLP: out = silu(x[:, :d]) * x[:, d:].
"""

import argparse
import json
import tempfile
from pathlib import Path

from pydantic import ValidationError

from kernelarena.bench import RunConfig, TimingConfig, run
from kernelarena.schema import Definition, Solution, Trace, Workload
from kernelarena.store import TraceSet

REFERENCE = '''import torch


def run(x):
    d = x.shape[-1] // 2
    return (torch.nn.functional.silu(x[:, :d].float()) * x[:, d:].float()).to(x.dtype)
'''

SOLUTION = '''import torch


def run(x, out):
    d = x.shape[-1] // 2
    gate, up = x[:, :d].float(), x[:, d:].float()
    out.copy_(gate * torch.sigmoid(gate) * up)
'''


def section(title: str) -> None:
    print(f"\n== {title}")


def main(out: Path) -> None:
    section("1. a Definition in Python: named axes, typed inputs and outputs, a PyTorch reference")
    definition = Definition(
        name="silu_and_mul_d1024", op_type="activation",
        description="SiLU(gate) * up, where x = [gate | up] along the last dim; float32 math.",
        axes={"num_tokens": {"type": "var", "description": "Rows: varies per call."},
              "d": {"type": "const", "value": 1024}, "two_d": {"type": "const", "value": 2048}},
        inputs={"x": {"shape": ["num_tokens", "two_d"], "dtype": "bfloat16"}},
        outputs={"out": {"shape": ["num_tokens", "d"], "dtype": "bfloat16"}},
        reference=REFERENCE, constraints=["two_d == 2 * d"])
    text = definition.to_json(indent=2)
    print(definition.to_json()[:300] + " ...")

    section("2. the same Definition from JSON (what a dataset file holds); it round-trips exactly")
    again = Definition.model_validate_json(text)
    print("equal after the round trip:", again == definition)

    section("3. Workloads: values for the variable axes, and where the inputs come from")
    workloads = [Trace(definition=definition.name, workload=Workload(
        uuid=f"silu-{n}", axes={"num_tokens": n}, inputs={"x": {"type": "random"}})) for n in (1, 7, 64)]
    print(json.dumps(workloads[0].to_json_dict()))

    section("4. a Solution: language, entry point, sources (destination-passing: outputs come last)")
    solution = Solution(
        name="silu_and_mul_d1024_torch_dps", definition=definition.name, author="example 02",
        spec={"language": "python", "target_hardware": ["cpu", "cuda"], "entry_point": "silu.py::run",
              "destination_passing_style": True},
        sources=[{"path": "silu.py", "content": SOLUTION}])
    print(f"{solution.name}: {solution.spec.language.value}, entry {solution.spec.entry_point}")

    section("5. bad records are refused with the field at fault")
    try:
        Solution(name="broken", definition=definition.name, author="x",
                 spec={"language": "python", "target_hardware": ["cpu"], "entry_point": "run"},
                 sources=[{"path": "silu.py", "content": SOLUTION}])
    except ValidationError as e:
        error = e.errors()[0]
        print(f"Solution refused: {'.'.join(map(str, error['loc']))}: {error['msg']}")

    section("6. save as a dataset (the FlashInfer-Trace layout) and load it back")
    dataset = TraceSet(out)
    dataset.add_definition(definition)
    dataset.add_solution(solution)
    dataset.add_workloads(workloads)
    for path in sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")):
        print("  ", path.relative_to(out))
    loaded = TraceSet.load(out)
    print(f"loaded: {len(loaded.definitions)} definition, {len(loaded.solutions)} solution, "
          f"{len(loaded.workloads_for(definition.name))} workloads, {len(loaded.problems)} problems")

    section("7. a bad line in a dataset file is reported with file, line and field (kernelarena validate)")
    bad = Trace(definition=definition.name, workload=Workload(uuid="silu-bad", axes={"rows": 3},
                                                              inputs={"x": {"type": "random"}}))
    workload_file = dataset.layout.workload_file(definition.op_type, definition.name)
    with workload_file.open("a") as f:
        f.write(bad.to_json() + "\n")
    for problem in TraceSet.load(out, strict=False).problems:
        print("  ", problem)
    lines = workload_file.read_text().splitlines()[:-1]
    workload_file.write_text("\n".join(lines) + "\n")  # take the bad line out again

    section("8. evaluate the solution on every workload (isolated worker, correctness, timing)")
    config = RunConfig(devices=(), correctness_rounds=2, timing=TimingConfig(warmup=1, reps=5))
    report = run(TraceSet.load(out), config)
    for trace in report.traces:
        performance = trace.evaluation.performance
        timing = f"{performance.latency_ms * 1e3:.1f} us, {performance.speedup_factor:.2f}x the reference" \
            if performance else trace.evaluation.log[-200:]
        print(f"  num_tokens={trace.workload.axes['num_tokens']:>3}: {trace.evaluation.status.value} ({timing})")
    print(f"traces appended to {dataset.layout.trace_file(definition.op_type, definition.name).relative_to(out)}")
    print("\nok")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Dataset folder to write (default: a temporary folder).")
    args = parser.parse_args()
    if args.out is not None:
        main(args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="kernelarena-example-02-") as tmp:
            main(Path(tmp) / "dataset")
