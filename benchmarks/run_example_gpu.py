"""GPU evidence for the evaluation engine: `kernelarena run` over the example dataset, and one kernel timed by
our harness and by an independent timer (triton.testing.do_bench) in the same process.

    python3 -m benchmarks.run_example_gpu [--out DIR]

Writes DIR/example_traces.jsonl (every trace), DIR/run_example.md (the closing table, the wall-time breakdown
and the timer comparison). Run on the GPU machine; benchmarks/README.md has the exact command.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import add_out_argument, publish, stamp
from kernelarena.bench import RunConfig, run
from kernelarena.bench.config import TimingConfig
from kernelarena.bench.evaluate import Case
from kernelarena.bench.inputs import allocate_outputs, materialize_inputs
from kernelarena.bench.timing import time_calls
from kernelarena.build import build_solution
from kernelarena.store import TraceSet

ROOT = Path(__file__).resolve().parents[1]


def compare_timers(dataset: TraceSet, solution: str, batch: int, host_ahead: bool = True) -> dict:
    """Median latency of one solution by our harness (cold L2, CUDA events) and by triton's do_bench."""
    import triton.testing

    s = dataset.solutions[solution]
    d = dataset.definitions[s.definition]
    w = next(w for w in dataset.workloads_for(d.name) if w.axes.get("batch_size") == batch)
    fn = build_solution(s, device="cuda:0")
    inputs = materialize_inputs(d, w, "cuda:0", 1, dataset.root)
    case = Case(inputs, allocate_outputs(d, w, "cuda:0"))
    ours, _ = time_calls(lambda i: case.call(fn, True), 1, "cuda:0",
                         TimingConfig(warmup=25, reps=200, host_ahead=host_ahead),
                         lambda i: tuple(case.outputs.values()), check=False)
    theirs = triton.testing.do_bench(lambda: case.call(fn, True), warmup=25, rep=100, return_mode="median")
    return {"solution": solution, "workload": w.uuid, "batch": batch, "host_ahead": host_ahead,
            "host_us": ours.host_overhead_us, "ours_ms": ours.median_ms,
            "do_bench_ms": theirs, "ratio": ours.median_ms / theirs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_out_argument(parser)
    parser.add_argument("--definition", action="append", default=[], help="only these definitions")
    parser.add_argument("--tag", default="", help="suffix of the output file names")
    args = parser.parse_args()
    if args.out is None:
        parser.error("--out DIR (or $OUT) is needed: the traces are written there as they land")
    work = Path(tempfile.mkdtemp()) / "dataset"
    shutil.copytree(ROOT / "examples" / "dataset", work)
    dataset = TraceSet.load(work)

    args.out.mkdir(parents=True, exist_ok=True)
    live = open(args.out / f"example_traces{args.tag}.jsonl", "w")

    def progress(trace) -> None:  # one line per trace as it lands, so a cut-off run still says where it was
        p = trace.evaluation.performance
        print(f"{time.perf_counter() - started:7.1f}s {trace.solution} {trace.workload.axes} "
              f"{trace.evaluation.status.value} " + (f"{p.latency_ms * 1e3:.1f} us" if p else ""), flush=True)
        live.write(trace.to_json() + "\n")
        live.flush()

    started = time.perf_counter()
    report = run(dataset, RunConfig(), definitions=args.definition, on_trace=progress)
    first_wall = time.perf_counter() - started
    started = time.perf_counter()
    second = run(dataset, RunConfig(), definitions=["rmsnorm_h4096"], save=False)
    second_wall = time.perf_counter() - started

    timers = [compare_timers(dataset, "rmsnorm_h4096_kernelarena_cuda", b) for b in (1024, 8192)]
    timers += [compare_timers(dataset, "rmsnorm_h4096_kernelarena_triton", 1024, ahead) for ahead in (True, False)]

    run_stamp = stamp("cuda:0")
    lines = ["# kernelarena run on the example dataset", "",
             f"{run_stamp.machine}, {run_stamp.date}, torch {torch.__version__}, "
             f"command: python3 -m benchmarks.run_example_gpu", "",
             f"First run: {len(report.traces)} traces in {first_wall:.1f} s; statuses {report.status_counts()}.",
             "Where the time went (summed over evaluations, seconds): "
             + ", ".join(f"{k} {v:.1f}" for k, v in sorted(report.phases.items()))
             + f"; worker start-ups {report.worker_startup_s:.1f}, restarts {report.worker_restarts}.",
             f"Second run of rmsnorm_h4096 (build cache warm): {len(second.traces)} traces in {second_wall:.1f} s, "
             f"build {second.phases.get('build', 0):.2f} s.", "",
             "| definition | solutions | passed | failed | best speedup | best solution |", "|---|---|---|---|---|---|"]
    for row in report.by_definition():
        best = f"{row.best_speedup:.2f}x" if row.best_speedup else "-"
        lines.append(f"| {row.definition} | {row.solutions} | {row.passed} | {row.failed} | {best} | "
                     f"{row.best_solution or '-'} |")
    lines += ["", "Per trace (latency of the solution, reference, speedup):", "",
              "| definition | solution | axes | status | latency us | reference us | speedup |",
              "|---|---|---|---|---|---|---|"]
    for t in sorted(report.traces, key=lambda t: (t.definition, str(t.workload.axes), t.solution)):
        p = t.evaluation.performance
        lines.append(f"| {t.definition} | {t.solution} | {t.workload.axes} | {t.evaluation.status.value} | "
                     + (f"{p.latency_ms * 1e3:.1f} | {p.reference_latency_ms * 1e3:.1f} | {p.speedup_factor:.2f}x |"
                        if p else "- | - | - |"))
    lines += ["", "Same kernel, two timers (cold L2 for ours; do_bench flushes L2 too):", "",
              "| solution | batch | host ahead | host us per call | ours (us) | triton do_bench (us) "
              "| ours / do_bench |",
              "|---|---|---|---|---|---|---|"]
    for c in timers:
        lines.append(f"| {c['solution']} | {c['batch']} | {c['host_ahead']} | {c['host_us']:.1f} | "
                     f"{c['ours_ms'] * 1e3:.2f} | {c['do_bench_ms'] * 1e3:.2f} | {c['ratio']:.3f} |")
    failures = [t for t in report.traces if not t.passed]
    if failures:
        lines += ["", "Failures (first line of the log):", ""]
        lines += [f"- {t.solution} {t.workload.axes}: {t.evaluation.status.value}: "
                  f"{(t.evaluation.log.strip().splitlines() or [''])[-1][:200]}" for t in failures]
    text = "\n".join(lines) + "\n"
    print(text)
    rows = [{"definition": row.definition, "solutions": row.solutions, "passed": row.passed, "failed": row.failed,
             "best speedup": f"{row.best_speedup:.2f}x" if row.best_speedup else "-",
             "best solution": row.best_solution or "-"} for row in report.by_definition()]
    table = publish(f"run_example{args.tag}", args.out, text, TITLE, key=["definition"], columns=COLUMNS, rows=rows,
                    run=run_stamp)
    print(f"results table: {table}")


COLUMNS = ["definition", "solutions", "passed", "failed", "best speedup", "best solution"]
TITLE = """# kernelarena run on the example dataset

`python3 -m benchmarks.run_example_gpu --out $OUT` runs `kernelarena run` over examples/dataset on a GPU: per
definition, how many solutions it has, how many traces passed or failed, and the highest speedup over the
reference of any passing trace, with its solution. One row per machine and definition, the latest run of each;
`run_example_latest.md` holds the latest run's per-trace table, phases and timer comparison, and its traces
(example_traces.jsonl) are committed as `run_example_h100_traces.jsonl` for the example report."""


if __name__ == "__main__":
    main()
