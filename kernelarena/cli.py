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
def summary(path: Path = DATASET,
            as_json: bool = typer.Option(False, "--json", help="Print JSON (counts, and per hardware each "
                                                              "solution's geometric-mean speedup) for scripts.")):
    """A table per definition: solutions, workloads, traces, pass rate, best speedup."""
    from .report.tables import summary_table

    dataset = _load(path)
    if as_json:
        import json

        from .report.summary import summary_data

        print(json.dumps(summary_data(dataset), indent=2))
        return
    console.print(summary_table(dataset))
    if dataset.problems:
        console.print(f"[yellow]{len(dataset.problems)} invalid records skipped; see kernelarena validate[/yellow]")


@app.command()
def show(name: str = typer.Argument(..., help="A definition, solution or workload uuid."),
         path: Path = typer.Option(Path("examples/dataset"), "--dataset", "-d", help="Dataset folder.")):
    """Print one record as JSON, with the traces that mention it."""
    from .report.tables import find_record, traces_table

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
        smallest: Optional[int] = typer.Option(None, help="Only the N smallest workloads of each definition (a "
                                                         "quick look; Triton's CPU interpreter is slow)."),
        devices: List[str] = typer.Option([], "--devices", help="Devices, e.g. cuda:0 (repeatable; default: "
                                                              "every visible GPU, else cpu)."),
        warmup: Optional[int] = typer.Option(None, help="Warm-up calls (default 10 on GPU, 1 on CPU)."),
        reps: Optional[int] = typer.Option(None, help="Timed calls (default 100 on GPU, 5 on CPU)."),
        rounds: int = typer.Option(3, help="Correctness rounds, each on fresh inputs."),
        timeout: float = typer.Option(300.0, help="Seconds allowed per evaluation (build included)."),
        timing: Optional[str] = typer.Option(None, help="cold (L2 flushed per call), warm, or graph (CUDA-graph "
                                                       "replay); default: each definition's own, else cold."),
        atol: Optional[float] = typer.Option(None, help="Absolute tolerance for every output (overrides)."),
        rtol: Optional[float] = typer.Option(None, help="Relative tolerance for every output (overrides)."),
        seed: int = typer.Option(0, help="Seed of the random inputs (recorded in each trace)."),
        save: bool = typer.Option(True, "--save/--no-save", help="Append traces to the dataset's traces/."),
        sandbox: bool = typer.Option(True, "--sandbox/--no-sandbox", help="Let solutions write only to their "
                                     "scratch folder and the build caches (Landlock, where available).")):
    """Build, verify and time solutions on their workloads; write a trace for each (pass or fail)."""
    from .bench import RunConfig, TimingConfig
    from .bench.runner import count_evaluations, run as run_dataset
    from .report.tables import run_table
    from .schema import Tolerance

    if (atol is None) != (rtol is None):
        raise typer.BadParameter("give --atol and --rtol together")
    if timing not in (None, "cold", "warm", "graph"):
        raise typer.BadParameter("--timing is cold, warm or graph")
    dataset = _load(path, strict=True)
    config = RunConfig(devices=tuple(devices), correctness_rounds=rounds, timeout_s=timeout, seed=seed,
                       tolerance=Tolerance(atol=atol, rtol=rtol) if atol is not None else None,
                       timing=TimingConfig(warmup=warmup, reps=reps, mode=timing), sandbox=sandbox)
    try:
        total = count_evaluations(dataset, definition, solution, workload, smallest)
    except KeyError as e:
        console.print(f"[red]error:[/red] {e.args[0]}")
        raise typer.Exit(2)
    from rich.progress import Progress

    with Progress(console=console, transient=not sys.stdout.isatty()) as progress:
        bar = progress.add_task("evaluating", total=total)

        def advance(trace):
            status = trace.evaluation.status.value
            progress.update(bar, advance=1, description=f"{trace.solution[:40]} {status}")

        report = run_dataset(dataset, config, definition, solution, workload, save=save, on_trace=advance,
                             smallest=smallest)
    console.print(run_table(report))
    for error in report.definition_errors:
        from rich.markup import escape

        console.print(f"[red]definition {escape(error.definition)}, workload {escape(error.workload)}:[/red] "
                      f"{escape(error.message)}", highlight=False)
    if save:
        console.print(f"traces appended under {dataset.layout.traces}")


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
                unseen: str = typer.Option("fallback", help="Policy for keys never benchmarked: fallback or nearest.")):
    """Print the table apply() would route by: per definition and key, the chosen solution and its speedup."""
    from .apply import ApplyConfig, DispatchTable, RoutingPolicy
    from .apply.render import render_dispatch_table

    try:
        policy = RoutingPolicy(max_abs_error=max_abs_error, max_rel_error=max_rel_error, unseen=unseen)
    except ValueError as e:
        raise typer.BadParameter(str(e))
    table = DispatchTable.build(_load(path), ApplyConfig(default=policy))
    console.print(render_dispatch_table(table, f"apply() dispatch table of {path}", definition))


def main(argv: Optional[List[str]] = None) -> None:
    """Console-script entry point."""
    try:
        app(argv)
    except KernelArenaError as e:
        console.print(f"[red]error:[/red] {e}")
        raise SystemExit(2)


if __name__ == "__main__":
    main()
