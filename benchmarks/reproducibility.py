"""Do our latencies repeat, and do they agree with an independent timer? The example dataset evaluated twice
(builds warm for both runs), every (solution, workload) compared; then each passed trace's kernels timed with
CUPTI (the PyTorch profiler's device-activity durations) and set against the trace's device-time latency.

    source benchmarks/gpu_env.sh && python3 -m benchmarks.reproducibility --out $OUT [--definitions NAME ...]
    python3 -m benchmarks.reproducibility --merge A.json B.json ... --out DIR   (one report of split runs)

Writes $OUT/reproducibility_<machine>.md (a table per run pair and the CUPTI ratios; its last line reads
``max spread X%``), $OUT/reproducibility_<machine>.json (every figure) and $OUT/reproducibility.md (the results
table with this machine's rows upserted). A pair's spread is |a-b|/min(a,b); a
pair under 10 us counts as 0 when |a-b| <= 0.5 us (a timer's resolution there), else with its relative spread.
On a CPU (``--device cpu``, for checking the script) the CUPTI step is left out.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from benchmarks.common import Stamp, publish, timed_cases

ROOT = Path(__file__).resolve().parents[1]

SMALL_US = 10.0  # pairs under this many microseconds may differ by ABSOLUTE_US and count as equal
ABSOLUTE_US = 0.5


# ---------------------------------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class Pair:
    """One (solution, workload) in both runs."""

    definition: str
    solution: str
    workload: str
    axes: str
    first_us: Optional[float]
    second_us: Optional[float]
    host_us: Optional[float] = None
    plan_us: Optional[float] = None
    mode: str = "-"
    status: str = "PASSED"
    """PASSED when both runs passed; else both statuses, "first/second"."""
    not_alone: int = 0
    """Of the two runs, how many timed this pair's loop without the device lock (TimingStats.device_alone)."""

    @property
    def spread(self) -> Optional[float]:
        """|a-b|/min(a,b), 0 for a pair under SMALL_US within ABSOLUTE_US; None unless both runs passed."""
        return pair_spread(self.first_us, self.second_us)


def pair_spread(a_us: Optional[float], b_us: Optional[float]) -> Optional[float]:
    """The spread of two latencies in microseconds (see the module docstring); None if either is missing."""
    if a_us is None or b_us is None:
        return None
    low, diff = min(a_us, b_us), abs(a_us - b_us)
    if low < SMALL_US and diff <= ABSOLUTE_US:
        return 0.0
    return diff / low if low > 0 else float("inf")


def _latency_us(trace) -> Optional[float]:
    return trace.evaluation.performance.latency_ms * 1e3 if trace.passed else None


def compare_runs(first: Sequence, second: Sequence) -> List[Pair]:
    """Pair the traces of two runs by (definition, solution, workload uuid), sorted; a trace present in one run
    only is paired with nothing (status names the missing side)."""
    def key(t):
        return t.definition, t.solution, t.workload.uuid

    a, b = {key(t): t for t in first}, {key(t): t for t in second}
    pairs = []
    for k in sorted(set(a) | set(b)):
        ta, tb = a.get(k), b.get(k)
        some = ta or tb
        timing = ta.evaluation.performance.solution_timing if ta is not None and ta.passed else None
        status = "PASSED" if ta is not None and tb is not None and ta.passed and tb.passed else \
            f"{ta.evaluation.status.value if ta else 'missing'}/{tb.evaluation.status.value if tb else 'missing'}"
        pairs.append(Pair(
            definition=k[0], solution=k[1], workload=k[2], axes=_axes(some.workload.axes),
            first_us=_latency_us(ta) if ta is not None else None,
            second_us=_latency_us(tb) if tb is not None else None,
            host_us=timing.host_overhead_us if timing else None, plan_us=timing.plan_host_us if timing else None,
            mode=timing.mode if timing else "-", status=status,
            not_alone=sum(1 for t in (ta, tb) if t is not None and t.passed
                          and t.evaluation.performance.solution_timing.device_alone is False)))
    return pairs


