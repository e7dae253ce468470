"""What the benchmark scripts share: the ``--out`` option, the machine and date stamp, markdown tables, and
each benchmark's results table in ``benchmarks/results/``.

A benchmark writes two things into its output folder (``--out``, default ``$OUT``):
- ``<name>_latest.md`` (and any raw files beside it): the full output of this run, stamped with machine and date;
- ``<name>.md``: the benchmark's results table, the committed ``benchmarks/results/<name>.md`` with this run's
  rows upserted: a row replaces the row of the same machine and key columns, other machines' rows stay.
Copy both into ``benchmarks/results/`` to publish a run (``--out benchmarks/results`` does it in place).
Timers come from ``kernelarena.bench.timing``; nothing here measures.
"""

from __future__ import annotations

import argparse
import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from kernelarena.bench.environment import cpu_model_name

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MACHINE, DATE = "machine", "date"


@dataclass(frozen=True)
class Stamp:
    """Where and when a run happened: ``machine`` (the GPU's name, else the CPU model) and ``date`` (ISO)."""

    machine: str
    date: str


def cpu_model() -> str:
    """The CPU's model name and core count, e.g. ``AMD EPYC 9654 96-Core Processor, 2 CPUs``."""
    return f"{cpu_model_name()}, {os.cpu_count()} CPUs"


def stamp(device: Optional[str] = None) -> Stamp:
    """Today's stamp for a run on ``device`` ("cuda", "cuda:1", "cpu"; None: the GPU when there is one)."""
    machine = None
    if device is None or device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            machine = torch.cuda.get_device_name(torch.device(device or "cuda"))
    return Stamp(machine or cpu_model(), datetime.date.today().isoformat())


def run_caption(output: str) -> str:
    """The closing caption of a `kernelarena run` ("time spent: ...") from its printed output, on one line: rich
    wraps a caption to the table's width whatever the console's, so its lines are joined here."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if "time spent:" in line:
            block = [line.strip()]
            # Rich pads each caption line to the table's width (a wrapped line that fills it has no indent): the
            # caption goes on while the lines are that wide.
            for following in lines[i + 1:]:
                if len(following) != len(line) or not following.strip():
                    break
                block.append(following.strip())
            return " ".join(block)
    return ""


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    """``--out DIR``: where the run's files go; default ``$OUT``, else None (the script only prints)."""
    default = Path(os.environ["OUT"]) if os.environ.get("OUT") else None
    parser.add_argument("--out", type=Path, default=default,
                        help="folder for <name>_latest.md and the updated <name>.md results table (default: $OUT; "
                             "without either, only printed); --out benchmarks/results publishes in place")


def timed_cases(dataset, solution_name: str, workload, device: str, copies: Optional[int] = None):
    """(call(i), outputs_of(i), copies) of a dataset solution on ``workload``, built for ``device``: ``copies``
    input sets (default: as many as a run's timed loop rotates, TimingConfig.copies_for) drawn from the seeds the
    evaluator times with (bench/evaluate.timing_seed, a run's default seed) and planned as it plans them, so a
    benchmark times what a run's timed loop times. Nothing is called yet."""
    from kernelarena.bench.config import RunConfig
    from kernelarena.bench.evaluate import Case, timed_input_sets, timing_seed
    from kernelarena.bench.inputs import allocate_outputs, materialize_inputs
    from kernelarena.bench.plan import plan_case
    from kernelarena.build import build_solution

    solution = dataset.solutions[solution_name]
    definition = dataset.definitions[solution.definition]
    runnable = build_solution(solution, device=device)
    dps = runnable.destination_passing_style
    config = RunConfig()

    def make(seed: int):
        return materialize_inputs(definition, workload, device, seed, dataset.root)

    inputs = [make(timing_seed(config, i)) for i in range(copies)] if copies else timed_input_sets(config, make)
    cases = [Case(i, allocate_outputs(definition, workload, device) if dps else {}) for i in inputs]
    planned = [plan_case(runnable, case)[0] for case in cases]
    return (lambda i: cases[i].call(planned[i], dps)), (lambda i: tuple(cases[i].outputs.values())), len(cases)


