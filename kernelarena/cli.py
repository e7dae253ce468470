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
def summary(path: Path = DATASET):
    """A table per definition: solutions, workloads, traces, pass rate, best speedup."""
    from .report.tables import summary_table

    dataset = _load(path)
    console.print(summary_table(dataset))
    if dataset.problems:
        console.print(f"[yellow]{len(dataset.problems)} invalid records skipped; see kernelarena validate[/yellow]")


@app.command()
def show(name: str = typer.Argument(..., help="A definition, solution or workload uuid."),
         path: Path = typer.Option(Path("examples/dataset"), "--dataset", "-d", help="Dataset folder.")):
    """Print one record as JSON, with the traces that mention it."""
    from .report.tables import find_record

    dataset = _load(path)
    try:
        kind, record = find_record(dataset, name)
    except KeyError as e:
        console.print(f"[red]error:[/red] {e.args[0]}")
        raise typer.Exit(1)
    console.print(f"[bold]{kind}[/bold] {name}")
    console.print_json(record.to_json())


def main(argv: Optional[List[str]] = None) -> None:
    """Console-script entry point."""
    try:
        app(argv)
    except KernelArenaError as e:
        console.print(f"[red]error:[/red] {e}")
        raise SystemExit(2)


if __name__ == "__main__":
    main()