def _axes(axes: Dict[str, int]) -> str:
    # The axes a reader recognises a workload by; page counts follow from them.
    shown = {k: v for k, v in axes.items() if k in ("batch_size", "total_q", "num_kv_indices")}
    return " ".join(f"{k}={v}" for k, v in (shown or axes).items())


def max_spread(pairs: Iterable[Pair]) -> float:
    """The largest spread over the pairs that passed in both runs (0 when there is none)."""
    return max((p.spread for p in pairs if p.spread is not None), default=0.0)


# ---------------------------------------------------------------------------------------------- CUPTI
def cupti_per_trace(dataset, items: Sequence[Tuple[str, str, object]], device: str, calls: int,
                    deadline: Optional[float] = None) -> Dict[Tuple[str, str, str], float]:
    """Device-activity microseconds per call (the sum of the call's kernel, copy and set durations, the median of
    ``calls`` calls) of each (definition, solution, workload) in ``items`` on the workload's timed input sets,
    launched as the timed loop launches them: the L2 flushed, then a sleep kernel ahead of the call so that the
    host gets ahead and the call's kernels run back to back, the flush, the sleep and the plan step left out.
    The attribution is the harness's own (kernelarena/bench/device_activity.py); this profile is taken apart
    from both runs. Past ``deadline`` (a ``time.perf_counter()`` value) the remaining items are left out, and a
    line says how many."""
    import torch

    from kernelarena.bench.timing import l2_flush_buffer

    flush = l2_flush_buffer(torch.device(device))
    out = {}
    for index, (definition, solution, workload) in enumerate(items):
        if deadline is not None and time.perf_counter() > deadline:
            print(f"CUPTI: {index} of {len(items)} passed traces profiled before the time budget ran out; the "
                  "rest have no CUPTI ratio", flush=True)
            break
        try:
            out[(definition, solution, workload.uuid)] = _cupti_one(dataset, solution, workload, device, calls,
                                                                    flush)
        except Exception as e:  # one solution's failure here leaves its ratio out, not the report
            print(f"CUPTI timing of {solution} on {workload.axes} failed: {e!r}", flush=True)
    return out


def passed_items(traces: Sequence) -> List[Tuple[str, str, object]]:
    """(definition, solution, workload) of each passed trace: what ``cupti_per_trace`` profiles."""
    return [(t.definition, t.solution, t.workload) for t in traces if t.passed]


def _cupti_one(dataset, solution: str, workload, device: str, calls: int, flush) -> float:
    """Device-activity microseconds per call of one solution on one workload (see cupti_per_trace): the median
    over ``calls`` calls rotating the timed loop's input sets (as many as it rotates: TimingConfig.copies_for;
    with four where the run's loop had one, the MoE at hidden size 7168, whose 2.6 GB sets allow one, read up to
    1.19x its traces, H200, 2026-12-03), torch's generators seeded per set as the timer seeds them, so a kernel
    whose time follows its random draws (a rejection sampler) draws what it drew when timed (with one set and
    unseeded, FlashInfer's samplers read 0.85-1.38x of their traces). The sleep ahead is 3x the call's host
    time: the profiler's callbacks lengthen the host side of a profiled call (the harness sizes its own sleep
    from profiled calls; a longer sleep only delays the call). Without it a host-bound call's kernels ran one
    by one as the host launched them: PyTorch's RMSNorm at batch 32 and our Triton rope at one token had trace /
    profile ratios of 1.069 and 1.052 without it (benchmarks/diag_cupti_ratio.py takes both ways)."""
    import torch

    from kernelarena.bench.device_activity import profile_calls
    from kernelarena.bench.timing import RANDOM_SEED, host_ahead_us, sleep_cycles_per_us

    call, _, copies = timed_cases(dataset, solution, workload, device)
    made, host = [], []
    with torch.no_grad():
        for i in range(2 * copies):  # warm: lazy compilation and first-call allocations stay out of the profile
            flush.zero_()
            torch.cuda.synchronize()
            started = time.perf_counter()
            call(i % copies)
            host.append(time.perf_counter() - started)
        torch.cuda.synchronize()
        cycles = int(host_ahead_us(3 * statistics.median(host[copies:])) * sleep_cycles_per_us(torch.device(device)))

        def before() -> None:
            flush.zero_()
            torch.manual_seed(RANDOM_SEED + len(made) % copies)
            made.append(None)
            torch.cuda._sleep(cycles)

        activity = profile_calls(lambda r: call(r % copies), calls, before=before)
    if activity.problem:
        raise RuntimeError(activity.problem)
    return statistics.median(activity.sum_us())


