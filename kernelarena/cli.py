"""The ``kernelarena`` command: parses arguments, calls the library, prints. No logic of its own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from .errors import DatasetError, KernelArenaError

app = typer.Typer(
    help="Verified, benchmarked LLM-inference kernels over FlashInfer-Trace datasets.\n\n"
         "Start with: kernelarena validate examples/dataset && kernelarena summary examples/dataset",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
# Piped output (CI logs, files) gets a wide fixed width so that tables are not truncated.
console = Console(width=None if sys.stdout.isatty() else 200)
DATASET = typer.Argument(..., help="Dataset folder (FlashInfer-Trace layout: definitions/, solutions/, ...).")
HARDWARE = typer.Option(None, "--hardware", help="Count the traces made on this hardware (a trace's "
                        "environment.hardware; 'any': all). Default: this machine's.")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            console.print(f"kernelarena {version('kernelarena')}", highlight=False)
        except PackageNotFoundError:  # run from a source folder that was never installed
            from . import __version__

            console.print(f"kernelarena {__version__} (not installed)", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    """Verified, benchmarked LLM-inference kernels over FlashInfer-Trace datasets."""


def _hardware(choice: Optional[str]) -> Optional[str]:
    """The hardware whose traces count: the option's value, None for 'any', else this machine's."""
    if choice == "any":
        return None
    if choice:
        return choice
    from .bench.environment import local_hardware

    return local_hardware()


def _load(path: Path, strict: bool = False):
    from .store import TraceSet

    try:
        return TraceSet.load(path, strict=strict)
    except DatasetError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)


@app.command()
def validate(path: Path = DATASET,
             warnings: bool = typer.Option(True, help="Also list warnings (unknown fields, missing solutions).")):
    """Check every file of a dataset and list every problem; exit 1 if there is any."""
    dataset = _load(path)
    for problem in dataset.problems:
        console.print(f"[red]error[/red] {problem}", highlight=False, soft_wrap=True)
    if warnings:
        for warning in dataset.warnings:
            console.print(f"[yellow]warning[/yellow] {warning}", highlight=False, soft_wrap=True)
    counts = (f"{len(dataset.definitions)} definitions, {len(dataset.solutions)} solutions, "
              f"{sum(map(len, dataset.workloads.values()))} workloads, {sum(map(len, dataset.traces.values()))} traces")
    if dataset.problems:
        console.print(f"[red]{len(dataset.problems)} problems[/red] ({counts} valid)")
        raise typer.Exit(1)
    console.print(f"[green]ok[/green]: {counts}, {len(dataset.warnings)} warnings")


@app.command()
def summary(path: Path = DATASET, hardware: Optional[str] = HARDWARE,
            as_json: bool = typer.Option(False, "--json", help="Print JSON (counts, and per hardware each "
                                                              "solution's geometric-mean speedup) for scripts.")):
    """A table per definition: solutions, workloads, traces, pass rate, best speedup (traces of one hardware)."""
    from .report.tables import summary_table

    dataset = _load(path)
    if as_json:
        import json

        from .report.summary import summary_data

        print(json.dumps(summary_data(dataset), indent=2))
        return
    chosen = _hardware(hardware)
    console.print(summary_table(dataset, chosen))
    console.print(f"traces of {chosen or 'every hardware'} (--hardware to choose)", highlight=False)
    if dataset.problems:
        console.print(f"[yellow]{len(dataset.problems)} invalid records skipped; see kernelarena validate[/yellow]")


@app.command()
def show(first: str = typer.Argument(..., metavar="[PATH] NAME", help="The dataset folder (or -d), then a "
                                     "definition, solution or workload uuid."),
         second: Optional[str] = typer.Argument(None, hidden=True),
         dataset_option: Optional[Path] = typer.Option(None, "--dataset", "-d", help="Dataset folder.")):
    """Print one record as JSON, with the traces that mention it: kernelarena show PATH NAME."""
    from .report.tables import find_record, traces_table

    if second is not None and dataset_option is not None:
        raise typer.BadParameter("give the dataset once: as PATH or as --dataset")
    if second is None and dataset_option is None:
        raise typer.BadParameter("give the dataset folder: kernelarena show PATH NAME")
    path, name = (Path(first), second) if second is not None else (dataset_option, first)
    dataset = _load(path)
    try:
        kind, record = find_record(dataset, name)
    except KeyError as e:
        console.print(f"[red]error:[/red] {e.args[0]}")
        raise typer.Exit(1)
    console.print(f"[bold]{kind}[/bold] {name}")
    console.print_json(record.to_json())
    console.print(traces_table(dataset, name))


@app.command()
def run(path: Path = DATASET,
        definition: List[str] = typer.Option([], "--definition", help="Only this definition (repeatable)."),
        solution: List[str] = typer.Option([], "--solution", help="Only this solution (repeatable)."),
        workload: List[str] = typer.Option([], "--workload", help="Only this workload uuid (repeatable)."),
        smallest: Optional[int] = typer.Option(None, min=1, help="Only the N smallest workloads of each definition "
                                                                "(a quick look; Triton's CPU interpreter is slow)."),
        devices: List[str] = typer.Option([], "--devices", help="Devices, e.g. cuda:0 (repeatable; default: "
                                                              "every visible GPU, else cpu)."),
        warmup: Optional[int] = typer.Option(None, min=0, help="Warm-up calls (default 10 on GPU, 1 on CPU)."),
        reps: Optional[int] = typer.Option(None, min=1, help="Timed calls (default 100 on GPU, 5 on CPU)."),
        loop_seconds: Optional[float] = typer.Option(None, "--loop-seconds", min=0.01,
                                                     help="Seconds a slow call's timed loop may last, rests "
                                                          "included: fewer timed calls, at least 20 (default 1.5; "
                                                          "not with --reps)."),
        rounds: int = typer.Option(3, min=1, help="Correctness rounds, each on fresh inputs."),
        timeout: float = typer.Option(300.0, help="Seconds allowed per evaluation (build included)."),
        timing: Optional[str] = typer.Option(None, help="cold (L2 flushed per call, CUPTI device time), events "
                                                       "(cold, CUDA events), warm, or graph (CUDA-graph replay); "
                                                       "default: each definition's own, else cold."),
        atol: Optional[float] = typer.Option(None, min=0, help="Absolute tolerance for every output (overrides)."),
        rtol: Optional[float] = typer.Option(None, min=0, help="Relative tolerance for every output (overrides)."),
        seed: int = typer.Option(0, help="Seed of the random inputs (recorded in each trace)."),
        evaluator: Optional[str] = typer.Option(None, help="How outputs are judged, overriding the definitions': "
                                                           "default, lowbit or sampling, or a JSON object such as "
                                                           "'{\"kind\": \"sampling\", \"draws\": 20000}'."),
        save: bool = typer.Option(True, "--save/--no-save", help="Append traces to the dataset's traces/."),
        strict: bool = typer.Option(False, help="Refuse a dataset with any invalid record (default: skip "
                                                "them with a warning)."),
        resume: bool = typer.Option(False, help="Leave out (solution, workload) pairs already traced on this "
                                                "hardware with the same settings."),
        fail_on_error: bool = typer.Option(False, help="Exit 1 when any trace is not PASSED (for CI)."),
        sandbox: bool = typer.Option(True, "--sandbox/--no-sandbox", help="Let solutions write only to their "
                                     "scratch folder and the build caches (Landlock, where available)."),
        lanes: Optional[int] = typer.Option(None, min=1, help="Evaluations at once per device (default 2 on a GPU, "
                                                              "timed loops still alone on it; 1 on the CPU)."),
        engine: str = typer.Option("local", help="local (a worker process per device here) or ray (the device "
                                                 "slots of a Ray cluster, of the kinds --devices names; "
                                                 "docs/scale.md)."),
        address: Optional[str] = typer.Option(None, help="Ray cluster address for --engine ray (default: "
                                                         "$RAY_ADDRESS, else a Ray instance started here).")):
    """Build, verify and time solutions on their workloads; write a trace for each (pass or fail). Solutions
    that cannot run on the devices (target_hardware, language) are skipped, each with its reason."""
    from .bench import RunConfig, TimingConfig
    from .bench.engines import make_engine
    from .bench.runner import RunInterrupted, TraceWriteError, check_devices, schedule
    from .bench.runner import run as run_dataset
    from .report.run_view import RunProgress, skipped_line, solution_table
    from .schema import EvaluatorSpec, Tolerance

    if (atol is None) != (rtol is None):
        raise typer.BadParameter("give --atol and --rtol together")
    if timing not in (None, "cold", "events", "warm", "graph"):
        raise typer.BadParameter("--timing is cold, events, warm or graph")
    try:
        judge = None if evaluator is None else EvaluatorSpec.model_validate_json(
            evaluator if evaluator.lstrip().startswith("{") else f'{{"kind": "{evaluator}"}}')
    except ValueError as e:
        raise typer.BadParameter(f"--evaluator: {e}")
    try:
        chosen_engine = make_engine(engine, address=address)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--engine")
    except ImportError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    try:
        if chosen_engine is None:  # an engine's devices are kinds of its slots, checked by the engine
            check_devices(devices)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--devices")
    try:
        timed = TimingConfig(warmup=warmup, reps=reps, mode=timing,
                             **({"loop_s": loop_seconds} if loop_seconds is not None else {}))
        config = RunConfig(devices=tuple(devices), correctness_rounds=rounds, timeout_s=timeout, seed=seed,
                           tolerance=Tolerance(atol=atol, rtol=rtol) if atol is not None else None,
                           evaluator=judge, timing=timed, sandbox=sandbox, lanes=lanes)
    except ValueError as e:  # pydantic's ValidationError is a ValueError too
        raise typer.BadParameter(str(e).replace("timeout_s=", "--timeout "))
    dataset = _load(path, strict=strict)
    if dataset.problems:
        console.print(f"[yellow]warning:[/yellow] {len(dataset.problems)} invalid records skipped (first: "
                      f"{dataset.problems[0]}); see kernelarena validate {path}", highlight=False, soft_wrap=True)
    try:
        plan = schedule(dataset, config, definition, solution, workload, smallest, resume, chosen_engine)
    except KeyError as e:
        console.print(f"[red]error:[/red] {e.args[0]}")
        raise typer.Exit(2)
    for skipped in plan.skipped:
        console.print(skipped_line(skipped), highlight=False, soft_wrap=True)
    if plan.resumed:
        console.print(f"--resume: {plan.resumed} evaluations already traced on this hardware", highlight=False)
    saved_note = f"traces appended under {dataset.layout.traces}" if save else "nothing saved (--no-save)"
    try:
        with RunProgress(console, plan.evaluations) as progress:
            report = run_dataset(dataset, config, definition, solution, workload, save=save,
                                 on_trace=progress.finished, on_start=progress.started, smallest=smallest,
                                 resume=resume, engine=chosen_engine)
    except RunInterrupted as e:
        console.print(solution_table(e.report))
        console.print(f"[yellow]interrupted[/yellow]: {len(e.report.traces)} traces finished; "
                      + (f"{len(e.report.traces)} appended under {dataset.layout.traces}" if save
                         else "nothing saved (--no-save)"), highlight=False)
        raise typer.Exit(130)
    except TraceWriteError as e:
        console.print(solution_table(e.report))
        console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print(solution_table(report))
    for error in report.definition_errors:
        from rich.markup import escape

        console.print(f"[red]definition {escape(error.definition)}, workload {escape(error.workload)}:[/red] "
                      f"{escape(error.message)}", highlight=False)
    if report.retried:
        console.print(f"{report.retried} evaluations started again after their evaluator was lost (docs/scale.md)")
    console.print(saved_note, highlight=False)
    if any(t.evaluation.environment.hardware.startswith("CPU") for t in report.traces):
        console.print("On a CPU, Triton runs in its interpreter and timing is wall-clock: these runs check the "
                      "pipeline and correctness; they do not rank kernels.", highlight=False)
    failed = [t for t in report.traces if not t.passed] + report.definition_errors
    if fail_on_error and failed:
        console.print(f"[red]{len(failed)} of {len(report.traces)} traces did not pass[/red] (--fail-on-error)")
        raise typer.Exit(1)


@app.command()
def report(path: Path = DATASET,
           output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (Markdown without it "
                                                                            "goes to the terminal)."),
           fmt: str = typer.Option("html", "--format", help="html (one self-contained page with charts) or md."),
           traces: List[Path] = typer.Option([], "--traces", help="Also read traces from this JSONL file, e.g. a "
                                                                 "GPU run's results (repeatable)."),
           definition: List[str] = typer.Option([], "--definition", help="Only this definition (repeatable)."),
           title: Optional[str] = typer.Option(None, help="The report's title.")):
    """Leaderboards per hardware and definition: solutions x workloads, charts, the traces' environment."""
    from .report.render import render_report, write_report

    if output is None and fmt != "md":
        raise typer.BadParameter("give --output (-o) for an HTML report", param_hint="--output")
    dataset = _load(path)
    try:
        text = render_report(dataset, fmt, traces, definition, title)
    except KeyError as e:
        console.print(f"[red]error:[/red] {e.args[0]}")
        raise typer.Exit(2)
    if output is None:
        print(text, end="")
        return
    size = len(text.encode())
    console.print(f"wrote {write_report(text, output)} ({size / 1e6:.1f} MB)" if size > 1e5 else
                  f"wrote {write_report(text, output)} ({size / 1e3:.0f} kB)")