def emit(lines: Sequence[str], out: Optional[Path], name: str) -> str:
    """A diagnostic's report: ``lines`` joined, printed, and written to ``out/name`` when ``out`` is given."""
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    return text


def _text(value: object) -> str:
    """A cell's text: floats with two decimals, one line."""
    return f"{value:.2f}" if isinstance(value, float) else str(value).replace("\n", " ")


def _cell(value: object) -> str:
    """A cell as written in the table: its text with ``|`` escaped."""
    return _text(value).replace("|", "\\|")


def markdown_table(columns: Sequence[str], rows: Sequence[Mapping[str, object]]) -> str:
    """A markdown table with ``columns`` as its header, one line per row (a missing cell is "-"; floats get
    two decimals). Ends with a newline."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(column, "-")) for column in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _split_row(line: str) -> List[str]:
    cells, current, escaped = [], "", False
    for char in line.strip()[1:]:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "|":
            cells.append(current.strip())
            current = ""
        else:
            current += char
    return cells


def read_results(path: Path) -> tuple[str, List[str], List[Dict[str, str]]]:
    """A results table file: (the text above the table, the columns, the rows as column -> cell text).

    A missing file reads as no text, no columns and no rows. Raises ValueError naming the file when it holds
    no table, or a row whose cell count differs from the header's."""
    if not path.exists():
        return "", [], []
    lines = path.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None or start + 1 >= len(lines) or not lines[start + 1].startswith("|-"):
        raise ValueError(f"{path}: no markdown table (a header line and a |---| line) in this results file")
    columns = _split_row(lines[start])
    rows = []
    for number, line in enumerate(lines[start + 2:], start + 3):
        if not line.startswith("|"):
            break
        cells = _split_row(line)
        if len(cells) != len(columns):
            raise ValueError(f"{path}:{number}: {len(cells)} cells, the header has {len(columns)}")
        rows.append(dict(zip(columns, cells)))
    return "\n".join(lines[:start]).strip(), columns, rows


def upsert_results(source: Path, target: Path, title: str, key: Sequence[str], columns: Sequence[str],
                   rows: Sequence[Mapping[str, object]], run: Stamp) -> List[Dict[str, str]]:
    """Write ``target``: the results table read from ``source`` (may be the same file, or absent) with ``rows``
    upserted under ``run``'s machine and date. A row replaces the row with the same machine and ``key`` cells;
    the others stay. Columns are machine, date, then ``columns`` (a column the old table lacks reads "-").
    Rows are sorted by machine, then key. Returns the rows written."""
    _, _, old_rows = read_results(source)
    header = [MACHINE, DATE, *columns]
    merged: Dict[tuple, Dict[str, str]] = {}
    for row in old_rows:
        merged[tuple(row.get(c, "-") for c in (MACHINE, *key))] = {c: row.get(c, "-") for c in header}
    for row in rows:
        cells = {MACHINE: run.machine, DATE: run.date, **{c: _text(row.get(c, "-")) for c in columns}}
        merged[tuple(cells[c] for c in (MACHINE, *key))] = cells
    written = [merged[k] for k in sorted(merged)]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"{title}\n\n" + markdown_table(header, written))
    return written


def publish(name: str, out: Path, latest_text: str, title: str, key: Sequence[str], columns: Sequence[str],
            rows: Sequence[Mapping[str, object]], run: Stamp, latest_name: Optional[str] = None) -> Path:
    """Write a run's ``out/<name>_latest.md`` (``latest_text``; ``latest_name`` instead when given) and
    ``out/<name>.md`` (the committed results table with ``rows`` upserted); return the table's path."""
    out.mkdir(parents=True, exist_ok=True)
    text = latest_text if latest_text.endswith("\n") else latest_text + "\n"
    (out / (latest_name or f"{name}_latest.md")).write_text(text)
    table = out / f"{name}.md"
    source = table if table.exists() else RESULTS_DIR / f"{name}.md"
    upsert_results(source, table, title, key, columns, rows, run)
    return table