def recupti(path: Path, dataset, definitions: Sequence[str], solutions: Sequence[str], device: str, calls: int,
            out: Path, tag: str) -> Path:
    """The result JSON at ``path`` with the CUPTI figures of its passed pairs (those of ``definitions`` and
    ``solutions`` where given) taken again by ``cupti_per_trace``, written as a report of its own under ``out``
    (``tag`` names it) that ``--merge`` takes in place of the first."""
    machine, pairs, cupti = load_pairs(path)
    workloads = {(d, w.workload.uuid): w.workload for d in dataset.workloads for w in dataset.workloads[d]}
    items = [(p.definition, p.solution, workloads[(p.definition, p.workload)]) for p in pairs
             if p.spread is not None and (not definitions or p.definition in definitions)
             and (not solutions or p.solution in solutions)]
    started = time.perf_counter()
    fresh = cupti_per_trace(dataset, items, device, calls)
    cupti.update(fresh)
    axes = {(p.definition, p.solution, p.workload): p.axes for p in pairs}
    header = [f"# Reproducibility: `{Path(path).name}` with its CUPTI figures taken again", "",
              f"{machine}, {datetime.date.today().isoformat()}: the pairs of `{Path(path).name}` as measured there; "
              f"the CUPTI figures of {len(fresh)} of its pairs taken again ({time.perf_counter() - started:.0f} s, "
              f"{calls} calls each, the L2 flushed and the sleep ahead before each call: "
              + ", ".join(f"{key[1]} at {axes[key]}" for key in sorted(fresh)) + ")."]
    return write_report(out, tag, machine, pairs, cupti, header)


# ---------------------------------------------------------------------------------------------- report
def _us(value: Optional[float]) -> str:
    return f"{value:.1f}" if value is not None else "-"


KEY = ["definition", "solution", "workload"]
COLUMNS = [*KEY, "timing", "run 1 us", "run 2 us", "spread", "host us", "plan us", "CUPTI us", "run 1 / CUPTI"]
TITLE = """# Reproducibility: the same traces measured twice

`python3 -m benchmarks.reproducibility --out $OUT` (builds warmed first, then two runs of the example dataset with
the default timing): per machine, definition, solution and workload, the latency of both runs (median us per call),
their spread |a-b|/min(a,b) (a pair under 10 us counts as 0 when within 0.5 us; a status where a run failed), host
and plan us of one call, and the CUPTI kernel sum with the ratio latency / CUPTI (events: > 1 by their own cost and
the gaps between kernels; CUPTI: about 1, read again apart from both runs).
The latest run's full output per machine is `reproducibility_<machine>.md` beside this file."""


def table_rows(pairs: Sequence[Pair], cupti: Dict[Tuple[str, str, str], float]) -> List[Dict[str, str]]:
    """The results table's rows: one per pair, cells as in the report."""
    rows = []
    for p in pairs:
        kernels = cupti.get((p.definition, p.solution, p.workload))
        ratio = p.first_us / kernels if kernels and p.first_us is not None else None
        rows.append({"definition": p.definition, "solution": p.solution, "workload": p.axes, "timing": p.mode,
                     "run 1 us": _us(p.first_us), "run 2 us": _us(p.second_us),
                     "spread": f"{p.spread * 100:.1f}%" if p.spread is not None else p.status,
                     "host us": _us(p.host_us), "plan us": _us(p.plan_us), "CUPTI us": _us(kernels),
                     "run 1 / CUPTI": f"{ratio:.3f}" if ratio is not None else "-"})
    return rows