@app.command("apply-table")
def apply_table(path: Path = DATASET,
                definition: Optional[str] = typer.Option(None, "--definition", help="Only this definition."),
                max_abs_error: Optional[float] = typer.Option(None, help="Ignore traces with a larger abs error."),
                max_rel_error: Optional[float] = typer.Option(None, help="Ignore traces with a larger rel error."),
                unseen: str = typer.Option("fallback", help="Policy for keys never benchmarked: fallback or nearest."),
                hardware: Optional[str] = HARDWARE):
    """Print the table apply() would route by: per definition and key, the chosen solution and its speedup."""
    from .apply import ApplyConfig, DispatchTable, RoutingPolicy
    from .apply.render import render_dispatch_table

    try:
        policy = RoutingPolicy(max_abs_error=max_abs_error, max_rel_error=max_rel_error, unseen=unseen)
    except ValueError as e:
        raise typer.BadParameter(str(e))
    table = DispatchTable.build(_load(path), ApplyConfig(default=policy, hardware=hardware))
    console.print(render_dispatch_table(table, f"apply() dispatch table of {path}", definition))
    console.print(f"traces of {table.hardware or 'every hardware'} (--hardware to choose)", highlight=False)


exercise_app = typer.Typer(help="Exercises of the learning path (exercises/): grade your answer.", no_args_is_help=True)
app.add_typer(exercise_app, name="exercise")


@exercise_app.command("check")
def exercise_check(path: Path = typer.Argument(..., help="An exercise folder (holds exercise.json)."),
                   device: Optional[str] = typer.Option(None, help="cpu or cuda:N (default: the first GPU, else cpu)."),
                   reference: bool = typer.Option(False, "--reference", help="Grade reference/ (the answer) instead "
                                                                            "of solution/."),
                   verbose: bool = typer.Option(False, "--verbose", help="Print the full log of each failure.")):
    """Grade an exercise: build your solution, run it on the exercise's workloads, compare with the answer."""
    from .exercises import check_exercise, grade_report

    grade = check_exercise(path, device=device, reference_answer=reference)
    for item in grade_report(grade, verbose):
        console.print(item, highlight=False, soft_wrap=isinstance(item, str))
    raise typer.Exit(0 if grade.passed else 1)


def main(argv: Optional[List[str]] = None) -> None:
    """Console-script entry point."""
    try:
        app(argv)
    except KernelArenaError as e:
        console.print(f"[red]error:[/red] {e}")
        raise SystemExit(2)


if __name__ == "__main__":
    main()