def format_report(pairs: Sequence[Pair], cupti: Dict[Tuple[str, str, str], float], header: Sequence[str]) -> str:
    """The Markdown report: the header lines, one table of both runs and the CUPTI ratio, the rule, and last the
    line ``max spread X%``."""
    lines = list(header) + ["", "| definition | solution | workload | timing | run 1 us | run 2 us | spread | "
                                "host us | plan us | CUPTI us | run 1 / CUPTI |",
                            "|---|---|---|---|---|---|---|---|---|---|---|"]
    ratios = []
    for p in pairs:
        spread = f"{p.spread * 100:.1f}%" if p.spread is not None else p.status
        kernels = cupti.get((p.definition, p.solution, p.workload))
        ratio = p.first_us / kernels if kernels and p.first_us is not None else None
        if ratio is not None:
            ratios.append((ratio, p))
        lines.append(f"| {p.definition} | {p.solution} | {p.axes} | {p.mode} | {_us(p.first_us)} | "
                     f"{_us(p.second_us)} | {spread} | {_us(p.host_us)} | {_us(p.plan_us)} | {_us(kernels)} | "
                     + (f"{ratio:.3f} |" if ratio is not None else "- |"))
    compared = [p for p in pairs if p.spread is not None]
    worst = max(compared, key=lambda p: p.spread, default=None)
    lines += ["", f"{len(compared)} pairs passed in both runs, {len(pairs) - len(compared)} did not."]
    if worst is not None:
        lines.append(f"Largest spread: {worst.solution} at {worst.axes}, {_us(worst.first_us)} vs "
                     f"{_us(worst.second_us)} us.")
    crowded = [p for p in pairs if p.not_alone]
    lines.append(f"Timed without the device lock (another process of the run may have used the GPU): {len(crowded)} "
                 "pairs" + "".join(f"; {p.solution} at {p.axes}" for p in crowded[:10]) + ".")
    if ratios:
        values = sorted(r for r, _ in ratios)
        within = sum(1 for r in values if abs(r - 1) <= 0.05)
        lines.append(f"Latency / CUPTI device activity: median {statistics.median(values):.3f}, range "
                     f"{values[0]:.3f}-{values[-1]:.3f}; {within} of {len(values)} traces within 5%.")
    lines += [f"Rule: a pair's spread is |a-b|/min(a,b); a pair under {SMALL_US:.0f} us counts as 0 when it "
              f"differs by at most {ABSOLUTE_US} us.", "", f"max spread {max_spread(pairs) * 100:.1f}%"]
    return "\n".join(lines) + "\n"


def machine_slug(name: str) -> str:
    """A file-name-safe machine name: "NVIDIA H200" -> "nvidia_h200"."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "unknown"


# ---------------------------------------------------------------------------------------------- merge
def write_figures(path: Path, machine: str, pairs: Sequence[Pair], cupti: Dict[Tuple[str, str, str], float]) -> None:
    """Every figure of the pairs as JSON (what ``load_pairs`` reads back)."""
    figures = [dict(asdict(p), spread=p.spread, cupti_us=cupti.get((p.definition, p.solution, p.workload)))
               for p in pairs]
    path.write_text(json.dumps({"machine": machine, "pairs": figures}, indent=1))


def write_report(out: Path, tag: str, machine: str, pairs: Sequence[Pair], cupti: Dict[Tuple[str, str, str], float],
                 header: Sequence[str]) -> Path:
    """``out/reproducibility_<machine><tag>.md`` (format_report) and its figures beside it as JSON; its path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"reproducibility_{machine_slug(machine)}{tag}.md"
    path.write_text(format_report(pairs, cupti, header))
    write_figures(path.with_suffix(".json"), machine, pairs, cupti)
    return path


def load_pairs(path: Path) -> Tuple[str, List[Pair], Dict[Tuple[str, str, str], float]]:
    """(machine, pairs, CUPTI us by (definition, solution, workload)) of one result JSON this script wrote."""
    data = json.loads(Path(path).read_text())
    fields = {f for f in Pair.__dataclass_fields__}
    pairs, cupti = [], {}
    for figures in data["pairs"]:
        pair = Pair(**{k: v for k, v in figures.items() if k in fields})
        pairs.append(pair)
        if figures.get("cupti_us") is not None:
            cupti[(pair.definition, pair.solution, pair.workload)] = figures["cupti_us"]
    return data["machine"], pairs, cupti


def merge(paths: Sequence[Path], out: Path, tag: str = "_merged", note: str = "") -> Path:
    """One report from the JSONs of runs split by ``--definitions`` (same machine): every pair of every file, a
    pair in several files taken from the last, and the ``max spread`` line over all of them. ValueError names a
    file of another machine."""
    machine, pairs, cupti = None, {}, {}
    for path in paths:
        name, found, kernels = load_pairs(path)
        if machine is not None and name != machine:
            raise ValueError(f"{path}: measured on {name}, the files before it on {machine}")
        machine = name
        pairs.update({(p.definition, p.solution, p.workload): p for p in found})
        cupti.update(kernels)
    ordered = [pairs[key] for key in sorted(pairs)]
    header = [f"# Reproducibility: {len(paths)} split runs merged, and CUPTI", "",
              f"{machine}, merged {datetime.date.today().isoformat()} from: "
              + ", ".join(f"`{Path(p).name}`" for p in paths) + " (each file says how its runs were made)."
              + (f" {note}" if note else "")]
    return write_report(out, tag, machine, ordered, cupti, header)


# ---------------------------------------------------------------------------------------------- main
def main(argv: Optional[Sequence[str]] = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    parser.add_argument("--dataset", type=Path, default=ROOT / "examples" / "dataset")
    parser.add_argument("--definitions", nargs="*", default=[], help="only these definitions")
    parser.add_argument("--solutions", nargs="*", default=[], help="only these solutions")
    parser.add_argument("--smallest", type=int, default=None, help="only the N smallest workloads of each")
    parser.add_argument("--device", default=None, help="default cuda:0 when a GPU is visible, else cpu")
    parser.add_argument("--reps", type=int, default=None, help="timed calls per trace (default: the run's)")
    parser.add_argument("--cupti-calls", type=int, default=20, help="profiled calls per trace")
    parser.add_argument("--tag", default="", help="suffix of the file names (for a run split by --definitions)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="seconds for the whole script: the CUPTI step stops profiling when they have passed (the "
                             "report is written after the two runs, and again after CUPTI)")
    parser.add_argument("--note", default="", help="with --merge: a sentence for the merged report's header")
    parser.add_argument("--merge", nargs="+", type=Path, default=None, metavar="JSON",
                        help="run nothing: merge the result JSONs of split runs into one report (--tag names it, "
                             "default _merged)")
    parser.add_argument("--recupti", type=Path, default=None, metavar="JSON",
                        help="run nothing but the CUPTI step: take the CUPTI figures of a result JSON's pairs again "
                             "(those of --definitions and --solutions where given) into a report named by --tag")
    args = parser.parse_args(argv)
    if args.merge:
        path = merge(args.merge, args.out, args.tag or "_merged", args.note)
        print(path.read_text(), flush=True)
        return path

    import torch

    from kernelarena.bench import RunConfig, TimingConfig, run
    from kernelarena.bench.runner import select
    from kernelarena.build import build_solution
    from kernelarena.errors import BuildError
    from kernelarena.store import TraceSet

    script_started = time.perf_counter()
    device = args.device or ("cuda:0" if torch.cuda.is_available() else "cpu")
    dataset = TraceSet.load(args.dataset, strict=True)
    if args.recupti:
        if not device.startswith("cuda"):
            parser.error("--recupti needs a GPU (CUPTI)")
        path = recupti(args.recupti, dataset, args.definitions, args.solutions, device, args.cupti_calls, args.out,
                       args.tag or "_recupti")
        print(path.read_text(), flush=True)
        return path
    tasks = select(dataset, args.definitions, args.solutions, (), args.smallest)
    started = time.perf_counter()
    for _, solution, _ in tasks:  # warm the build cache, so neither run compiles
        try:
            build_solution(solution, device=device)
        except BuildError as e:
            print(f"build of {solution.name} failed (each run records it): {e}", flush=True)
    build_s = time.perf_counter() - started
    config = RunConfig(devices=(device,), timing=TimingConfig(reps=args.reps))
    runs, walls = [], []
    for index in (1, 2):
        started = time.perf_counter()
        report = run(dataset, config, args.definitions, args.solutions, smallest=args.smallest, save=False,
                     on_trace=lambda t, i=index: print(f"run {i}: {t.solution} {t.workload.axes} "
                                                       f"{t.evaluation.status.value}", flush=True))
        runs.append(report.traces)
        walls.append(time.perf_counter() - started)
        print(f"run {index} took {walls[-1]:.0f} s ({len(report.traces)} traces)", flush=True)
    pairs = compare_runs(*runs)
    machine = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "cpu"
    command = "python3 -m benchmarks.reproducibility " + " ".join(argv if argv is not None else sys.argv[1:])
    path = args.out / f"reproducibility_{machine_slug(machine)}{args.tag}.md"

    def write(cupti: Dict[Tuple[str, str, str], float], cupti_note: str) -> None:
        header = [f"# Reproducibility: two runs of {args.dataset.name}, and CUPTI", "",
                  f"{machine}, {datetime.date.today().isoformat()}, torch {torch.__version__}; command: `{command}`.",
                  f"Builds warmed first ({build_s:.0f} s), then two runs ({walls[0]:.0f} s and {walls[1]:.0f} s) "
                  f"with the default timing (per definition: cold L2 unless it declares otherwise); CUPTI: "
                  + cupti_note,
                  "Latency: median device time per call by the trace's timer (the timing column: cupti-cold-l2 is "
                  "CUPTI's device time per call, the union of its activities; cuda-events-* is CUDA events); host "
                  "us: host time of one run() call; plan us: host time of the plan step, once per input set, "
                  "outside the timed region. CUPTI us: the mean sum of the call's kernel, copy and set durations."]
        text = format_report(pairs, cupti, header)
        publish("reproducibility", args.out, text, TITLE, key=KEY, columns=COLUMNS, rows=table_rows(pairs, cupti),
                run=Stamp(machine, datetime.date.today().isoformat()), latest_name=path.name)
        write_figures(path.with_suffix(".json"), machine, pairs, cupti)
        print(text, flush=True)

    if not device.startswith("cuda"):
        write({}, "left out (no GPU).")
        return path
    write({}, "not yet taken (written again after it).")  # a capped call keeps the two runs' comparison
    started = time.perf_counter()
    deadline = script_started + args.budget_s if args.budget_s else None
    cupti = cupti_per_trace(dataset, passed_items(runs[0]), device, args.cupti_calls, deadline)
    profiled = sum(1 for t in runs[0] if t.passed)
    cupti_s = time.perf_counter() - started
    write(cupti, f"{args.cupti_calls} calls per trace with the L2 flushed and a sleep kernel ahead of each (as the "
                 f"timed loop launches them), the flush's and the sleep's device work left out, the plan step "
                 f"outside the profile, apart from both runs ({cupti_s:.0f} "
                 f"s; {len(cupti)} of {profiled} passed traces profiled"
                 + (", the rest cut by --budget-s)." if len(cupti) < profiled else ")."))
    return path


if __name__ == "__main__":
    main()
